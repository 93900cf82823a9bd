// libFuzzer target for the audio decoders: arbitrary bytes, and mutations of
// short real files (tests/fuzz/run.sh makes them with the ffmpeg tool), as a
// file given to `separate`, read through the same entry point it uses
// (read_audio: libsndfile for WAV/AIFF/FLAC, FFmpeg's libraries otherwise).
// Each must give a stemkit::Error or samples, never a crash, a hang or a huge
// allocation.
//   tests/fuzz/run.sh [seconds]   builds it with clang and runs it
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "runtime/audio/audio.h"

using namespace stemkit::audio;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An in-memory file, named as a path the readers open like any other.
  int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size && ::write(fd, data, size) != static_cast<ssize_t>(size)) {
    ::close(fd);
    return 0;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    Audio a = read_audio(path);
    // What separate does next with the samples: to the model's rate and channels.
    if (a.frames < (int64_t{1} << 20)) to_channels(resample(std::move(a), 44100), 2);
  } catch (const stemkit::Error&) {
  }
  ::close(fd);
  return 0;
}
