#include "runtime/dsp/mel_filters.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace stemkit::dsp {
namespace {

// librosa.core.convert's Slaney constants, computed as librosa computes them.
constexpr double kFMin = 0.0;
const double kFSp = 200.0 / 3;
constexpr double kMinLogHz = 1000.0;
const double kMinLogMel = (kMinLogHz - kFMin) / kFSp;
const double kLogStep = std::log(6.4) / 27.0;

// librosa.hz_to_mel(f, htk=False) for a scalar.
double hz_to_mel(double f) {
  double mel = (f - kFMin) / kFSp;
  if (f >= kMinLogHz) mel = kMinLogMel + std::log(f / kMinLogHz) / kLogStep;
  return mel;
}

// librosa.mel_to_hz(m, htk=False), element by element.
double mel_to_hz(double mel) {
  double hz = kFMin + kFSp * mel;
  if (mel >= kMinLogMel) hz = kMinLogHz * std::exp(kLogStep * (mel - kMinLogMel));
  return hz;
}

}  // namespace

std::vector<float> mel_filter_bank(double sample_rate, int64_t n_fft, int64_t n_mels) {
  if (!(sample_rate > 0) || n_fft <= 0 || n_mels <= 0)
    throw std::invalid_argument("mel_filter_bank: sample rate, n_fft and n_mels must be positive");
  const int64_t bins = 1 + n_fft / 2;
  // np.fft.rfftfreq(n_fft, d=1.0/sr): arange(bins) * (1.0 / (n * d))
  const double val = 1.0 / (static_cast<double>(n_fft) * (1.0 / sample_rate));
  std::vector<double> fftfreqs(static_cast<size_t>(bins));
  for (int64_t k = 0; k < bins; ++k) fftfreqs[static_cast<size_t>(k)] = static_cast<double>(k) * val;
  // mel_frequencies(n_mels + 2, fmin=0, fmax=sr/2): np.linspace over the mel scale, back to Hz
  const double fmax = sample_rate / 2;
  const double min_mel = hz_to_mel(kFMin), max_mel = hz_to_mel(fmax);
  const int64_t points = n_mels + 2;
  const double step = (max_mel - min_mel) / static_cast<double>(points - 1);
  std::vector<double> mel_f(static_cast<size_t>(points));
  for (int64_t i = 0; i < points; ++i) {
    const double mel = i + 1 == points ? max_mel : static_cast<double>(i) * step + min_mel;
    mel_f[static_cast<size_t>(i)] = mel_to_hz(mel);
  }
  std::vector<float> weights(static_cast<size_t>(n_mels * bins), 0.0f);
  for (int64_t i = 0; i < n_mels; ++i) {
    const size_t a = static_cast<size_t>(i);
    const double fdiff_lo = mel_f[a + 1] - mel_f[a], fdiff_hi = mel_f[a + 2] - mel_f[a + 1];
    const double enorm = 2.0 / (mel_f[a + 2] - mel_f[a]);
    for (int64_t k = 0; k < bins; ++k) {
      const double f = fftfreqs[static_cast<size_t>(k)];
      const double lower = -(mel_f[a] - f) / fdiff_lo;
      const double upper = (mel_f[a + 2] - f) / fdiff_hi;
      const float w = static_cast<float>(std::max(0.0, std::min(lower, upper)));
      weights[static_cast<size_t>(i * bins + k)] = static_cast<float>(static_cast<double>(w) * enorm);
    }
  }
  return weights;
}

MelBands mel_bands(double sample_rate, int64_t n_fft, int64_t num_bands) {
  std::vector<float> fb = mel_filter_bank(sample_rate, n_fft, num_bands);
  MelBands m;
  m.num_bands = num_bands;
  m.num_freqs = 1 + n_fft / 2;
  fb.front() = 1.0f;  // upstream: "it doesn't include the first freq? just force a value"
  fb.back() = 1.0f;   // and the last, which is 0 or ~1e-18 depending on the platform
  m.covers.resize(fb.size());
  m.num_freqs_per_band.assign(static_cast<size_t>(num_bands), 0);
  m.num_bands_per_freq.assign(static_cast<size_t>(m.num_freqs), 0);
  for (int64_t b = 0; b < num_bands; ++b)
    for (int64_t f = 0; f < m.num_freqs; ++f) {
      const size_t at = static_cast<size_t>(b * m.num_freqs + f);
      m.covers[at] = fb[at] > 0.0f;
      if (!m.covers[at]) continue;
      m.freq_indices.push_back(f);
      ++m.num_freqs_per_band[static_cast<size_t>(b)];
      ++m.num_bands_per_freq[static_cast<size_t>(f)];
    }
  for (int64_t f = 0; f < m.num_freqs; ++f)
    if (m.num_bands_per_freq[static_cast<size_t>(f)] == 0)
      throw std::invalid_argument("mel bands: STFT bin " + std::to_string(f) + " of " + std::to_string(m.num_freqs) +
                                  " is in none of the " + std::to_string(num_bands) + " mel bands (sample rate " +
                                  std::to_string(sample_rate) + ", n_fft " + std::to_string(n_fft) +
                                  "); upstream asserts every frequency is covered");
  for (int64_t b = 0; b < num_bands; ++b)
    if (m.num_freqs_per_band[static_cast<size_t>(b)] == 0)
      throw std::invalid_argument("mel bands: band " + std::to_string(b) + " of " + std::to_string(num_bands) +
                                  " covers no STFT bin (n_fft " + std::to_string(n_fft) +
                                  " is too small for that many bands)");
  return m;
}

}  // namespace stemkit::dsp
