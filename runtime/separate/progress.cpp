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
  std::string line = render_progress_line(options_.label, done_, total_, rate, options_.unit, options_.bar_width);
  // Too wide for the terminal (it would wrap, and '\r' would no longer redraw
  // in place): shrink the bar, then cut the label.
  if (static_cast<int>(line.size()) >= columns) {
    int width = std::max(10, options_.bar_width - (static_cast<int>(line.size()) - columns + 1));
    line = render_progress_line(options_.label, done_, total_, rate, options_.unit, width);
    if (static_cast<int>(line.size()) >= columns) {
      size_t cut = std::min(options_.label.size(), line.size() - static_cast<size_t>(columns) + 2);
      std::string label = options_.label.substr(0, options_.label.size() - cut) + "~";
      line = render_progress_line(label, done_, total_, rate, options_.unit, width);
    }
  }
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

}  // namespace stemkit::separate
