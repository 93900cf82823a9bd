#include "runtime/kernels/lt_gemm.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#ifndef STEMKIT_HAS_LT
#define STEMKIT_HAS_LT 0  // runtime/CMakeLists.txt defines it to 1 for CUDA builds that link cuBLASLt
#endif

#if STEMKIT_HAS_LT
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "runtime/kernels/lt_algo_cache.h"
#endif

namespace stemkit::kernels {

namespace {

// The same through ATen: where cuBLASLt offers nothing, and the reference the GPU test compares with.
void aten_linear(const at::Tensor& a, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& out,
                 Epilogue epilogue, bool accumulate) {
  at::Tensor o = out;
  switch (epilogue) {
    case Epilogue::gelu_bias: o.copy_(at::_addmm_activation(bias, a, w.t(), 1, 1, /*use_gelu=*/true)); break;
    case Epilogue::bias:
      if (accumulate)
        o.addmm_(a, w.t()).add_(bias);
      else
        at::addmm_out(o, bias, a, w.t());
      break;
    case Epilogue::none:
      if (accumulate)
        o.addmm_(a, w.t());
      else
        at::mm_out(o, a, w.t());
      break;
  }
}

#if STEMKIT_HAS_LT

constexpr uint64_t kWorkspace = uint64_t{32} << 20;  // what ATen gives cuBLAS on Hopper

void check(cublasStatus_t s, const char* what) {
  TORCH_CHECK(s == CUBLAS_STATUS_SUCCESS, "stemkit cuBLASLt: ", what, " failed (status ", static_cast<int>(s), ")");
}

cublasLtHandle_t handle() {
  static cublasLtHandle_t h = [] {
    cublasLtHandle_t made = nullptr;
    check(cublasLtCreate(&made), "cublasLtCreate");
    return made;
  }();
  return h;
}

// Largest power of two (up to 256) dividing the address: the alignment cuBLASLt may assume.
uint32_t alignment(const void* p) {
  const auto v = reinterpret_cast<std::uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

// One shape's descriptors and chosen algorithm, made at its first call.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t wl = nullptr, al = nullptr, ol = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool have_algo = false;  // false: cuBLASLt offered none, ATen computes it
  bool tuned = false;      // chosen by timing (false: the heuristic's first, made while capturing)
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, uint32_t, int>;

std::mutex plans_mutex;
std::map<Key, Plan>& plans() {
  static std::map<Key, Plan> p;
  return p;
}

// The kept choices (lt_keep_algorithms), one file per device's GPU model,
// read at the device's first GEMM. Under plans_mutex.
std::string kept_dir;
std::map<int, std::unique_ptr<AlgoCacheFile>>& kept() {
  static std::map<int, std::unique_ptr<AlgoCacheFile>> k;
  return k;
}
AlgoCacheFile* kept_for(int device) {
  if (kept_dir.empty()) return nullptr;
  auto& file = kept()[device];
  if (!file) {
    cudaDeviceProp prop{};
    int driver = 0;
    if (cudaGetDeviceProperties(&prop, device) != cudaSuccess || cudaDriverGetVersion(&driver) != cudaSuccess) {
      (void)cudaGetLastError();
      return nullptr;
    }
    file = std::make_unique<AlgoCacheFile>(algo_cache_path(kept_dir, prop.name, driver, cublasLtGetVersion()));
  }
  return file.get();
}

// The shape's line in the kept file: the Key without the device (the file is the GPU model's).
std::string kept_key(const Key& k) {
  return std::to_string(std::get<0>(k)) + " " + std::to_string(std::get<1>(k)) + " " + std::to_string(std::get<2>(k)) +
         " " + std::to_string(std::get<3>(k)) + " " + std::to_string(std::get<4>(k)) + " " +
         std::to_string(std::get<5>(k)) + " " + std::to_string(std::get<6>(k)) + " " + std::to_string(std::get<7>(k)) +
         " " + std::to_string(std::get<8>(k)) + " " + std::to_string(std::get<9>(k));
}

bool capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  return cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone;
}

// Times each candidate (a warm-up and 5 runs on the stream, writing into scratch)
// and returns the fastest; only outside graph capture.
cublasLtMatmulAlgo_t fastest(const Plan& p, const std::vector<cublasLtMatmulHeuristicResult_t>& cands,
                             const at::Tensor& a, const at::Tensor& w, const at::Tensor& out, float beta, void* ws,
                             cudaStream_t stream) {
  at::Tensor scratch = at::empty_like(out);  // never write the caller's out while trying
  const float alpha = 1.f;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best = -1.f;
  cublasLtMatmulAlgo_t choice = cands.front().algo;
  for (const auto& c : cands) {
    auto run = [&] {
      return cublasLtMatmul(handle(), p.desc, &alpha, w.data_ptr(), p.wl, a.data_ptr(), p.al, &beta, scratch.data_ptr(),
                            p.ol, scratch.data_ptr(), p.ol, &c.algo, ws, kWorkspace, stream);
    };
    if (run() != CUBLAS_STATUS_SUCCESS) continue;
    cudaEventRecord(start, stream);
    bool ok = true;
    for (int i = 0; i < 5 && ok; ++i) ok = run() == CUBLAS_STATUS_SUCCESS;
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0.f;
    if (!ok || cudaEventElapsedTime(&ms, start, stop) != cudaSuccess) continue;
    if (best < 0.f || ms < best) best = ms, choice = c.algo;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  (void)cudaGetLastError();  // a candidate that failed to launch leaves nothing for the next check
  return choice;
}

#endif

}  // namespace

bool lt_usable_for(const at::Tensor& x) {
#if STEMKIT_HAS_LT
  return x.is_cuda() && (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16);
#else
  (void)x;
  return false;
#endif
}

void lt_keep_algorithms(const std::string& dir) {
#if STEMKIT_HAS_LT
  std::lock_guard<std::mutex> lock(plans_mutex);
  kept_dir = dir;
  kept().clear();
#else
  (void)dir;
#endif
}

const char* lt_describe() {
#if STEMKIT_HAS_LT
  return "cuBLASLt, fastest algorithm per shape";
#else
  return "ATen (cuBLASLt path is for CUDA builds)";
#endif
}

void lt_linear(const at::Tensor& a, const at::Tensor& w, const at::Tensor& bias, const at::Tensor& out,
               Epilogue epilogue, bool accumulate) {
  TORCH_CHECK(a.dim() == 2 && w.dim() == 2 && out.dim() == 2 && a.size(1) == w.size(1) && out.size(0) == a.size(0) &&
                  out.size(1) == w.size(0),
              "lt_linear: shapes must be a (M, K), w (N, K), out (M, N)");
  TORCH_CHECK(epilogue == Epilogue::none || (bias.defined() && bias.numel() == w.size(0)),
              "lt_linear: this epilogue needs a bias of N elements");
  TORCH_CHECK(!(accumulate && epilogue == Epilogue::gelu_bias), "lt_linear: gelu_bias does not accumulate");
#if STEMKIT_HAS_LT
  if (!lt_usable_for(a)) return aten_linear(a, w, bias, out, epilogue, accumulate);
  for (const at::Tensor* t : {&a, &w, &out})
    TORCH_CHECK(t->stride(1) == 1 && t->stride(0) % 8 == 0 && t->scalar_type() == a.scalar_type() && t->is_cuda(),
                "lt_linear: a, w and out must share a's dtype, with contiguous rows and row strides multiples of 8");
  const int64_t M = a.size(0), K = a.size(1), N = w.size(0);
  const cudaDataType_t dt = a.scalar_type() == at::kHalf ? CUDA_R_16F : CUDA_R_16BF;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(a.device().index()).stream();
  uint32_t align = std::min({alignment(a.data_ptr()), alignment(w.data_ptr()), alignment(out.data_ptr())});
  if (epilogue != Epilogue::none) align = std::min(align, alignment(bias.data_ptr()));
  const Key key{M,
                N,
                K,
                a.stride(0),
                w.stride(0),
                out.stride(0),
                static_cast<int>(dt),
                static_cast<int>(epilogue),
                accumulate,
                align,
                a.device().index()};
  const float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
  at::Tensor ws = at::empty({static_cast<int64_t>(kWorkspace)}, a.options().dtype(at::kByte));

  std::lock_guard<std::mutex> lock(plans_mutex);
  Plan& p = plans()[key];
  if (p.desc == nullptr) {
    // Column-major view of the row-major GEMM: outᵀ (N x M) = w (K x N)ᵀ · aᵀ (K x M).
    check(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "set TRANSA");
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)), "set TRANSB");
    const cublasLtEpilogue_t ep = epilogue == Epilogue::gelu_bias ? CUBLASLT_EPILOGUE_GELU_BIAS
                                  : epilogue == Epilogue::bias    ? CUBLASLT_EPILOGUE_BIAS
                                                                  : CUBLASLT_EPILOGUE_DEFAULT;
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)), "set EPILOGUE");
    check(cublasLtMatrixLayoutCreate(&p.wl, dt, K, N, w.stride(0)), "layout w");
    check(cublasLtMatrixLayoutCreate(&p.al, dt, K, M, a.stride(0)), "layout a");
    check(cublasLtMatrixLayoutCreate(&p.ol, dt, N, M, out.stride(0)), "layout out");
  }
  if (epilogue != Epilogue::none) {
    const void* b = bias.data_ptr();
    check(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &b, sizeof(b)), "set BIAS_POINTER");
  }
  AlgoCacheFile* file = p.tuned ? nullptr : kept_for(a.device().index());
  if (!p.tuned && file) {
    // A choice an earlier run timed, if cuBLASLt still takes it for this shape.
    if (const auto words = file->find(kept_key(key))) {
      cublasLtMatmulAlgo_t algo{};
      static_assert(sizeof(algo) == sizeof(*words), "cublasLtMatmulAlgo_t is 8 words");
      std::memcpy(&algo, words->data(), sizeof(algo));
      cublasLtMatmulHeuristicResult_t result{};
      if (cublasLtMatmulAlgoCheck(handle(), p.desc, p.wl, p.al, p.ol, p.ol, &algo, &result) == CUBLAS_STATUS_SUCCESS &&
          result.workspaceSize <= kWorkspace)
        p.algo = algo, p.have_algo = p.tuned = true;
    }
  }
  if (!p.tuned && !(p.have_algo && capturing(stream))) {
    cublasLtMatmulPreference_t pref = nullptr;
    check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    const uint64_t ws_bytes = kWorkspace;
    check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                               sizeof(ws_bytes)),
          "set MAX_WORKSPACE_BYTES");
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align)), "set MIN_ALIGNMENT");
    std::vector<cublasLtMatmulHeuristicResult_t> found(16);
    int count = 0;
    const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle(), p.desc, p.wl, p.al, p.ol, p.ol, pref,
                                                            static_cast<int>(found.size()), found.data(), &count);
    cublasLtMatmulPreferenceDestroy(pref);
    found.resize(s == CUBLAS_STATUS_SUCCESS ? std::max(count, 0) : 0);
    found.erase(std::remove_if(found.begin(), found.end(),
                               [](const cublasLtMatmulHeuristicResult_t& r) {
                                 return r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > kWorkspace;
                               }),
                found.end());
    if (found.empty()) {
      p.tuned = true;  // nothing to choose from, now or later
      p.have_algo = false;
    } else if (capturing(stream)) {
      p.algo = found.front().algo, p.have_algo = true;  // timed at the next call outside a capture
    } else {
      p.algo = fastest(p, found, a, w, out, beta, ws.data_ptr(), stream);
      p.have_algo = p.tuned = true;
      if (file) {
        AlgoWords words{};
        std::memcpy(words.data(), &p.algo, sizeof(p.algo));
        file->add(kept_key(key), words);
      }
      // The timing's scratch output (up to rows x 4 dim) would otherwise stay
      // reserved by the caching allocator for the whole run.
      c10::cuda::CUDACachingAllocator::emptyCache();
    }
  }
  if (!p.have_algo) return aten_linear(a, w, bias, out, epilogue, accumulate);
  check(cublasLtMatmul(handle(), p.desc, &alpha, w.data_ptr(), p.wl, a.data_ptr(), p.al, &beta, out.data_ptr(), p.ol,
                       out.data_ptr(), p.ol, &p.algo, ws.data_ptr(), kWorkspace, stream),
        "cublasLtMatmul");
#else
  aten_linear(a, w, bias, out, epilogue, accumulate);
#endif
}

}  // namespace stemkit::kernels
