// The eight ways MSST's ensemble.py combines the same stem from several models
// (average_waveforms in ZFTurbo/Music-Source-Separation-Training's
// ensemble.py), on (channels, length) float32 tensors on the CPU. The
// spectral ones take librosa.stft / librosa.istft as ensemble.py calls them:
// n_fft 2048, hop 1024, periodic Hann window of 2048, centred frames with zero
// padding (librosa's pad_mode "constant"), each channel on its own.
// ensemble.cpp follows ensemble.py line by line; tests/separate/ensemble_test.cpp
// compares it with upstream's output (tests/fixtures/ensemble/).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stemkit::separate {

enum class EnsembleAlgorithm { avg_wave, median_wave, min_wave, max_wave, avg_fft, median_fft, min_fft, max_fft };

// ensemble.py's --type names, in its order: "avg_wave", ..., "max_fft".
const std::vector<std::string>& ensemble_algorithm_names();
std::optional<EnsembleAlgorithm> parse_ensemble_algorithm(std::string_view name);
std::string_view ensemble_algorithm_name(EnsembleAlgorithm algorithm);
// Whether the algorithm uses weights (avg_wave and avg_fft; the others ignore them, as upstream).
bool ensemble_uses_weights(EnsembleAlgorithm algorithm);

// ensemble.py's STFT settings.
inline constexpr int64_t kEnsembleNfft = 2048;
inline constexpr int64_t kEnsembleHop = 1024;

// average_waveforms(pred_track, weights, algorithm): `tracks` are one stem as
// each model gave it, (channels, length) float32 on the CPU, all of one shape;
// `weights` one per track, positive. Returns (channels, length) float32.
// Throws std::invalid_argument for tracks of different shapes or a weight
// count that does not match (the caller checks both for users).
at::Tensor average_waveforms(const std::vector<at::Tensor>& tracks, const std::vector<double>& weights,
                             EnsembleAlgorithm algorithm);

}  // namespace stemkit::separate
