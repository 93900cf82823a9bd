#include "runtime/audio/ffmpeg_util.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
}

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace stemkit::audio::detail {
namespace {

thread_local std::string last_line;

void keep_errors(void* avcl, int level, const char* format, va_list args) {
  if (level > AV_LOG_ERROR) return;  // warnings and chatter: FFmpeg's business, not the user's
  char line[512];
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(avcl, level, format, copy, line, sizeof line, &print_prefix);
  va_end(copy);
  std::string text = line;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  // "[mp3float @ 0x55d...] Header missing": the address means nothing to a user.
  if (text.size() > 1 && text.front() == '[') {
    const size_t at = text.find(" @ 0x"), close = text.find("] ");
    if (at != std::string::npos && close != std::string::npos && at < close)
      text = text.substr(1, at - 1) + ": " + text.substr(close + 2);
  }
  if (!text.empty()) last_line = text;
}

}  // namespace

void prepare_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_callback(keep_errors);
    av_max_alloc(kMaxFfmpegAllocation);
  });
}

void clear_ffmpeg_log() { last_line.clear(); }

std::string ffmpeg_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  std::string out = text;
  if (!last_line.empty() && last_line != out) out += " (" + last_line + ")";
  return out;
}

}  // namespace stemkit::audio::detail
