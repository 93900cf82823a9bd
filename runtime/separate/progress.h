// A one-line progress bar on stderr, for downloads (MB) and for separation
// (seconds of audio), e.g.
//   htdemucs_ft [#############.................]  45% 12.3/27.1 MB 3.2 MB/s ETA 0:05
// Redrawn in place with '\r' at most ~10 times a second; nothing at all is
// printed when the stream is not a terminal (logs, pipes, CI) or when quiet.
#pragma once

#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <optional>
#include <string>

namespace stemkit::separate {

// How amounts are shown: value / divisor with `decimals` digits, then `suffix`
// ("12.3/27.1 MB"); rates as value-per-second / divisor, then `rate_suffix`
// ("3.2 MB/s", "12.5x"). The suffixes carry their own leading space, if any.
struct ProgressUnit {
  double divisor = 1.0;
  int decimals = 1;
  std::string suffix;       // " MB", " s"
  std::string rate_suffix;  // " MB/s", "x" (seconds of audio per second: times real time)

  static ProgressUnit megabytes() { return {1e6, 1, " MB", " MB/s"}; }  // 10^6 bytes
  static ProgressUnit audio_seconds() { return {1.0, 1, " s", "x"}; }
};

// One frame of the bar, without '\r' or padding. `total` < 0: unknown (no bar,
// no percentage, no ETA); `rate` < 0 or 0: unknown (no rate, "ETA --:--").
// `width` is the number of cells inside the brackets.
std::string render_progress_line(const std::string& label, double done, double total, double rate,
                                 const ProgressUnit& unit, int width = 30);

// "0:05", "12:34", "1:02:03".
std::string format_eta(double seconds);

class ProgressBar {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic

  struct Options {
    std::string label;
    ProgressUnit unit = ProgressUnit::megabytes();
    bool quiet = false;
    FILE* stream = stderr;
    // Whether `stream` is a terminal; nullopt = ask isatty(fileno(stream)).
    std::optional<bool> is_terminal;
    double min_redraw_interval_s = 0.1;
    int bar_width = 30;  // shrunk to fit a narrow terminal
    Clock clock;         // empty = std::chrono::steady_clock
  };

  explicit ProgressBar(Options options);
  ~ProgressBar();  // finish()
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // The amount done so far and the total (< 0 while unknown). Redraws when
  // at least min_redraw_interval_s passed since the last frame, or when
  // `done` reaches `total`.
  void update(double done, double total);

  // The last frame and a newline, if anything was drawn; idempotent.
  void finish();

  // Whether this bar draws at all (a terminal, not quiet).
  bool enabled() const { return enabled_; }

 private:
  double now() const;
  void draw(double t);

  Options options_;
  bool enabled_ = false;
  bool drawn_ = false;
  bool finished_ = false;
  double done_ = 0, total_ = -1;
  double last_draw_ = -1e300;
  size_t last_length_ = 0;
  std::deque<std::pair<double, double>> samples_;  // (time, done), the last few seconds, for the rate
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace stemkit::separate
