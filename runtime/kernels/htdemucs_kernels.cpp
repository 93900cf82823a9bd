#include "runtime/kernels/htdemucs_kernels.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <vector>

#include "runtime/kernels/roformer_kernels.h"

#if STEMKIT_HAS_KERNELS
#include "runtime/kernels/aten_launch.h"
#include "runtime/kernels/htdemucs_launch.h"
#endif

namespace stemkit::kernels {

namespace {

// Rows longer than this are summed in chunks of kChunk elements, one block
// each, and the chunks' sums added by ATen: a time layer has few rows of
// 86,000 samples, which one block per row would leave mostly idle.
constexpr int64_t kWarpRow = 2048;
constexpr int64_t kChunk = 8192;

[[maybe_unused]] std::vector<int64_t> row_shape(const at::Tensor& x) { return {x.sizes().begin(), x.sizes().end() - 1}; }

[[maybe_unused]] void check_per_row(const at::Tensor& v, int64_t rows, const char* what) {
  TORCH_CHECK(!v.defined() || (v.scalar_type() == at::kFloat && v.is_contiguous() && v.numel() == rows), what,
              ": per-row values must be float32, contiguous, one per row");
}

}  // namespace

bool rows_usable_for(const at::Tensor& x) {
#if STEMKIT_HAS_KERNELS
  if (!x.defined() || !x.is_cuda() || !x.is_contiguous() || x.dim() < 2 || x.numel() >= (int64_t{1} << 31))
    return false;
  const auto t = x.scalar_type();
  return (t == at::kFloat || t == at::kHalf || t == at::kBFloat16) && aligned8(x);
#else
  (void)x;
  return false;
#endif
}

#if STEMKIT_HAS_KERNELS

std::pair<at::Tensor, at::Tensor> row_moments(const at::Tensor& x) {
  TORCH_CHECK(rows_usable_for(x), "row_moments: x must be a contiguous GPU tensor the kernels take");
  const int64_t L = x.size(-1), rows = x.numel() / L;
  const int64_t chunk = L <= kWarpRow ? L : kChunk, chunks = (L + chunk - 1) / chunk;
  const auto acc = x.scalar_type() == at::kFloat ? at::kDouble : at::kFloat;
  at::Tensor sums = at::empty({rows, chunks, 2}, x.options().dtype(acc));
  launch::row_sums(dtype_of(x), x.data_ptr(), rows, L, chunk, sums.data_ptr(), current_stream(x));
  check_launch("row_sums");
  if (chunks > 1) sums = sums.sum(1, /*keepdim=*/true);
  at::Tensor mean = sums.select(-1, 0).reshape(row_shape(x)) / static_cast<double>(L);
  at::Tensor var = (sums.select(-1, 1).reshape(row_shape(x)) / static_cast<double>(L) - mean.square()).clamp_min(0);
  return {mean.to(at::kFloat), var.to(at::kFloat)};
}

at::Tensor affine_rows(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift, bool gelu) {
  TORCH_CHECK(rows_usable_for(x), "affine_rows: x must be a contiguous GPU tensor the kernels take");
  const int64_t L = x.size(-1), rows = x.numel() / L;
  check_per_row(scale, rows, "affine_rows");
  TORCH_CHECK(shift.defined(), "affine_rows: shift is required");
  check_per_row(shift, rows, "affine_rows");
  at::Tensor y = at::empty_like(x);
  launch::affine_rows(dtype_of(x), x.data_ptr(), scale.defined() ? scale.data_ptr<float>() : nullptr,
                      shift.data_ptr<float>(), y.data_ptr(), rows, L, gelu ? launch::Act::gelu : launch::Act::none,
                      current_stream(x));
  check_launch("affine_rows");
  return y;
}

at::Tensor affine_glu(const at::Tensor& z, const at::Tensor& scale, const at::Tensor& shift, const at::Tensor& residual,
                      const at::Tensor& layer_scale) {
  TORCH_CHECK(rows_usable_for(z) && z.size(1) % 2 == 0, "affine_glu: z must be (N, 2C, ..., L), contiguous, on the GPU");
  const int64_t N = z.size(0), C = z.size(1) / 2, L = z.size(-1), S = z.numel() / (N * 2 * C * L);
  check_per_row(scale, N * 2 * C * S, "affine_glu");
  TORCH_CHECK(shift.defined(), "affine_glu: shift is required");
  check_per_row(shift, N * 2 * C * S, "affine_glu");
  std::vector<int64_t> out_shape(z.sizes().begin(), z.sizes().end());
  out_shape[1] = C;
  TORCH_CHECK(residual.defined() == layer_scale.defined(), "affine_glu: residual and layer_scale go together");
  if (residual.defined()) {
    TORCH_CHECK(residual.sizes() == at::IntArrayRef(out_shape) && residual.scalar_type() == z.scalar_type() &&
                    rows_usable_for(residual),
                "affine_glu: residual must be contiguous, z's dtype, shaped as the output");
    check_per_row(layer_scale, C, "affine_glu");
  }
  at::Tensor out = at::empty(out_shape, z.options());
  launch::affine_glu(dtype_of(z), z.data_ptr(), scale.defined() ? scale.data_ptr<float>() : nullptr,
                     shift.data_ptr<float>(), residual.defined() ? residual.data_ptr() : nullptr,
                     layer_scale.defined() ? layer_scale.data_ptr<float>() : nullptr, out.data_ptr(), N, C, S, L,
                     current_stream(z));
  check_launch("affine_glu");
  return out;
}

#else  // a build without the kernels: rows_usable_for is false, so these are never reached

std::pair<at::Tensor, at::Tensor> row_moments(const at::Tensor&) {
  TORCH_CHECK(false, "row_moments: ", describe());
}
at::Tensor affine_rows(const at::Tensor&, const at::Tensor&, const at::Tensor&, bool) {
  TORCH_CHECK(false, "affine_rows: ", describe());
}
at::Tensor affine_glu(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  TORCH_CHECK(false, "affine_glu: ", describe());
}

#endif

}  // namespace stemkit::kernels
