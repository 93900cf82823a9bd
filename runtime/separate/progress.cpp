// The terminal progress bar. See progress.h.
#include "runtime/separate/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace stemkit::separate {
namespace {

constexpr double kRateWindowS = 5.0;

int terminal_columns(FILE* stream) {
  struct winsize ws {};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string amount(double v, const ProgressUnit& unit) {
  return fmt::format("{:.{}f}", v / unit.divisor, unit.decimals);
}

}  // namespace

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string render_progress_line(const std::string& label, double done, double total, double rate,
                                 const ProgressUnit& unit, int width) {
  std::string line = label;
  bool known_rate = rate > 0 && std::isfinite(rate);
  if (total > 0) {
    double fraction = std::clamp(done / total, 0.0, 1.0);
    int filled = static_cast<int>(std::floor(fraction * width));
    line +=
        fmt::format(" [{}{}] {}% {}/{}{}", std::string(filled, '#'), std::string(width - filled, '.'),
                    static_cast<int>(std::floor(fraction * 100)), amount(done, unit), amount(total, unit), unit.suffix);
  } else {
    line += fmt::format(" {}{}", amount(done, unit), unit.suffix);
  }
  if (known_rate) line += fmt::format(" {}{}", amount(rate, unit), unit.rate_suffix);
  if (total > 0) {
    double left = std::max(0.0, total - done);
    line += " ETA " + (left == 0 ? std::string("0:00") : known_rate ? format_eta(left / rate) : format_eta(-1));
  }
  return line;
}

std::string fit_progress_line(const std::string& label, double done, double total, double rate,
                              const ProgressUnit& unit, int width, int columns) {
  std::string line = render_progress_line(label, done, total, rate, unit, width);
  if (static_cast<int>(line.size()) < columns) return line;
  width = std::max(10, width - (static_cast<int>(line.size()) - columns + 1));
  line = render_progress_line(label, done, total, rate, unit, width);
  if (static_cast<int>(line.size()) < columns) return line;
  size_t cut = std::min(label.size(), line.size() - static_cast<size_t>(columns) + 2);
  return render_progress_line(label.substr(0, label.size() - cut) + "~", done, total, rate, unit, width);
}

std::string format_audio_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  if (seconds < 3600) return fmt::format("{:.1f} min", seconds / 60);
  return fmt::format("{:.2f} h", seconds / 3600);
}

ProgressBar::ProgressBar(Options options) : options_(std::move(options)) {
  bool tty = options_.is_terminal ? *options_.is_terminal
                                  : (options_.stream != nullptr && ::isatty(::fileno(options_.stream)) == 1);
  enabled_ = !options_.quiet && options_.stream != nullptr && tty;
}

ProgressBar::~ProgressBar() { finish(); }

double ProgressBar::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(double done, double total) {
  if (!enabled_ || finished_) return;
  double t = now();
  done_ = done;
  total_ = total;
  samples_.emplace_back(t, done);
  while (samples_.size() > 2 && samples_.front().first < t - kRateWindowS) samples_.pop_front();
  bool complete = total > 0 && done >= total;
  if (t - last_draw_ >= options_.min_redraw_interval_s || complete) draw(t);
}

void ProgressBar::draw(double t) {
  double rate = -1;
  if (samples_.size() >= 2) {
    const auto& [t0, d0] = samples_.front();
    if (t > t0) rate = (done_ - d0) / (t - t0);
  }
  int columns = terminal_columns(options_.stream);  // 80 when not a terminal (tests)
  std::string line = fit_progress_line(options_.label, done_, total_, rate, options_.unit, options_.bar_width, columns);
  std::string padding(line.size() < last_length_ ? last_length_ - line.size() : 0, ' ');
  std::fprintf(options_.stream, "\r%s%s", line.c_str(), padding.c_str());
  std::fflush(options_.stream);
  last_length_ = line.size();
  last_draw_ = t;
  drawn_ = true;
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_ || !drawn_) return;
  draw(now());
  std::fputc('\n', options_.stream);
  std::fflush(options_.stream);
}

// The run's block on a terminal: drawn from where the cursor was, each line
// erased as it is written; erased (cursor up to the block's first line, then
// to the end of the screen) before a message or a redraw.
RunProgress::RunProgress(Options options) : options_(std::move(options)) {
  terminal_ = options_.is_terminal ? *options_.is_terminal
                                   : (options_.stream != nullptr && ::isatty(::fileno(options_.stream)) == 1);
  enabled_ = !options_.quiet && options_.stream != nullptr;
  slots_.resize(std::max<size_t>(1, options_.slots.size()));
  start_ = last_log_ = now();
}

RunProgress::~RunProgress() { finish(); }

double RunProgress::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
}

double RunProgress::eta(double t) const {
  // The files done, and the parts of those being separated, at the pace so far.
  double progress = static_cast<double>(separated_ + unseparated_done_);
  for (const auto& s : slots_)
    if (s.active && s.total > 0) progress += std::clamp(s.done / s.total, 0.0, 1.0);
  const double left = static_cast<double>(options_.files) - progress;
  if (left <= 0) return 0;
  if (progress <= 0 || t <= start_) return -1;
  return (t - start_) * left / progress;
}

std::string RunProgress::run_line(double t) const {
  const double files = static_cast<double>(std::max<size_t>(options_.files, 1));
  const int width = 20;
  const int filled = static_cast<int>(std::floor(std::clamp(static_cast<double>(done_) / files, 0.0, 1.0) * width));
  std::string line = fmt::format("separate [{}{}] {}/{} files", std::string(filled, '#'),
                                 std::string(width - filled, '.'), done_, options_.files);
  if (failed_ > 0) line += fmt::format(", {} failed", failed_);
  line += ", " + format_audio_duration(audio_) + " of audio";
  if (t > start_ && audio_ > 0) line += fmt::format(", {:.1f}x", audio_ / (t - start_));
  return line + ", ETA " + format_eta(eta(t));
}

void RunProgress::start_file(size_t slot, const std::string& track, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_.at(slot);
  s.active = true;
  s.done = 0;
  s.total = seconds;
  s.samples.clear();
  s.label = options_.slots.empty() || options_.slots.at(slot).empty() ? track : options_.slots[slot] + " " + track;
  if (enabled_ && terminal_ && !finished_) draw(now());
}

void RunProgress::update(size_t slot, double done) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_.at(slot);
  const double t = now();
  s.done = done;
  s.samples.emplace_back(t, done);
  while (s.samples.size() > 2 && s.samples.front().first < t - 5.0) s.samples.pop_front();
  if (enabled_ && terminal_ && !finished_ && t - last_draw_ >= options_.min_redraw_interval_s) draw(t);
}

void RunProgress::end_file(size_t slot, bool separated) {
  std::lock_guard<std::mutex> lock(mutex_);
  slots_.at(slot).active = false;
  if (separated) ++separated_;
  if (enabled_ && terminal_ && !finished_) draw(now());
}

void RunProgress::file_done(bool ok, double seconds, bool separated) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++done_;
  if (!separated) ++unseparated_done_;
  if (ok) audio_ += seconds;
  if (!ok) ++failed_;
  if (!enabled_ || finished_) return;
  const double t = now();
  if (terminal_) {
    draw(t);
  } else if (t - last_log_ >= options_.log_interval_s) {
    std::string line = fmt::format("separate: {} of {} files done", done_, options_.files);
    if (failed_ > 0) line += fmt::format(" ({} failed)", failed_);
    line += ", " + format_audio_duration(audio_) + " of audio";
    if (t > start_ && audio_ > 0) line += fmt::format(", {:.1f}x realtime", audio_ / (t - start_));
    line += ", ETA " + format_eta(eta(t)) + "\n";
    std::fputs(line.c_str(), options_.stream);
    std::fflush(options_.stream);
    last_log_ = t;
  }
}

void RunProgress::message(const std::string& line) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.stream == nullptr) return;
  erase();
  std::fprintf(options_.stream, "%s\n", line.c_str());
  if (enabled_ && terminal_ && !finished_) draw(now());
  std::fflush(options_.stream);
}

void RunProgress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (drawn_lines_ == 0) return;
  for (auto& s : slots_) s.active = false;
  erase();
  std::fprintf(options_.stream, "%s\n", run_line(now()).c_str());
  std::fflush(options_.stream);
}

void RunProgress::erase() {
  if (drawn_lines_ == 0) return;
  std::string out = "\r";
  if (drawn_lines_ > 1) out += fmt::format("\x1b[{}A", drawn_lines_ - 1);
  out += "\x1b[J";
  std::fputs(out.c_str(), options_.stream);
  drawn_lines_ = 0;
}

void RunProgress::draw(double t) {
  const int columns = terminal_columns(options_.stream);
  std::vector<std::string> lines{run_line(t)};
  if (static_cast<int>(lines[0].size()) >= columns) lines[0].resize(static_cast<size_t>(std::max(columns - 1, 1)));
  for (const auto& s : slots_) {
    if (!s.active) continue;
    double rate = -1;
    if (s.samples.size() >= 2 && t > s.samples.front().first)
      rate = (s.done - s.samples.front().second) / (t - s.samples.front().first);
    lines.push_back(fit_progress_line(s.label, s.done, s.total, rate, ProgressUnit::audio_seconds(), 30, columns));
  }
  erase();
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" : "") + lines[i];
  std::fputs(out.c_str(), options_.stream);
  std::fflush(options_.stream);
  drawn_lines_ = lines.size();
  last_draw_ = t;
}

}  // namespace stemkit::separate
