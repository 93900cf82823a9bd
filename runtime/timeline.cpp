#include "runtime/timeline.h"

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace stemkit::timeline {

namespace {

constexpr size_t kMaxMarks = 256;

struct Mark {
  std::string phase;
  double at_s;
  int thread;
};

struct State {
  std::mutex mutex;
  bool started = false;
  std::chrono::steady_clock::time_point start;
  double start_epoch_s = 0;
  std::vector<Mark> marks;
  size_t dropped = 0;
  std::map<std::thread::id, int> threads;  // main()'s is 0
};

State& state() {
  static State s;
  return s;
}

// Under the lock: the clock's origin, set by start() or else by the first mark.
void ensure_started(State& s) {
  if (s.started) return;
  s.started = true;
  s.start = std::chrono::steady_clock::now();
  s.start_epoch_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  s.threads.emplace(std::this_thread::get_id(), 0);
}

}  // namespace

void start() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  ensure_started(s);
}

void mark(const std::string& phase) {
  const auto now = std::chrono::steady_clock::now();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  ensure_started(s);
  if (s.marks.size() >= kMaxMarks) {
    ++s.dropped;
    return;
  }
  const int thread = s.threads.emplace(std::this_thread::get_id(), static_cast<int>(s.threads.size())).first->second;
  s.marks.push_back({phase, std::chrono::duration<double>(now - s.start).count(), thread});
}

nlohmann::json to_json() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  nlohmann::json marks = nlohmann::json::array();
  for (const Mark& m : s.marks) marks.push_back({{"phase", m.phase}, {"at_s", m.at_s}, {"thread", m.thread}});
  return {{"main_epoch_s", s.start_epoch_s}, {"marks", std::move(marks)}, {"dropped", s.dropped}};
}

}  // namespace stemkit::timeline
