// What runtime/audio's FFmpeg readers and writers share (internal to
// runtime/audio: audio.h is the one entry point): FFmpeg's error codes as
// text, with the message its library logged on this thread for the failure.
#pragma once

#include <string>

namespace stemkit::audio::detail {

// FFmpeg logs its reasons ("Header missing", "Invalid sample rate") through a
// process-wide callback rather than returning them; this installs one (once)
// that keeps the last error-level line of each thread instead of printing it,
// so the reason reaches the user inside our error, not as a stray stderr line.
void capture_ffmpeg_logs();
// Forgets this thread's last logged line (before a call whose failure we report).
void clear_ffmpeg_log();
// av_strerror's text for `code`, and the last error line FFmpeg logged on this
// thread if there is one: "Invalid data found when processing input (mp3float: Header missing)".
std::string ffmpeg_error(int code);

}  // namespace stemkit::audio::detail
