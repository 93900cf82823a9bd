// The HTDemucs kernels (declared in htdemucs_launch.h): the memory-bound passes
// between HTDemucs' convolutions, each one pass where ATen takes two or three.
// ATen adds a convolution's bias in a pass of its own after cuDNN, and its
// addcmul with per-row scale and shift (the fast GroupNorm's apply) and GLU
// each read and write the whole activation again, through TensorIterator's
// strided path where an operand broadcasts along the row. Here the bias or
// the norm's affine goes into the activation's pass (GELU, or GLU and the
// LayerScale's residual add), and a norm's statistics take one read.
// Compiled by nvcc (CUDA builds) or as HIP (ROCm builds), like roformer_kernels.cu.
#include "runtime/kernels/htdemucs_launch.h"

#include "runtime/kernels/device_common.cuh"

namespace stemkit::kernels::launch {
namespace {

constexpr int kThreads = 256;

// V elements moved as one aligned access (V = 8: 16 bytes of half, 32 of float).
template <typename T, int V>
struct alignas(V * sizeof(T)) Vec {
  T v[V];
};
template <typename T, int V>
__device__ __forceinline__ Vec<T, V> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, V>*>(p);
}
template <typename T, int V>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, V>& x) {
  *reinterpret_cast<Vec<T, V>*>(p) = x;
}

// Row sums of float32 activations are taken in float64: the variance is the
// difference of two sums, which float32 would lose to cancellation.
template <typename T>
struct Accumulator {
  using type = float;
};
template <>
struct Accumulator<float> {
  using type = double;
};

// kLanes threads per (row, chunk) item: a warp (short rows, 8 items per block)
// or the whole block (long rows, one chunk of one row per block).
template <typename T, int kLanes, bool kVec>
__global__ void row_sums_kernel(const T* __restrict__ x, uint32_t items, uint32_t len, uint32_t chunk,
                                uint32_t chunks, typename Accumulator<T>::type* __restrict__ sums) {
  using Acc = typename Accumulator<T>::type;
  const uint32_t item = blockIdx.x * (kThreads / kLanes) + threadIdx.x / kLanes;
  const uint32_t lane = threadIdx.x % kLanes;
  if (kLanes == 32 && item >= items) return;  // the whole warp leaves together
  const uint32_t row = item / chunks, c = item - row * chunks;
  const T* xr = x + static_cast<int64_t>(row) * len;
  const uint32_t begin = c * chunk, end = len - begin < chunk ? len : begin + chunk;
  Acc s = 0, ss = 0;
  if (kVec) {
    for (uint32_t i = begin + 8 * lane; i < end; i += 8 * kLanes) {
      const Pack8<T> a = load8(xr + i);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const Acc f = to_f(a.v[j]);
        s += f;
        ss += f * f;
      }
    }
  } else {
    for (uint32_t i = begin + lane; i < end; i += kLanes) {
      const Acc f = to_f(xr[i]);
      s += f;
      ss += f * f;
    }
  }
#pragma unroll
  for (int m = 16; m > 0; m /= 2) {
    s += SK_SHFL_XOR(s, m);
    ss += SK_SHFL_XOR(ss, m);
  }
  if (kLanes > 32) {
    __shared__ Acc shared[2][kThreads / 32];
    const uint32_t warp = threadIdx.x / 32;
    if (threadIdx.x % 32 == 0) shared[0][warp] = s, shared[1][warp] = ss;
    __syncthreads();
    if (warp != 0) return;
    s = threadIdx.x < kThreads / 32 ? shared[0][threadIdx.x] : Acc(0);
    ss = threadIdx.x < kThreads / 32 ? shared[1][threadIdx.x] : Acc(0);
#pragma unroll
    for (int m = 16; m > 0; m /= 2) {
      s += SK_SHFL_XOR(s, m);
      ss += SK_SHFL_XOR(ss, m);
    }
  }
  if (threadIdx.x % kLanes == 0) sums[2 * item] = s, sums[2 * item + 1] = ss;
}

__device__ __forceinline__ float gelu(float v) { return 0.5f * v * (1.f + erff(v * 0.70710678118654752440f)); }
__device__ __forceinline__ float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

// One thread per unit: 8 elements of one row (kVec: the row length is a
// multiple of 8), or one element.
template <typename T, bool kVec, Act kAct>
__global__ void affine_rows_kernel(const T* __restrict__ x, const float* __restrict__ scale,
                                   const float* __restrict__ shift, T* __restrict__ y, uint32_t units,
                                   uint32_t row_units) {
  constexpr int V = kVec ? 8 : 1;
  const uint32_t u = blockIdx.x * kThreads + threadIdx.x;
  if (u >= units) return;
  const uint32_t row = u / row_units;
  const float a = scale != nullptr ? scale[row] : 1.f, b = shift[row];
  const int64_t e = static_cast<int64_t>(u) * V;
  const Vec<T, V> in = load_vec<T, V>(x + e);
  Vec<T, V> out;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float v = to_f(in.v[j]) * a + b;
    out.v[j] = from_f<T>(kAct == Act::gelu ? gelu(v) : v);
  }
  store_vec<T, V>(y + e, out);
}

template <typename T, bool kVec>
__global__ void affine_glu_kernel(const T* __restrict__ z, const float* __restrict__ scale,
                                  const float* __restrict__ shift, const T* __restrict__ residual,
                                  const float* __restrict__ layer_scale, T* __restrict__ out, uint32_t units,
                                  uint32_t row_units, uint32_t CS, uint32_t S, uint32_t L) {
  constexpr int V = kVec ? 8 : 1;
  const uint32_t u = blockIdx.x * kThreads + threadIdx.x;
  if (u >= units) return;
  const uint32_t row = u / row_units, t = (u - row * row_units) * V;
  const uint32_t n = row / CS, cs = row - n * CS;
  const uint32_t a_row = n * 2 * CS + cs, g_row = a_row + CS;
  const float sa = scale != nullptr ? scale[a_row] : 1.f, sg = scale != nullptr ? scale[g_row] : 1.f;
  const float ba = shift[a_row], bg = shift[g_row];
  const float ls = layer_scale != nullptr ? layer_scale[cs / S] : 1.f;
  const int64_t ea = static_cast<int64_t>(a_row) * L + t, eg = static_cast<int64_t>(g_row) * L + t;
  const int64_t e = static_cast<int64_t>(u) * V;
  const Vec<T, V> a = load_vec<T, V>(z + ea), g = load_vec<T, V>(z + eg);
  Vec<T, V> r, o;
  if (residual != nullptr) r = load_vec<T, V>(residual + e);
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float v = (to_f(a.v[j]) * sa + ba) * sigmoid(to_f(g.v[j]) * sg + bg);
    o.v[j] = from_f<T>(residual != nullptr ? to_f(r.v[j]) + ls * v : v);
  }
  store_vec<T, V>(out + e, o);
}

uint32_t blocks_for(uint64_t threads) { return static_cast<uint32_t>((threads + kThreads - 1) / kThreads); }

}  // namespace

void row_sums(DType dtype, const void* x, int64_t rows, int64_t len, int64_t chunk, void* sums, void* stream) {
  const int64_t chunks = (len + chunk - 1) / chunk, items = rows * chunks;
  const bool vec = len % 8 == 0 && chunk % 8 == 0;
  const bool warp = chunks == 1 && len <= 2048;
  const uint32_t blocks = warp ? blocks_for(static_cast<uint64_t>(items) * 32) : static_cast<uint32_t>(items);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = typename Accumulator<T>::type;
    auto s = static_cast<stream_t>(stream);
    auto run = [&](auto kernel) {
      kernel<<<blocks, kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<uint32_t>(items),
                                         static_cast<uint32_t>(len), static_cast<uint32_t>(chunk),
                                         static_cast<uint32_t>(chunks), static_cast<Acc*>(sums));
    };
    if (warp)
      vec ? run(row_sums_kernel<T, 32, true>) : run(row_sums_kernel<T, 32, false>);
    else
      vec ? run(row_sums_kernel<T, kThreads, true>) : run(row_sums_kernel<T, kThreads, false>);
  });
}

void affine_rows(DType dtype, const void* x, const float* scale, const float* shift, void* y, int64_t rows,
                 int64_t len, Act act, void* stream) {
  const bool vec = len % 8 == 0;
  const auto row_units = static_cast<uint32_t>(vec ? len / 8 : len);
  const auto units = static_cast<uint32_t>(rows * row_units);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto s = static_cast<stream_t>(stream);
    auto run = [&](auto kernel) {
      kernel<<<blocks_for(units), kThreads, 0, s>>>(static_cast<const T*>(x), scale, shift, static_cast<T*>(y), units,
                                                    row_units);
    };
    if (act == Act::gelu)
      vec ? run(affine_rows_kernel<T, true, Act::gelu>) : run(affine_rows_kernel<T, false, Act::gelu>);
    else
      vec ? run(affine_rows_kernel<T, true, Act::none>) : run(affine_rows_kernel<T, false, Act::none>);
  });
}

void affine_glu(DType dtype, const void* z, const float* scale, const float* shift, const void* residual,
                const float* layer_scale, void* out, int64_t N, int64_t C, int64_t S, int64_t L, void* stream) {
  const bool vec = L % 8 == 0;
  const auto row_units = static_cast<uint32_t>(vec ? L / 8 : L);
  const auto units = static_cast<uint32_t>(N * C * S * row_units);
  with_type(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto s = static_cast<stream_t>(stream);
    auto run = [&](auto kernel) {
      kernel<<<blocks_for(units), kThreads, 0, s>>>(static_cast<const T*>(z), scale, shift,
                                                    static_cast<const T*>(residual), layer_scale, static_cast<T*>(out),
                                                    units, row_units, static_cast<uint32_t>(C * S),
                                                    static_cast<uint32_t>(S), static_cast<uint32_t>(L));
    };
    vec ? run(affine_glu_kernel<T, true>) : run(affine_glu_kernel<T, false>);
  });
}

}  // namespace stemkit::kernels::launch
