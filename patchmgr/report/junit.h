// JUnit XML for CI dashboards: `check --format junit` and the pipeline's report.
#pragma once

#include <string>
#include <vector>

namespace patchmgr {

// Escapes text for XML attributes and content (control characters XML 1.0 forbids become '?').
std::string xml_escape(const std::string& s);

struct JUnitCase {
  std::string classname;
  std::string name;
  double seconds = 0;
  enum class Result { passed, failed, skipped } result = Result::passed;
  std::string message;  // failure or skip message (one line)
  std::string text;     // failure body
  std::string output;   // <system-out>
};

struct JUnitSuite {
  std::string name;
  std::vector<JUnitCase> cases;
};

std::string junit_xml(const std::string& name, const std::vector<JUnitSuite>& suites);

}  // namespace patchmgr
