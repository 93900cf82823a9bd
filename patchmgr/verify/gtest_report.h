// Reading a GoogleTest run from its --gtest_output=json file (never from its
// human output): which tests ran, passed, were skipped, failed and why.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace patchmgr {

struct GTestCase {
  std::string name;  // "HTDemucsParity/ForwardMatchesUpstream/small"
  enum class Result { passed, failed, skipped } result = Result::passed;
  std::string message;  // failures joined (failed), or the skip message
  double seconds = 0;
};

struct GTestRun {
  std::vector<GTestCase> cases;  // tests that ran or were skipped; filtered-out and disabled ones are left out
  size_t failed() const;
  size_t skipped() const;
};

// Throws Error(failed) naming the file when it is not a GoogleTest JSON report.
GTestRun read_gtest_json(const std::filesystem::path& file);

}  // namespace patchmgr
