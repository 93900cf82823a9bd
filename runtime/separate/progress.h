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
#include <mutex>
#include <optional>
#include <string>
#include <vector>

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

// render_progress_line fitted to `columns` (a line as wide as the terminal
// would wrap, and '\r' would no longer redraw it in place): the bar shrunk,
// then the label cut.
std::string fit_progress_line(const std::string& label, double done, double total, double rate,
                              const ProgressUnit& unit, int width, int columns);

// An amount of audio for people: "42.0 s", "12.5 min", "3.25 h".
std::string format_audio_duration(double seconds);

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

// The progress of a run of several files (docs/cli.md, "Progress"). On a
// terminal, a block redrawn in place: a line for the run, and under it a bar
// per device for the file it separates (devices between files have none):
//   separate [######..............] 12/40 files, 1 failed, 42.5 min of audio, 35.2x, ETA 12:30
//   cuda:0 song [#############.................]  45% 12.3/27.1 s 30.1x ETA 0:01
// Not on a terminal (a log, a Slurm job's output): a plain line of the run's
// progress after a file's outcome, at most every `log_interval_s`, and no bar
// ("separate: 12 of 40 files done (1 failed), 42.5 min of audio, 35.2x
// realtime, ETA 12:30"). Quiet: neither. The ETA assumes the files left are as
// long, on average, as those done. Thread-safe: each device's thread reports
// its own slot.
class RunProgress {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic

  struct Options {
    size_t files = 0;                    // the files to separate
    std::vector<std::string> slots{""};  // a label per device ("cuda:1"); "" for a run on one device
    bool quiet = false;
    FILE* stream = stderr;
    std::optional<bool> is_terminal;  // nullopt = isatty(fileno(stream))
    double log_interval_s = 60;       // not a terminal: a line at most this often (0: after each file)
    double min_redraw_interval_s = 0.1;
    Clock clock;  // empty = std::chrono::steady_clock
  };

  explicit RunProgress(Options options);
  ~RunProgress();  // finish()
  RunProgress(const RunProgress&) = delete;
  RunProgress& operator=(const RunProgress&) = delete;

  // Device `slot` starts separating `track`, `seconds` of audio; then has separated `done` of them.
  void start_file(size_t slot, const std::string& track, double seconds);
  void update(size_t slot, double done);
  // Its separation is over (`separated`: it succeeded, and the stems are
  // written meanwhile): its bar goes.
  void end_file(size_t slot, bool separated);
  // A file's outcome: ok (with its seconds of audio) or failed; `separated`:
  // end_file said so for it (the ETA counted it then).
  void file_done(bool ok, double seconds, bool separated);
  // A line for the user (the newline is added): printed above the block, so
  // that the bars do not overwrite it. Printed whether quiet or not.
  void message(const std::string& line);
  // The block's last frame and a newline, if it was drawn; idempotent.
  void finish();

  // The run's line as the block's first line shows it, at `now` (the clock's time).
  std::string run_line(double now) const;

 private:
  struct Slot {
    std::string label;
    bool active = false;
    double done = 0, total = 0;
    std::deque<std::pair<double, double>> samples;  // (time, done), for the rate
  };
  double now() const;
  double eta(double now) const;  // seconds; < 0 unknown
  void draw(double t);           // with the mutex held
  void erase();                  // the block, cursor back to where it began

  Options options_;
  bool terminal_ = false, enabled_ = false, finished_ = false;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  size_t done_ = 0, failed_ = 0;
  size_t separated_ = 0, unseparated_done_ = 0;  // the ETA's files: separated, or done without a separation (failed)
  double audio_ = 0;                             // seconds of audio of the files done
  double start_ = 0, last_draw_ = -1e300, last_log_ = 0;
  size_t drawn_lines_ = 0;
  std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
};

}  // namespace stemkit::separate
