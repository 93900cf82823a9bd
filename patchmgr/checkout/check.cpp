#include "patchmgr/checkout/check.h"

#include <cctype>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "patchmgr/checkout/lock.h"
#include "patchmgr/checkout/upstream.h"
#include "patchmgr/git/git.h"
#include "patchmgr/report/junit.h"

namespace patchmgr {

bool CheckReport::ok() const {
  if (!error.empty()) return false;
  for (const auto& p : patches)
    if (p.result == PatchCheck::Result::fails) return false;
  return true;
}

namespace {

const char* result_name(PatchCheck::Result r) {
  switch (r) {
    case PatchCheck::Result::applies: return "applies";
    case PatchCheck::Result::fails: return "fails";
    case PatchCheck::Result::skipped: return "skipped";
  }
  return "?";
}

std::string short_target(const CheckReport& r) { return r.target.empty() ? "?" : r.target.substr(0, 12); }

const char* fail_on_name(Drift d) { return d == Drift::upstream ? "upstream" : to_string(d); }

const char* placement_name(git::HunkPlacement::How how) {
  switch (how) {
    case git::HunkPlacement::How::exact: return "exact";
    case git::HunkPlacement::How::offset: return "offset";
    case git::HunkPlacement::How::fuzz: return "fuzz";
    case git::HunkPlacement::How::upstream: return "upstream";
    case git::HunkPlacement::How::missing: return "missing";
  }
  return "?";
}

nlohmann::json patch_json(const PatchCheck& p) {
  nlohmann::json j = {{"id", p.id}, {"file", p.file}, {"result", result_name(p.result)}, {"reason", p.reason}};
  if (!p.drift) {
    j["class"] = nullptr;
    return j;
  }
  j["class"] = to_string(p.drift->drift);
  nlohmann::json hunks = nlohmann::json::array();
  for (const auto& h : p.drift->hunks)
    hunks.push_back({{"file", h.file},
                     {"hunk", h.number},
                     {"header", h.header},
                     {"placement", placement_name(h.placement.how)},
                     {"offset", h.placement.offset},
                     {"fuzz", h.placement.fuzz},
                     {"line", h.placement.line ? nlohmann::json(h.placement.line) : nlohmann::json(nullptr)}});
  j["hunks"] = hunks;
  j["checked_without"] = p.drift->checked_without;
  j["upstream_commit"] = p.upstream_commit.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.upstream_commit);
  if (p.change) {
    const DriftChange& b = *p.change;
    if (!b.error.empty())
      j["bisect"] = {{"error", b.error}};
    else
      j["bisect"] = {{"commit", b.commit},
                     {"date", b.date},
                     {"author", b.author},
                     {"subject", b.subject},
                     {"before", to_string(b.before)},
                     {"after", to_string(b.after)},
                     {"backwards", b.backwards},
                     {"commits", b.commits},
                     {"classifications", b.classifications}};
  }
  return j;
}

}  // namespace

CheckReport check(const Context& ctx, const Manifest& m, const CheckOptions& options) {
  CheckReport report;
  report.component = m.name;
  report.against = options.against;
  report.fail_on = options.fail_on;
  for (const auto& p : m.patches) {
    PatchCheck c;
    c.id = p.id;
    c.file = p.file_field;
    if (p.upstream_status == UpstreamStatus::accepted || p.upstream_status == UpstreamStatus::backport)
      c.upstream_commit = p.upstream_commit;
    if (p.kind == PatchKind::runtime)
      c.reason = "runtime patch: applied by the runtime, not a source diff";
    else if (!p.enabled && p.status != PatchStatus::experimental)
      c.reason = fmt::format("status {}", to_string(p.status));
    report.patches.push_back(c);
  }
  if (!git::is_repository(m.checkout)) {
    report.error = fmt::format("no clone at {}; run patchmgr sync {} first", m.checkout.string(), m.name);
    return report;
  }
  CheckoutLock lock(m.checkout, "check");
  git::Repository repo = git::open(m.checkout);
  git_oid target;
  try {
    target = resolve_upstream_commit(ctx, repo.get(), m, options.against, "--against");
  } catch (const Error& e) {
    if (e.code() == ExitCode::usage) throw;
    report.error = e.what();
    return report;
  }
  report.target = git::to_hex(target);

  // Every source patch that is not disabled or upstreamed, in series order
  // (opt-in experimental patches included), each on top of the ones before.
  std::vector<const Patch*> series;
  std::vector<PatchCheck*> checks;
  for (size_t i = 0; i < m.patches.size(); ++i)
    if (report.patches[i].reason.empty()) series.push_back(&m.patches[i]), checks.push_back(&report.patches[i]);
  git_oid pin = git::from_hex(m.commit);
  if (!git::try_commit(repo.get(), pin)) {
    report.error = fmt::format("the pin {} is not in the clone at {}; run patchmgr sync {} first",
                               m.commit.substr(0, 12), m.checkout.string(), m.name);
    return report;
  }
  std::vector<PatchDrift> drifts = classify_series(repo.get(), pin, target, series);
  std::vector<PatchDrift> at_pin;
  if (options.bisect) at_pin = classify_series(repo.get(), pin, pin, series);
  for (size_t k = 0; k < series.size(); ++k) {
    PatchCheck& c = *checks[k];
    c.drift = drifts[k];
    c.reason = drifts[k].detail;
    c.result = severity(drifts[k].drift) >= severity(options.fail_on) ? PatchCheck::Result::fails
                                                                      : PatchCheck::Result::applies;
    if (options.bisect && severity(drifts[k].drift) > severity(at_pin[k].drift))
      c.change = bisect_drift(repo.get(), pin, target, series, k, drifts[k].drift);
  }
  return report;
}

std::string check_patch_line(const PatchCheck& p) {
  std::string label = p.file.empty() ? "rt" : p.file.substr(0, 4);
  std::string head = fmt::format("{:<4} {:<28} ", label, p.id);
  if (!p.drift) return head + fmt::format("skipped ({})", p.reason);
  const PatchDrift& d = *p.drift;
  std::string cls = to_string(d.drift);
  // A class that fails --fail-on is written in capitals, so it stands out in a log.
  if (p.result == PatchCheck::Result::fails)
    for (auto& ch : cls) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::string line = head + cls;
  if (d.drift == Drift::upstream && !p.upstream_commit.empty())
    line += fmt::format(": accepted upstream in {}: drop it (patchmgr rebase marks it upstreamed)",
                        p.upstream_commit.substr(0, 12));
  else if (d.drift == Drift::upstream)
    line += ": drop it (patchmgr rebase marks it upstreamed), or set its status to upstreamed";
  else if (d.drift == Drift::partly_upstream)
    line += ": shrink it to the hunks upstream lacks: " + d.summary();
  else if (d.drift != Drift::applies && !d.detail.empty())
    line += ": " + d.detail;
  if (!d.checked_without.empty())
    line += fmt::format(" (checked without {}, which conflict{})", fmt::join(d.checked_without, ", "),
                        d.checked_without.size() == 1 ? "s" : "");
  if (p.change) {
    const DriftChange& b = *p.change;
    if (!b.error.empty())
      line += fmt::format("\n{:34}bisect: {}", "", b.error);
    else if (b.backwards)
      line += fmt::format("\n{:34}bisect: needs {} ({}, {}: {}): {} with it, {} without ({} commits, {} checked)", "",
                          b.commit.substr(0, 12), b.date, b.author, b.subject, to_string(b.after), to_string(b.before),
                          b.commits, b.classifications);
    else
      line += fmt::format("\n{:34}bisect: {} since {} ({}, {}: {}); {} before ({} commits, {} checked)", "",
                          to_string(b.after), b.commit.substr(0, 12), b.date, b.author, b.subject, to_string(b.before),
                          b.commits, b.classifications);
  }
  return line;
}

CheckReport manifest_failure(const std::string& component, const std::string& against, const std::string& diagnostics) {
  CheckReport r;
  r.component = component;
  r.against = against;
  r.error = diagnostics;
  return r;
}

std::string check_text(const std::vector<CheckReport>& reports) {
  std::string out;
  for (const auto& r : reports) {
    out += fmt::format("{}: check against {} ({})\n", r.component, r.against, short_target(r));
    if (!r.error.empty()) {
      out += fmt::format("  ERROR {}\n", r.error);
      continue;
    }
    size_t fails = 0, checked = 0;
    std::map<int, std::pair<std::string, size_t>> classes;  // by severity, so the counts read best to worst
    for (const auto& p : r.patches) {
      std::string line = check_patch_line(p);
      for (size_t at = 0; (at = line.find('\n', at)) != std::string::npos; at += 3) line.insert(at + 1, "  ");
      out += "  " + line + "\n";
      if (!p.drift) continue;
      ++checked;
      fails += p.result == PatchCheck::Result::fails;
      auto& c = classes[severity(p.drift->drift) * 8 + static_cast<int>(p.drift->drift)];
      c.first = to_string(p.drift->drift);
      ++c.second;
    }
    std::vector<std::string> counts;
    for (const auto& [_, c] : classes) counts.push_back(fmt::format("{} {}", c.second, c.first));
    if (classes.size() <= 1 && (classes.empty() || classes.begin()->second.first == std::string("applies")))
      out += fmt::format("{}: all {} patches apply against {}\n", r.component, checked, r.against);
    else if (fails)
      out += fmt::format("{}: {} of {} patches fail against {} (--fail-on {}): {}\n", r.component, fails, checked,
                         r.against, fail_on_name(r.fail_on), fmt::join(counts, ", "));
    else
      out += fmt::format("{}: no patch fails against {} (--fail-on {}): {}\n", r.component, r.against,
                         fail_on_name(r.fail_on), fmt::join(counts, ", "));
  }
  return out;
}

std::string check_json(const std::vector<CheckReport>& reports) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : reports) {
    nlohmann::json patches = nlohmann::json::array();
    for (const auto& p : r.patches) patches.push_back(patch_json(p));
    all.push_back({{"name", r.component},
                   {"against", r.against},
                   {"fail_on", fail_on_name(r.fail_on)},
                   {"target", r.target.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.target)},
                   {"ok", r.ok()},
                   {"error", r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error)},
                   {"patches", patches}});
  }
  return nlohmann::json{{"components", all}}.dump(2) + "\n";
}

std::string check_junit(const std::vector<CheckReport>& reports) {
  // One <testsuite> per component, one <testcase> per patch; a component that
  // could not be checked at all is one failing test case, so dashboards show it.
  size_t tests = 0, failures = 0, skipped = 0;
  std::string suites;
  for (const auto& r : reports) {
    size_t t = 0, f = 0, s = 0;
    std::string cases;
    std::string classname = "patchmgr.check." + r.component;
    if (!r.error.empty()) {
      t = f = 1;
      cases += fmt::format(
          "    <testcase classname=\"{}\" name=\"check\" time=\"0\">\n      <failure message=\"{}\">{}</failure>\n    "
          "</testcase>\n",
          xml_escape(classname), xml_escape(r.error.substr(0, r.error.find('\n'))), xml_escape(r.error));
    }
    for (const auto& p : r.patches) {
      if (!r.error.empty()) break;
      ++t;
      std::string name = p.file.empty() ? p.id : p.file.substr(0, p.file.size() - 6);
      cases +=
          fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", xml_escape(classname), xml_escape(name));
      if (p.result == PatchCheck::Result::applies && p.drift && p.drift->drift == Drift::applies && !p.change &&
          p.drift->checked_without.empty()) {
        cases += "/>\n";
      } else if (p.drift) {
        // The class as a property; what check prints for the patch as the output.
        std::string body = fmt::format("      <properties><property name=\"class\" value=\"{}\"/></properties>\n",
                                       to_string(p.drift->drift));
        if (p.result == PatchCheck::Result::fails) {
          ++f;
          body += fmt::format("      <failure message=\"{}: {}\">{}</failure>\n", xml_escape(p.id),
                              to_string(p.drift->drift), xml_escape(p.reason));
        }
        body += fmt::format("      <system-out>{}</system-out>\n", xml_escape(check_patch_line(p)));
        cases += fmt::format(">\n{}    </testcase>\n", body);
      } else {
        ++s;
        cases += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml_escape(p.reason));
      }
    }
    tests += t, failures += f, skipped += s;
    suites += fmt::format(
        "  <testsuite name=\"{} against {} ({})\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" "
        "time=\"0\">\n{}  </testsuite>\n",
        xml_escape(r.component), xml_escape(r.against), short_target(r), t, f, s, cases);
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"patchmgr check\" tests=\"{}\" failures=\"{}\" "
      "errors=\"0\" skipped=\"{}\" time=\"0\">\n{}</testsuites>\n",
      tests, failures, skipped, suites);
}

}  // namespace patchmgr
