// Running the `separate` binary from a test, and short songs for it to
// separate: for the end-to-end tests (needs libtorch and audio I/O).
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <string>

#include "runtime/audio/audio.h"
#include "tests/separate/run_command.h"

namespace stemkit::separate::test {

// `seconds` of stereo noise at 44.1 kHz, as 32-bit float WAV.
inline void write_noise_song(const std::filesystem::path& path, double seconds = 2.5) {
  audio::Audio a;
  a.samplerate = 44100;
  a.channels = 2;
  a.frames = static_cast<int64_t>(seconds * a.samplerate);
  at::Tensor t = 0.2 * at::randn({2, a.frames}, at::TensorOptions().dtype(at::kFloat));
  a.data.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  audio::write_audio(path.string(), a, audio::Encoding::float32);
}

// A file's samples as a (channels, frames) tensor.
inline at::Tensor read_samples(const std::filesystem::path& path) {
  audio::Audio a = audio::read_audio(path.string());
  return at::from_blob(a.data.data(), {a.channels, a.frames}, at::kFloat).clone();
}

}  // namespace stemkit::separate::test
