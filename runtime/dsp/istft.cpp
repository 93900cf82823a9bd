#include "runtime/dsp/istft.h"

#include <ATen/ATen.h>

#include <stdexcept>

namespace stemkit::dsp {

at::Tensor InverseStft::operator()(const at::Tensor& z, int64_t n_fft, int64_t hop, const at::Tensor& window,
                                   bool normalized, std::optional<int64_t> length) {
  if (z.dim() != 3 || z.size(1) != n_fft / 2 + 1 || window.numel() != n_fft)
    throw std::invalid_argument("istft: expected (N, n_fft / 2 + 1, frames) and a window of n_fft samples");
  const int64_t n = z.size(0), frames = z.size(2), expected = n_fft + hop * (frames - 1);
  const int64_t start = n_fft / 2, end = length ? start + *length : expected - n_fft / 2;
  const auto device = z.device();
  auto key =
      std::make_tuple(n_fft, hop, frames, end, static_cast<int>(device.type()), static_cast<int>(device.index()));
  auto it = envelopes_.find(key);
  if (it == envelopes_.end()) {
    at::Tensor env = at::unfold_backward(window.pow(2).expand({1, frames, n_fft}), {1, expected}, 1, n_fft, hop);
    env = env.slice(1, start, std::min(end, expected));
    if (env.abs().min().item<double>() < 1e-11)
      throw std::invalid_argument("istft: the window overlap-add has zeros (NOLA)");
    it = envelopes_.emplace(key, env).first;
  }
  at::Tensor frames_t = at::fft_irfft(z, n_fft, /*dim=*/1, normalized ? "ortho" : "backward") * window.view({1, -1, 1});
  at::Tensor y = at::unfold_backward(frames_t.transpose(1, 2), {n, expected}, 1, n_fft, hop);  // overlap-add
  y = y.slice(1, start, std::min(end, expected)) / it->second;
  return end > expected ? at::constant_pad_nd(y, {0, end - expected}) : y;
}

}  // namespace stemkit::dsp
