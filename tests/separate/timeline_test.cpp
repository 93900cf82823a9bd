// The process timeline --json writes (runtime/timeline.h): phases in
// the order they ended, each thread numbered, and a bound on how many are kept.
#include "runtime/timeline.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace stemkit::separate {
namespace {

TEST(Timeline, MarksInOrderWithTheirThreadsAndABound) {
  timeline::start();
  timeline::mark("parsed");
  std::thread([] { timeline::mark("on another thread"); }).join();
  timeline::mark("after it");
  nlohmann::json j = timeline::to_json();
  EXPECT_GT(j["main_epoch_s"].get<double>(), 1.7e9);  // the wall clock, for a caller's own timestamps
  const auto& marks = j["marks"];
  ASSERT_EQ(marks.size(), 3u);
  EXPECT_EQ(marks[0]["phase"], "parsed");
  EXPECT_EQ(marks[0]["thread"], 0);
  EXPECT_EQ(marks[1]["phase"], "on another thread");
  EXPECT_EQ(marks[1]["thread"], 1);
  EXPECT_EQ(marks[2]["thread"], 0);
  EXPECT_GE(marks[1]["at_s"].get<double>(), marks[0]["at_s"].get<double>());
  EXPECT_GE(marks[2]["at_s"].get<double>(), marks[1]["at_s"].get<double>());
  EXPECT_EQ(j["dropped"], 0);

  // A catalog's millions of files do not grow it without bound.
  for (int k = 0; k < 1000; ++k) timeline::mark("file " + std::to_string(k));
  j = timeline::to_json();
  EXPECT_EQ(j["marks"].size(), 256u);
  EXPECT_EQ(j["dropped"], 1000 - 253);
  EXPECT_EQ(j["marks"][255]["phase"], "file 252");
}

}  // namespace
}  // namespace stemkit::separate
