#include "patchmgr/verify/gtest_report.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace patchmgr {

size_t GTestRun::failed() const {
  return std::count_if(cases.begin(), cases.end(), [](const auto& c) { return c.result == GTestCase::Result::failed; });
}
size_t GTestRun::skipped() const {
  return std::count_if(cases.begin(), cases.end(),
                       [](const auto& c) { return c.result == GTestCase::Result::skipped; });
}

GTestRun read_gtest_json(const std::filesystem::path& file) {
  GTestRun run;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::failed, fmt::format("{} is not a GoogleTest JSON report: {}", file.string(), e.what()));
  }
  if (!j.is_object() || !j.contains("testsuites") || !j["testsuites"].is_array())
    throw Error(ExitCode::failed,
                fmt::format("{} is not a GoogleTest JSON report (no \"testsuites\" list)", file.string()));
  for (const auto& suite : j["testsuites"]) {
    std::string suite_name = suite.value("name", "?");
    if (!suite.contains("testsuite") || !suite["testsuite"].is_array()) continue;
    for (const auto& t : suite["testsuite"]) {
      if (t.value("status", "RUN") != "RUN") continue;  // NOTRUN: disabled
      std::string result = t.value("result", "COMPLETED");
      if (result == "SUPPRESSED" || result == "FILTERED") continue;
      GTestCase c;
      c.name = suite_name + "." + t.value("name", "?");
      if (t.contains("time") && t["time"].is_string()) c.seconds = std::atof(t["time"].get<std::string>().c_str());
      if (t.contains("failures") && t["failures"].is_array() && !t["failures"].empty()) {
        c.result = GTestCase::Result::failed;
        for (const auto& f : t["failures"]) {
          if (!c.message.empty()) c.message += "\n";
          c.message += f.value("failure", "");
        }
      } else if (result == "SKIPPED") {
        c.result = GTestCase::Result::skipped;
        if (t.contains("skipped") && t["skipped"].is_array() && !t["skipped"].empty())
          c.message = t["skipped"][0].value("message", "");
      }
      run.cases.push_back(std::move(c));
    }
  }
  return run;
}

}  // namespace patchmgr
