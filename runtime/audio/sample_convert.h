// What runtime/audio's readers and writers share (libsndfile's and FFmpeg's;
// internal: audio.h is the entry point): the bounds of a sane stream, demucs'
// clip modes as a per-sample transform, and floats to 16-bit integers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "runtime/audio/audio.h"

namespace stemkit::audio::detail {

// Bounds that no music file exceeds, checked by both readers: a damaged
// header must not ask for a resampler of absurd ratio or absurd memory.
constexpr int kMaxChannels = 64;
constexpr int kMinSampleRate = 1000;
constexpr int kMaxSampleRate = 1536000;

// A float in [-1, 1) as a 16-bit integer: x * 32768, saturated to [-32768,
// 32767], rounded to nearest (ties to even, as lrintf and libsndfile 1.2.1 and
// later round; 1.2.0 rounds down), NaN to 0. Adding and subtracting 1.5 * 2^23
// rounds a float of magnitude below 2^22 to an integer in the FPU's rounding
// mode, without lrintf's call per sample (three times faster on the
// development machine).
inline int16_t to_int16(float x) {
  float v = x * 32768.0f;
  v = v == v ? std::min(std::max(v, -32768.0f), 32767.0f) : 0.0f;
  return static_cast<int16_t>((v + 12582912.0f) - 12582912.0f);
}

// demucs' rescale divisor: max(1.01 * peak, 1).
inline float rescale_divisor(const float* data, size_t n) {
  float peak = 0;
  for (size_t i = 0; i < n; ++i) peak = std::max(peak, std::fabs(data[i]));
  return std::max(1.01f * peak, 1.0f);
}

// Calls body(transform) with the clip mode as a per-sample transform: the
// same operation prevent_clip applies in place, so the same values.
template <class Body>
void with_clip(const AudioView& a, Clip mode, const Body& body) {
  switch (mode) {
    case Clip::none: return body([](float v) { return v; });
    case Clip::rescale: {
      const float div = rescale_divisor(a.data, static_cast<size_t>(a.channels) * static_cast<size_t>(a.frames));
      return body([div](float v) { return v / div; });
    }
    case Clip::clamp: return body([](float v) { return std::clamp(v, -0.99f, 0.99f); });
    case Clip::tanh: return body([](float v) { return std::tanh(v); });
  }
}

}  // namespace stemkit::audio::detail
