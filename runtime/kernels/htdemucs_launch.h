// The launchers of the HTDemucs kernels (htdemucs_kernels.cu): plain pointers,
// sizes and a stream, no libtorch. Callers go through htdemucs_kernels.h, which
// checks shapes, dtypes and layout and falls back to ATen where these do not apply.
//
// Every tensor is contiguous and row-major; a "row" is the last dimension (the
// frames of a frequency layer's (B, C, Fr, T), the samples of a time layer's
// (B, C, T)), and per-row values (scale, shift, sums) are indexed by the row's
// position among all rows. Arithmetic is in float32 with one rounding per result.
#pragma once

#include <cstdint>

#include "runtime/kernels/launch.h"

namespace stemkit::kernels::launch {

// sums[2r] = sum of x's row r, sums[2r + 1] = its sum of squares, over
// `chunk` elements from column c * chunk for each c < chunks: sums is
// (rows, chunks, 2), accumulated and written in float64 for float32 x (the
// variance comes from their difference) and in float32 otherwise.
void row_sums(DType dtype, const void* x, int64_t rows, int64_t len, int64_t chunk, void* sums, void* stream);

enum class Act { none, gelu };

// y[r, t] = act(x[r, t] * scale[r] + shift[r]); act: none, or the exact
// (erf) GELU. scale may be null (1). scale and shift are float32, one per row.
void affine_rows(DType dtype, const void* x, const float* scale, const float* shift, void* y, int64_t rows,
                 int64_t len, Act act, void* stream);

// The GLU over the channel halves of z (N, 2C, S, L) after a per-row affine:
//   a = z[n, c, s, :] * scale[zr(n, c, s)] + shift[zr(n, c, s)]
//   g = z[n, C + c, s, :] * scale[zr(n, C + c, s)] + shift[zr(n, C + c, s)]
//   out[n, c, s, :] = residual[n, c, s, :] + layer_scale[c] * a * sigmoid(g)
// with zr the row index in z; scale may be null (1); residual and layer_scale
// may be null (out = a * sigmoid(g)). layer_scale, scale and shift are float32.
void affine_glu(DType dtype, const void* z, const float* scale, const float* shift, const void* residual,
                const float* layer_scale, void* out, int64_t N, int64_t C, int64_t S, int64_t L, void* stream);

}  // namespace stemkit::kernels::launch
