#include "runtime/kernels/roformer_kernels.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <string>

#ifndef STEMKIT_HAS_KERNELS
#define STEMKIT_HAS_KERNELS 0  // runtime/CMakeLists.txt defines it to 1 when it builds roformer_kernels.cu
#endif

#if STEMKIT_HAS_KERNELS
#include "runtime/kernels/roformer_launch.h"
#if defined(STEMKIT_ROCM)
#include <c10/hip/HIPStream.h>
#else
#include <c10/cuda/CUDAStream.h>
#endif
#endif

namespace stemkit::kernels {

namespace {

#if STEMKIT_HAS_KERNELS
launch::DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return launch::DType::f32;
    case at::kHalf: return launch::DType::f16;
    case at::kBFloat16: return launch::DType::bf16;
    default: TORCH_CHECK(false, "stemkit kernels: unsupported dtype ", t.scalar_type());
  }
}

void* current_stream(const at::Tensor& t) {
#if defined(STEMKIT_ROCM)
  return c10::hip::getCurrentHIPStream(t.device().index()).stream();
#else
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
#endif
}

void check_launch(const char* what) {
  const char* err = launch::last_error();
  TORCH_CHECK(err == nullptr || err[0] == '\0', "stemkit kernels: ", what, " failed to launch: ", err);
}

// 8 elements per thread: pointers aligned to 8 elements, sizes and strides multiples of 8.
bool aligned8(const at::Tensor& t) {
  return reinterpret_cast<std::uintptr_t>(t.data_ptr()) % (8 * t.element_size()) == 0;
}

launch::AxialLayout to_launch(const Axial& a) { return {a.B, a.T, a.F, a.axis}; }
#endif

}  // namespace

bool compiled() { return STEMKIT_HAS_KERNELS != 0; }

bool usable_for(const at::Tensor& x) {
  if (!compiled() || !x.is_cuda()) return false;
  const auto t = x.scalar_type();
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16;
}

const char* describe() {
#ifdef STEMKIT_TORCH_FLAVOR
  if (!compiled() && std::string(STEMKIT_TORCH_FLAVOR) == "cpu")
    return "ATen (CPU build; the fused kernels are for CUDA and ROCm builds)";
#endif
  if (!compiled()) return "ATen (fused kernels not built: CMake found no CUDA or HIP compiler)";
#if defined(STEMKIT_ROCM)
  return "fused (HIP)";
#else
  return "fused (CUDA)";
#endif
}

#if STEMKIT_HAS_KERNELS

at::Tensor unit_rows_add_bias(const at::Tensor& x, const at::Tensor& bias, double eps) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.size(1) % 8 == 0 && aligned8(x),
              "unit_rows_add_bias: x must be (rows, dim) contiguous with dim a multiple of 8");
  TORCH_CHECK(x.size(0) < (int64_t{1} << 26), "unit_rows_add_bias: too many rows");
  TORCH_CHECK(!bias.defined() || (bias.is_contiguous() && bias.numel() == x.size(1) &&
                                  bias.scalar_type() == x.scalar_type() && aligned8(bias)),
              "unit_rows_add_bias: bias must be (dim) contiguous, in x's dtype");
  at::Tensor u = at::empty_like(x);
  launch::unit_rows_add_bias(dtype_of(x), x.data_ptr(), bias.defined() ? bias.data_ptr() : nullptr, u.data_ptr(),
                             x.size(0), x.size(1), eps, current_stream(x));
  check_launch("unit_rows_add_bias");
  return u;
}

std::array<at::Tensor, 3> rotary_split(const at::Tensor& qkv, const at::Tensor& table, const Axial& layout,
                                       int64_t heads, int64_t dim_head, bool copy_v) {
  const int64_t hd = heads * dim_head, N = layout.sequences(), n = layout.length();
  TORCH_CHECK(qkv.dim() == 2 && qkv.size(0) == layout.rows() && qkv.size(1) >= 3 * hd && qkv.stride(1) == 1 &&
                  qkv.stride(0) % 8 == 0 && dim_head % 8 == 0 && aligned8(qkv),
              "rotary_split: qkv must be (rows, >= 3hd) token rows, row stride and d multiples of 8");
  TORCH_CHECK(table.scalar_type() == at::kComplexFloat && table.is_contiguous() && table.size(0) == n &&
                  table.size(1) == dim_head / 2,
              "rotary_split: table must be complex64 (n, d/2)");
  TORCH_CHECK(layout.rows() * 3 * hd / 8 < (int64_t{1} << 31), "rotary_split: too many tokens for one launch");
  at::Tensor q = at::empty({N, heads, n, dim_head}, qkv.options());
  at::Tensor k = at::empty_like(q);
  at::Tensor v;
  if (copy_v)
    v = at::empty_like(q);
  else if (layout.axis == 2 || layout.F == 1)
    v = qkv.narrow(1, 2 * hd, hd).view({N, n, heads, dim_head}).transpose(1, 2);
  launch::rotary_split(dtype_of(qkv), qkv.data_ptr(), qkv.stride(0), reinterpret_cast<const float*>(table.data_ptr()),
                       q.data_ptr(), k.data_ptr(), copy_v ? v.data_ptr() : nullptr, to_launch(layout), heads, dim_head,
                       current_stream(qkv));
  check_launch("rotary_split");
  return {q, k, v};
}

at::Tensor v_along_t(const at::Tensor& qkv, const Axial& layout, int64_t heads, int64_t dim_head, int64_t b) {
  const int64_t hd = heads * dim_head, ld = qkv.stride(0);
  TORCH_CHECK(qkv.dim() == 2 && qkv.size(0) == layout.rows() && qkv.size(1) >= 3 * hd && qkv.stride(1) == 1 && b >= 0 &&
                  b < layout.B,
              "v_along_t: qkv must be (rows, >= 3hd) token rows");
  // Row (b, t, f) holds v of sequence f at position t: (F, h, T, d) with strides (ld, d, F*ld, 1).
  return qkv.as_strided({layout.F, heads, layout.T, dim_head}, {ld, dim_head, layout.F * ld, 1},
                        qkv.storage_offset() + b * layout.T * layout.F * ld + 2 * hd);
}

at::Tensor gate_to_rows(const at::Tensor& o, const at::Tensor& logits, const Axial& layout, int64_t heads,
                        int64_t dim_head, const at::Tensor& out) {
  const int64_t hd = heads * dim_head;
  TORCH_CHECK(o.dim() == 4 && o.size(0) == layout.sequences() && o.size(1) == heads && o.size(2) == layout.length() &&
                  o.size(3) == dim_head && o.stride(3) == 1 && o.stride(0) % 8 == 0 && o.stride(1) % 8 == 0 &&
                  o.stride(2) % 8 == 0 && dim_head % 8 == 0 && aligned8(o) && o.scalar_type() == logits.scalar_type(),
              "gate_to_rows: o must be (N, h, n, d) with a contiguous last dimension");
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == layout.rows() && logits.size(1) >= heads && logits.stride(1) == 1,
              "gate_to_rows: logits must be (rows, >= heads) with contiguous columns");
  TORCH_CHECK(layout.rows() * hd / 8 < (int64_t{1} << 31), "gate_to_rows: too many tokens for one launch");
  at::Tensor gated = out;
  if (gated.defined()) {
    TORCH_CHECK(gated.dim() == 2 && gated.size(0) == layout.rows() && gated.size(1) == hd && gated.is_contiguous() &&
                    gated.scalar_type() == o.scalar_type() && aligned8(gated),
                "gate_to_rows: out must be (rows, h*d) contiguous, in o's dtype");
  } else {
    gated = at::empty({layout.rows(), hd}, o.options().memory_format(at::MemoryFormat::Contiguous));
  }
  launch::gate_to_rows(dtype_of(o), o.data_ptr(), o.stride(0), o.stride(1), o.stride(2), logits.data_ptr(),
                       logits.stride(0), gated.data_ptr(), to_launch(layout), heads, dim_head, current_stream(o));
  check_launch("gate_to_rows");
  return gated;
}

at::Tensor fused_attention(const at::Tensor& qkv, const at::Tensor& table, const at::Tensor& logits,
                           const Axial& layout, int64_t heads, int64_t dim_head, bool long_sequences,
                           const char** which) {
  const int64_t hd = heads * dim_head, n = layout.length();
  if (qkv.scalar_type() == at::kFloat) return {};
  TORCH_CHECK(qkv.dim() == 2 && qkv.size(0) == layout.rows() && qkv.size(1) >= 3 * hd && qkv.stride(1) == 1 &&
                  qkv.stride(0) % 8 == 0 && aligned8(qkv),
              "fused_attention: qkv must be (rows, >= 3hd) token rows with a row stride a multiple of 8");
  TORCH_CHECK(table.scalar_type() == at::kComplexFloat && table.is_contiguous() && table.size(0) == n &&
                  table.size(1) == dim_head / 2,
              "fused_attention: table must be complex64 (n, d/2)");
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == layout.rows() && logits.size(1) >= heads &&
                  logits.stride(1) == 1 && logits.scalar_type() == qkv.scalar_type(),
              "fused_attention: logits must be (rows, >= heads)");
  if (layout.rows() >= (int64_t{1} << 31) || layout.sequences() >= (int64_t{1} << 31) || heads > 65535) return {};
  at::Tensor gated = at::empty({layout.rows(), hd}, qkv.options().memory_format(at::MemoryFormat::Contiguous));
  const auto dtype = dtype_of(qkv);
  const float* cs = reinterpret_cast<const float*>(table.data_ptr());
  void* stream = current_stream(qkv);
  const char* kernel = nullptr;
  if (launch::band_attention(dtype, qkv.data_ptr(), qkv.stride(0), cs, logits.data_ptr(), logits.stride(0),
                             gated.data_ptr(), to_launch(layout), heads, dim_head, n, stream))
    kernel = "stemkit band kernel (rotary, attention, gate in one pass)";
  else if (long_sequences &&
           launch::seq_attention(dtype, qkv.data_ptr(), qkv.stride(0), cs, logits.data_ptr(), logits.stride(0),
                                 gated.data_ptr(), to_launch(layout), heads, dim_head, n, stream))
    kernel = "stemkit sequence kernel (rotary, flash attention, gate in one pass)";
  else
    return {};
  check_launch(kernel);
  if (which != nullptr) *which = kernel;
  return gated;
}

#else  // no device compiler: enabled_for() is false, so these are never reached

at::Tensor unit_rows_add_bias(const at::Tensor&, const at::Tensor&, double) {
  TORCH_CHECK(false, "stemkit kernels: not built (", describe(), ")");
}
std::array<at::Tensor, 3> rotary_split(const at::Tensor&, const at::Tensor&, const Axial&, int64_t, int64_t, bool) {
  TORCH_CHECK(false, "stemkit kernels: not built (", describe(), ")");
}
at::Tensor fused_attention(const at::Tensor&, const at::Tensor&, const at::Tensor&, const Axial&, int64_t, int64_t,
                           bool, const char**) {
  return {};
}
at::Tensor v_along_t(const at::Tensor&, const Axial&, int64_t, int64_t, int64_t) {
  TORCH_CHECK(false, "stemkit kernels: not built (", describe(), ")");
}
at::Tensor gate_to_rows(const at::Tensor&, const at::Tensor&, const Axial&, int64_t, int64_t, const at::Tensor&) {
  TORCH_CHECK(false, "stemkit kernels: not built (", describe(), ")");
}

#endif

}  // namespace stemkit::kernels
