// The inverse STFT the models use: torch.istft(center=True) computed the way
// ATen computes it (inverse real FFT, window, overlap-add, divide by the
// summed squared window, trim the centre padding), with the window envelope
// made once per shape. ATen's istft checks that envelope for zeros on every
// call with a device-to-host copy, which a CUDA graph cannot capture.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <optional>
#include <tuple>

namespace stemkit::dsp {

class InverseStft {
 public:
  // z: (N, n_fft / 2 + 1, frames) complex; window: (n_fft) real, on z's device.
  // Returns (N, length), or (N, hop * (frames - 1)) without a length, as torch.istft.
  at::Tensor operator()(const at::Tensor& z, int64_t n_fft, int64_t hop, const at::Tensor& window, bool normalized,
                        std::optional<int64_t> length = std::nullopt);
  void clear() { envelopes_.clear(); }

 private:
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int, int>, at::Tensor> envelopes_;
};

}  // namespace stemkit::dsp
