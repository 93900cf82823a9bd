#include "patchmgr/report/junit.h"

#include <fmt/format.h>

namespace patchmgr {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters, even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
          out += '?';
        else
          out += c;
    }
  }
  return out;
}

std::string junit_xml(const std::string& name, const std::vector<JUnitSuite>& suites) {
  size_t tests = 0, failures = 0, skipped = 0;
  double total = 0;
  std::string body;
  for (const auto& s : suites) {
    size_t f = 0, k = 0;
    double t = 0;
    std::string cases;
    for (const auto& c : s.cases) {
      t += c.seconds;
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", xml_escape(c.classname),
                           xml_escape(c.name), c.seconds);
      std::string inner;
      if (c.result == JUnitCase::Result::failed) {
        ++f;
        inner += fmt::format("      <failure message=\"{}\">{}</failure>\n", xml_escape(c.message),
                             xml_escape(c.text.empty() ? c.message : c.text));
      } else if (c.result == JUnitCase::Result::skipped) {
        ++k;
        inner += fmt::format("      <skipped message=\"{}\"/>\n", xml_escape(c.message));
      }
      if (!c.output.empty()) inner += fmt::format("      <system-out>{}</system-out>\n", xml_escape(c.output));
      cases += inner.empty() ? "/>\n" : ">\n" + inner + "    </testcase>\n";
    }
    tests += s.cases.size(), failures += f, skipped += k, total += t;
    body += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3f}\">\n{}  "
        "</testsuite>\n",
        xml_escape(s.name), s.cases.size(), f, k, t, cases);
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
      "skipped=\"{}\" time=\"{:.3f}\">\n{}</testsuites>\n",
      xml_escape(name), tests, failures, skipped, total, body);
}

}  // namespace patchmgr
