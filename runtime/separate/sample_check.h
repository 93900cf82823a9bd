// Samples that are not numbers: a float WAV can hold NaN or infinite samples
// (a broken export, a damaged file), which the models turn into all-NaN stems
// (--float32) or silence (16-bit). The runner checks every decoded input
// before separating it, on the decoding thread.
#pragma once

#include <cstdint>
#include <string>

namespace stemkit::separate {

// Planar samples (data[channel * frames + i]) at `samplerate`, read from
// `path`. Without `sanitize`, throws stemkit::Error at the first NaN or
// infinite sample, naming the file, its time, channel and value, how many
// there are, and the fix. With it, replaces each with 0 and returns how many
// there were.
int64_t check_samples(const std::string& path, float* data, int channels, int64_t frames, int samplerate,
                      bool sanitize);

}  // namespace stemkit::separate
