// libFuzzer target for the audio decoders: arbitrary bytes, and mutations of
// short real files (tests/fuzz/run.sh makes them with the ffmpeg tool), as a
// file given to `separate`, read through the same entry point it uses
// (read_audio: libsndfile for WAV/AIFF/FLAC, FFmpeg's libraries otherwise).
// Each must give a stemkit::Error or samples, never a crash, a hang or a huge
// allocation.
//   tests/fuzz/run.sh [seconds]   builds it with clang and runs it
#include <cstdint>
#include <string>

#include "runtime/audio/audio.h"
#include "tests/fuzz/memory_file.h"

using namespace stemkit::audio;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const MemoryFile file(data, size);
  if (!file.ok()) return 0;
  const std::string path = file.path();
  try {
    Audio a = read_audio(path);
    // What separate does next with the samples: to the model's rate and channels.
    if (a.frames < (int64_t{1} << 20)) to_channels(resample(std::move(a), 44100), 2);
  } catch (const stemkit::Error&) {
  }
  return 0;
}
