// ensemble.py's average_waveforms, with librosa's stft and istft as it calls
// them. Where upstream computes in float32 (NumPy keeps a float32 array
// float32 when it is multiplied by a Python float; librosa's overlap-add and
// window sums accumulate into float32 arrays; scipy's inverse FFT of complex64
// is single precision), this does too, in the same order, so that the result
// matches upstream's to float32 rounding. Plain loops, readable beside the Python.
#include "runtime/separate/ensemble.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <complex>
#include <functional>
#include <stdexcept>
#include <type_traits>

namespace stemkit::separate {
namespace {

using cfloat = c10::complex<float>;

// scipy.signal.get_window("hann", n, fftbins=True): general_cosine(n + 1,
// [0.5, 0.5]) without its last point, fac = linspace(-pi, pi, n + 1).
std::vector<double> hann_window(int64_t n) {
  std::vector<double> w(static_cast<size_t>(n));
  const double step = 2 * M_PI / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    w[static_cast<size_t>(i)] = 0.5 + 0.5 * std::cos(-M_PI + static_cast<double>(i) * step);
  return w;
}

// librosa.stft(wave, n_fft=2048, hop_length=1024) of each channel: the wave
// padded with n_fft / 2 zeros each side, frames every hop, each multiplied by
// the (float64) window and transformed in float64 (scipy.fft.rfft of a float64
// array), stored as complex64 (librosa's dtype for a float32 input).
// (channels, length) float32 -> (channels, frames, n_fft / 2 + 1) complex64
// (librosa's axes are (channels, bins, frames): only the layout differs).
at::Tensor librosa_stft(const at::Tensor& wave) {
  const at::Tensor padded = at::constant_pad_nd(wave, {kEnsembleNfft / 2, kEnsembleNfft / 2}, 0);
  const at::Tensor frames = padded.unfold(-1, kEnsembleNfft, kEnsembleHop).to(at::kDouble);
  const std::vector<double> w = hann_window(kEnsembleNfft);
  const at::Tensor window = at::from_blob(const_cast<double*>(w.data()), {kEnsembleNfft}, at::kDouble);
  return at::fft_rfft(frames * window, kEnsembleNfft, -1).to(at::kComplexFloat).contiguous();
}

// librosa.istft(spec, hop_length=1024, length=length) of each channel:
// scipy.fft.irfft of the complex64 frames (single precision), times the
// float64 window, overlap-added frame after frame into a float32 signal
// (librosa's __overlap_add), divided by the squared window summed the same way
// (window_sumsquare) wherever that sum exceeds float32's smallest normal
// number, the centre padding cut off.
at::Tensor librosa_istft(const at::Tensor& spec, int64_t length) {
  const int64_t channels = spec.size(0);
  const int64_t n_frames =
      std::min<int64_t>(spec.size(1), (length + 2 * (kEnsembleNfft / 2) + kEnsembleHop - 1) / kEnsembleHop);
  const std::vector<double> w = hann_window(kEnsembleNfft);
  const at::Tensor frames =
      at::fft_irfft(spec.slice(1, 0, n_frames), kEnsembleNfft, -1).to(at::kFloat).contiguous();  // float32
  at::Tensor out = at::zeros({channels, length}, at::kFloat);
  for (int64_t c = 0; c < channels; ++c) {
    float* y = out[c].data_ptr<float>();
    const float* ytmp = frames[c].data_ptr<float>();
    for (int64_t k = 0; k < n_frames; ++k) {
      const int64_t sample = k * kEnsembleHop - kEnsembleNfft / 2;  // where the frame starts in y
      for (int64_t j = 0; j < kEnsembleNfft; ++j) {
        const int64_t p = sample + j;
        if (p < 0 || p >= length) continue;
        const double v = w[static_cast<size_t>(j)] * static_cast<double>(ytmp[k * kEnsembleNfft + j]);
        y[p] = static_cast<float>(static_cast<double>(y[p]) + v);
      }
    }
  }
  // window_sumsquare(n_frames): float32, over n_fft + hop * (n_frames - 1) samples.
  const int64_t n = kEnsembleNfft + kEnsembleHop * (n_frames - 1);
  std::vector<float> sum(static_cast<size_t>(n), 0.0f);
  for (int64_t k = 0; k < n_frames; ++k)
    for (int64_t j = 0; j < kEnsembleNfft && k * kEnsembleHop + j < n; ++j) {
      float& x = sum[static_cast<size_t>(k * kEnsembleHop + j)];
      x = static_cast<float>(static_cast<double>(x) + w[static_cast<size_t>(j)] * w[static_cast<size_t>(j)]);
    }
  for (int64_t c = 0; c < channels; ++c) {
    float* y = out[c].data_ptr<float>();
    for (int64_t p = 0; p < length; ++p) {
      const int64_t q = p + kEnsembleNfft / 2;  // fix_length(sum[n_fft // 2:], length): zeros past its end
      const float s = q < n ? sum[static_cast<size_t>(q)] : 0.0f;
      if (s > FLT_MIN) y[p] /= s;
    }
  }
  return out;
}

// numpy's ordering of complex numbers (np.sort, np.partition): by the real
// part, then the imaginary part.
bool complex_less(const cfloat& a, const cfloat& b) {
  return a.real() < b.real() || (a.real() == b.real() && a.imag() < b.imag());
}

// np.median(values, axis=0) of one element's values: the middle one, or the
// float32 mean of the two middle ones (np.mean: their sum, then / 2).
template <class T, class Less>
T median_of(std::vector<T>& values, Less less) {
  std::sort(values.begin(), values.end(), less);
  const size_t n = values.size();
  if (n % 2 == 1) return values[n / 2];
  return (values[n / 2 - 1] + values[n / 2]) / static_cast<float>(2);
}

// lambda_min / lambda_max / absmax (axis=0, key=np.abs): the value whose
// magnitude is least (most); np.argmin and np.argmax take the first on a tie.
// std::abs of a complex<float> is hypotf, as numpy's np.abs of complex64.
template <class T>
float magnitude(const T& v) {
  if constexpr (std::is_same_v<T, float>) {
    return std::fabs(v);
  } else {
    return std::hypot(v.real(), v.imag());
  }
}

// The per-element combinations of average_waveforms on `count` arrays of
// `size` values each (float for the *_wave algorithms, complex64 for *_fft).
template <class T>
void combine(const std::vector<const T*>& in, T* out, int64_t size, const std::vector<double>& weights,
             EnsembleAlgorithm algorithm) {
  const size_t count = in.size();
  using A = EnsembleAlgorithm;
  if (algorithm == A::avg_wave || algorithm == A::avg_fft) {
    // mod_track.append(pred_track[i] * weights[i]); .sum(axis=0); /= np.array(weights).sum():
    // a float32 array times a Python float is float32 (the weight rounded to float32 first).
    double weight_sum = 0;
    for (double x : weights) weight_sum += x;
    const float divisor = static_cast<float>(weight_sum);
    for (int64_t e = 0; e < size; ++e) {
      T acc = in[0][e] * static_cast<float>(weights[0]);
      for (size_t i = 1; i < count; ++i) acc += in[i][e] * static_cast<float>(weights[i]);
      if constexpr (std::is_same_v<T, float>)
        out[e] = acc / divisor;
      else  // numpy divides complex64 by (divisor + 0j) as Smith's algorithm does: times 1 / divisor
        out[e] = acc * (1.0f / divisor);
    }
    return;
  }
  std::vector<T> values(count);
  for (int64_t e = 0; e < size; ++e) {
    for (size_t i = 0; i < count; ++i) values[i] = in[i][e];
    if (algorithm == A::median_wave || algorithm == A::median_fft) {
      if constexpr (std::is_same_v<T, float>)
        out[e] = median_of(values, std::less<float>());
      else
        out[e] = median_of(values, complex_less);
      continue;
    }
    const bool least = algorithm == A::min_wave || algorithm == A::min_fft;
    size_t pick = 0;
    float best = magnitude(values[0]);
    for (size_t i = 1; i < count; ++i) {
      const float m = magnitude(values[i]);
      if (least ? m < best : m > best) {
        best = m;
        pick = i;
      }
    }
    out[e] = values[pick];
  }
}

}  // namespace

const std::vector<std::string>& ensemble_algorithm_names() {
  static const std::vector<std::string> names{"avg_wave", "median_wave", "min_wave", "max_wave",
                                              "avg_fft",  "median_fft",  "min_fft",  "max_fft"};
  return names;
}

std::optional<EnsembleAlgorithm> parse_ensemble_algorithm(std::string_view name) {
  const auto& names = ensemble_algorithm_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<EnsembleAlgorithm>(i);
  return std::nullopt;
}

std::string_view ensemble_algorithm_name(EnsembleAlgorithm algorithm) {
  return ensemble_algorithm_names().at(static_cast<size_t>(algorithm));
}

bool ensemble_uses_weights(EnsembleAlgorithm algorithm) {
  return algorithm == EnsembleAlgorithm::avg_wave || algorithm == EnsembleAlgorithm::avg_fft;
}

at::Tensor average_waveforms(const std::vector<at::Tensor>& tracks, const std::vector<double>& weights,
                             EnsembleAlgorithm algorithm) {
  if (tracks.empty()) throw std::invalid_argument("average_waveforms: no tracks");
  if (weights.size() != tracks.size()) throw std::invalid_argument("average_waveforms: one weight per track");
  for (const auto& t : tracks)
    if (t.dim() != 2 || !t.sizes().equals(tracks[0].sizes()))
      throw std::invalid_argument("average_waveforms: tracks of one (channels, length) shape");
  const int64_t final_length = tracks[0].size(1);
  using A = EnsembleAlgorithm;
  const bool spectral =
      algorithm == A::avg_fft || algorithm == A::median_fft || algorithm == A::min_fft || algorithm == A::max_fft;
  std::vector<at::Tensor> mod_track;  // each track, or its spectrum
  for (const auto& t : tracks) {
    const at::Tensor wave = t.to(at::kCPU, at::kFloat).contiguous();
    mod_track.push_back(spectral ? librosa_stft(wave) : wave);
  }
  at::Tensor out = at::empty_like(mod_track[0]);
  if (spectral) {
    std::vector<const cfloat*> in;
    for (const auto& s : mod_track) in.push_back(s.data_ptr<cfloat>());
    combine(in, out.data_ptr<cfloat>(), out.numel(), weights, algorithm);
    return librosa_istft(out, final_length);
  }
  std::vector<const float*> in;
  for (const auto& s : mod_track) in.push_back(s.data_ptr<float>());
  combine(in, out.data_ptr<float>(), out.numel(), weights, algorithm);
  return out;
}

}  // namespace stemkit::separate
