// Reading audio through FFmpeg's libraries (libavformat, libavcodec,
// libswresample): every container and codec this FFmpeg reads, the audio
// track of a video file included. Internal to runtime/audio: read_audio
// (audio.h) calls it for what libsndfile does not read exactly.
#pragma once

#include <string>

#include "runtime/audio/audio.h"

namespace stemkit::audio::detail {

// The file's best audio stream (FFmpeg's choice, as the ffmpeg tool makes it)
// decoded whole, as planar floats at its own rate and channel count; the
// encoder's delay and padding are trimmed where the file records them (LAME's
// header, Opus' pre-skip, MP4's edit list). Sets decoder "ffmpeg" and codec.
// Throws stemkit::Error naming the file for anything it cannot read, a damaged
// frame included (where the ffmpeg tool would skip it and leave a gap).
// Only the file itself is opened: a playlist or a reference to another file
// or URL inside it is refused.
Audio ffmpeg_decode(const std::string& path);

}  // namespace stemkit::audio::detail
