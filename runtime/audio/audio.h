// Audio in and out, without libtorch: reading (WAV, FLAC, OGG, MP3 through
// libsndfile), resampling (soxr), channel conversion, demucs' clipping
// modes, and writing WAV (16/24-bit, 32-bit float) and FLAC (16/24-bit)
// atomically: a temporary file renamed into place, so a crash never leaves
// a truncated stem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"  // a file that cannot be read or written: stemkit::Error naming it and the fix

namespace stemkit::audio {

// Planar float samples: data[channel * frames + i], as a (channels, frames) tensor lays them out.
struct Audio {
  int samplerate = 0;
  int channels = 0;
  int64_t frames = 0;
  std::vector<float> data;
  float* channel(int c) { return data.data() + static_cast<size_t>(c) * frames; }
  const float* channel(int c) const { return data.data() + static_cast<size_t>(c) * frames; }
};

Audio read_audio(const std::string& path);

// Resampled to `samplerate` with soxr's high quality; `in` itself when the rate
// already matches (pass it with std::move to spare the copy).
Audio resample(Audio in, int samplerate);

// Mono to stereo (duplicated) and stereo or more to mono (averaged), or to
// stereo (first two kept); `in` itself when it has `channels` already.
Audio to_channels(Audio in, int channels);

enum class Clip { rescale, clamp, tanh, none };
Clip parse_clip(const std::string& name);  // "rescale", "clamp", "tanh", "none"; throws stemkit::Error
// demucs.audio.prevent_clip: rescale divides by max(1.01 * peak, 1); clamp to +-0.99; tanh.
void prevent_clip(Audio& audio, Clip mode);

// Planar float samples owned elsewhere (a tensor's memory, an Audio), laid
// out as Audio's: data[channel * frames + i].
struct AudioView {
  int samplerate = 0;
  int channels = 0;
  int64_t frames = 0;
  const float* data = nullptr;
};
inline AudioView view(const Audio& a) { return {a.samplerate, a.channels, a.frames, a.data.data()}; }

enum class Encoding { pcm16, pcm24, float32 };
// The container follows the extension: .wav (any encoding) or .flac (pcm16, pcm24).
void write_audio(const std::string& path, const Audio& audio, Encoding encoding);
// The same file as prevent_clip(copy, clip) then write_audio(copy): the clip
// mode is applied while the samples are converted for the file, so a stem
// needs no copy of its own and one pass less (a tensor's memory, as is).
void write_audio(const std::string& path, const AudioView& audio, Encoding encoding, Clip clip = Clip::none);

}  // namespace stemkit::audio
