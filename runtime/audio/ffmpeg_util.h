// What runtime/audio's FFmpeg readers and writers share (internal to
// runtime/audio: audio.h is the one entry point): FFmpeg's error codes as
// text, with the message its library logged on this thread for the failure.
#pragma once

#include <cstddef>
#include <string>

namespace stemkit::audio::detail {

// Sets FFmpeg up for this process, once, before its first use:
// - FFmpeg logs its reasons ("Header missing", "Invalid sample rate") through a
//   process-wide callback rather than returning them; the one installed here
//   keeps the last error-level line of each thread instead of printing it, so
//   the reason reaches the user inside our error, not as a stray stderr line.
// - No single allocation of FFmpeg's may exceed kMaxFfmpegAllocation: its
//   demuxers size some buffers from what a file's header claims (a 98-byte WAV
//   whose LIST chunk claims 2 GB made libavformat 59 take 2 GB; the audio
//   fuzzer found it). Audio never needs one that large; our own sample buffers
//   are not FFmpeg's allocations.
void prepare_ffmpeg();
inline constexpr size_t kMaxFfmpegAllocation = size_t{64} << 20;
// Forgets this thread's last logged line (before a call whose failure we report).
void clear_ffmpeg_log();
// av_strerror's text for `code`, and the last error line FFmpeg logged on this
// thread if there is one: "Invalid data found when processing input (mp3float: Header missing)".
std::string ffmpeg_error(int code);

}  // namespace stemkit::audio::detail
