#include "patchmgr/checkout/check.h"


#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/checkout/apply.h"
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

}  // namespace

CheckReport check(const Context& ctx, const Manifest& m, const CheckOptions& options) {
  CheckReport report;
  report.component = m.name;
  report.against = options.against;
  for (const auto& p : m.patches) {
    PatchCheck c;
    c.id = p.id;
    c.file = p.file_field;
    if (p.kind == PatchKind::runtime) c.reason = "runtime patch: applied by the runtime, not a source diff";
    else if (!p.enabled && p.status != PatchStatus::experimental) c.reason = fmt::format("status {}", to_string(p.status));
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
  git::Commit commit = git::lookup_commit(repo.get(), target);
  git::Tree tree = git::commit_tree(commit.get());
  for (size_t i = 0; i < m.patches.size(); ++i) {
    const Patch& p = m.patches[i];
    PatchCheck& c = report.patches[i];
    if (!c.reason.empty()) continue;  // skipped
    TreeApply r = apply_patch_to_tree(repo.get(), tree.get(), p);
    if (r.tree) {
      c.result = PatchCheck::Result::applies;
      tree = git::lookup_tree(repo.get(), *r.tree);
    } else {
      c.result = PatchCheck::Result::fails;
      c.reason = r.describe();
    }
  }
  return report;
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
    size_t fails = 0, applies = 0;
    for (const auto& p : r.patches) {
      std::string label = p.file.empty() ? "rt" : p.file.substr(0, 4);
      if (p.result == PatchCheck::Result::applies) ++applies, out += fmt::format("  {:<4} {:<28} applies\n", label, p.id);
      else if (p.result == PatchCheck::Result::fails) ++fails, out += fmt::format("  {:<4} {:<28} FAILS: {}\n", label, p.id, p.reason);
      else out += fmt::format("  {:<4} {:<28} skipped ({})\n", label, p.id, p.reason);
    }
    out += fails ? fmt::format("{}: {} of {} patches fail against {}\n", r.component, fails, fails + applies, r.against)
                 : fmt::format("{}: all {} patches apply against {}\n", r.component, applies, r.against);
  }
  return out;
}

std::string check_json(const std::vector<CheckReport>& reports) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : reports) {
    nlohmann::json patches = nlohmann::json::array();
    for (const auto& p : r.patches)
      patches.push_back({{"id", p.id}, {"file", p.file}, {"result", result_name(p.result)}, {"reason", p.reason}});
    all.push_back({{"name", r.component},
                   {"against", r.against},
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
      cases += fmt::format("    <testcase classname=\"{}\" name=\"check\" time=\"0\">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                           xml_escape(classname), xml_escape(r.error.substr(0, r.error.find('\n'))), xml_escape(r.error));
    }
    for (const auto& p : r.patches) {
      if (!r.error.empty()) break;
      ++t;
      std::string name = p.file.empty() ? p.id : p.file.substr(0, p.file.size() - 6);
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\"", xml_escape(classname), xml_escape(name));
      if (p.result == PatchCheck::Result::applies) {
        cases += "/>\n";
      } else if (p.result == PatchCheck::Result::fails) {
        ++f;
        cases += fmt::format(">\n      <failure message=\"{} does not apply\">{}</failure>\n    </testcase>\n", xml_escape(p.id), xml_escape(p.reason));
      } else {
        ++s;
        cases += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml_escape(p.reason));
      }
    }
    tests += t, failures += f, skipped += s;
    suites += fmt::format("  <testsuite name=\"{} against {} ({})\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">\n{}  </testsuite>\n",
                          xml_escape(r.component), xml_escape(r.against), short_target(r), t, f, s, cases);
  }
  return fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"patchmgr check\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">\n{}</testsuites>\n",
                     tests, failures, skipped, suites);
}

}  // namespace patchmgr
