// librosa's mel filter bank, and the band mapping Mel-Band RoFormer builds
// from it, in plain C++ (no libtorch, no Python).
//
// mel_filter_bank(sr, n_fft, n_mels) is librosa.filters.mel(sr=sr, n_fft=n_fft,
// n_mels=n_mels) with every other argument at its default (librosa 0.10 and
// 0.11 compute it the same way): fmin 0, fmax sr / 2, the Slaney mel scale
// (htk=False), norm='slaney', dtype float32. In librosa's own steps, all float64
// until the last two:
//   fftfreqs[k] = k * (1 / (n_fft * (1 / sr)))                  np.fft.rfftfreq
//   hz_to_mel(f) = f / (200/3) below 1000 Hz, else
//                  15 + log(f / 1000) / (log(6.4) / 27)           (Slaney)
//   mel_f = mel_to_hz(linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
//           (linspace: i * step + start, the last point exactly the stop)
//   weights[i][k] = max(0, min(-(mel_f[i] - fftfreqs[k]) / (mel_f[i+1] - mel_f[i]),
//                              (mel_f[i+2] - fftfreqs[k]) / (mel_f[i+2] - mel_f[i+1])))
//                   stored as float32
//   weights[i][k] *= 2 / (mel_f[i+2] - mel_f[i])                 (float64 product, stored float32)
// The order of the operations is librosa's, so that an entry is zero exactly
// where librosa's is: Mel-Band RoFormer only keeps `weights > 0`, and a bin at a
// band's edge would otherwise move between bands.
#pragma once

#include <cstdint>
#include <vector>

namespace stemkit::dsp {

// (n_mels, n_fft / 2 + 1), row-major.
std::vector<float> mel_filter_bank(double sample_rate, int64_t n_fft, int64_t n_mels);

// lucidrains' MelBandRoformer (bs_roformer/mel_band_roformer.py at the pin):
// the filter bank with [0][0] and [-1][-1] forced to 1, `> 0` says which STFT
// bins each band covers; overlapping bands share bins, and their masks are
// averaged over num_bands_per_freq.
struct MelBands {
  int64_t num_bands = 0;
  int64_t num_freqs = 0;                    // n_fft / 2 + 1
  std::vector<uint8_t> covers;              // (num_bands, num_freqs): freqs_per_band
  std::vector<int64_t> freq_indices;        // the covered bins, band by band, ascending within a band
  std::vector<int64_t> num_freqs_per_band;  // (num_bands)
  std::vector<int64_t> num_bands_per_freq;  // (num_freqs), every one >= 1
};

// Throws std::invalid_argument when a bin is in no band (upstream asserts) or
// for a non-positive argument.
MelBands mel_bands(double sample_rate, int64_t n_fft, int64_t num_bands);

}  // namespace stemkit::dsp
