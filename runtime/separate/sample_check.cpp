// NaN and infinite samples in a decoded input. See sample_check.h.
#include "runtime/separate/sample_check.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include <fmt/format.h>

#include "runtime/error.h"

namespace stemkit::separate {

namespace {

// Whether any of n samples is NaN or infinite: one branch per block, so the
// common case (none) is a vectorizable pass.
bool any_non_finite(const float* x, int64_t n) {
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) bad |= !(std::fabs(x[i]) <= FLT_MAX);
  return bad;
}

std::string timestamp(int64_t frame, int samplerate) {
  const double s = samplerate > 0 ? static_cast<double>(frame) / samplerate : 0;
  const auto minutes = static_cast<int64_t>(s / 60);
  return fmt::format("{}:{:06.3f}", minutes, s - 60.0 * static_cast<double>(minutes));
}

}  // namespace

int64_t check_samples(const std::string& path, float* data, int channels, int64_t frames, int samplerate,
                      bool sanitize) {
  constexpr int64_t kBlock = 4096;
  int64_t count = 0;
  int64_t first_frame = -1;
  int first_channel = 0;
  float first_value = 0;
  for (int c = 0; c < channels; ++c) {
    float* x = data + static_cast<size_t>(c) * static_cast<size_t>(frames);
    for (int64_t b = 0; b < frames; b += kBlock) {
      const int64_t n = std::min(kBlock, frames - b);
      if (!any_non_finite(x + b, n)) continue;
      for (int64_t i = b; i < b + n; ++i) {
        if (std::fabs(x[i]) <= FLT_MAX) continue;
        if (first_frame < 0 || i < first_frame) {
          first_frame = i;
          first_channel = c;
          first_value = x[i];
        }
        ++count;
        if (sanitize) x[i] = 0;
      }
    }
  }
  if (count == 0 || sanitize) return count;
  throw Error(
      "{}: sample {} of channel {} (at {}) is {}{}: the file is damaged or was exported wrongly; export it again, "
      "or pass --sanitize to replace such samples with silence",
      path, first_frame, first_channel + 1, timestamp(first_frame, samplerate),
      std::isnan(first_value) ? "NaN"
      : first_value > 0       ? "+Inf"
                              : "-Inf",
      count > 1 ? fmt::format(" (and {} more NaN or infinite samples)", count - 1) : "");
}

}  // namespace stemkit::separate
