#include "patchmgr/verify/verify.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <regex>

#include "patchmgr/build/runtime_build.h"
#include "patchmgr/build/stamp.h"
#include "patchmgr/build/steps.h"
#include "patchmgr/report/fingerprint.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/process.h"
#include "patchmgr/verify/fixtures.h"

namespace fs = std::filesystem;

namespace patchmgr {

const char* to_string(VerifyReport::Result r) {
  switch (r) {
    case VerifyReport::Result::pass: return "pass";
    case VerifyReport::Result::fail: return "fail";
    case VerifyReport::Result::stale: return "stale";
    case VerifyReport::Result::skipped: return "skipped";
  }
  return "?";
}

namespace {

// The patch-set id compiled into the build: the header the build generates
// (rewritten by every build whose manifests changed, plain cmake ones too),
// else what patchmgr build runtime recorded.
std::string built_patch_set(const fs::path& build_dir) {
  std::error_code ec;
  fs::path header = build_dir / "generated/stemkit/patchset.h";
  if (fs::exists(header, ec)) {
    std::smatch m;
    std::string text = read_file(header);
    static const std::regex kId("STEMKIT_PATCHSET_ID \"([0-9a-f]+)\"");
    if (std::regex_search(text, m, kId)) return m[1].str();
  }
  return read_build_record(build_dir).patch_set;
}

}  // namespace

VerifyReport verify(const Context& ctx, const std::vector<Manifest>& manifests, const Manifest& m,
                    const VerifyOptions& o) {
  VerifyReport r;
  r.component = m.name;
  const std::string manifest_file = display_path(m.path, ctx.root);
  if (!m.verify.present) {
    r.detail = fmt::format("{} has no verify section", manifest_file);
    return r;
  }
  Fingerprint fp = fingerprint(manifests);
  std::string block = component_block(fp.text, m.name);
  const std::string fixtures_text = fmt::format("{}", fmt::join(m.verify.fixtures, ", "));
  std::string dirs;
  for (const auto& d : m.verify.fixtures) dirs += (dirs.empty() ? "" : " ") + (ctx.root / d).string();
  fs::path build_dir = fs::absolute(o.build_dir.empty() ? ctx.root / "build" : o.build_dir).lexically_normal();
  fs::path log_dir = (o.log_dir.empty() ? ctx.root / "build" / "logs" : o.log_dir) / m.name;
  std::string regenerate_cmd = fmt::format("patchmgr verify --regenerate {}", m.name);

  if (o.regenerate) {
    if (!m.verify.regenerate) {
      r.result = VerifyReport::Result::fail;
      r.detail = fmt::format(
          "--regenerate: {} has no verify.regenerate command; add one (docs/manifest.md) or remake {} by hand",
          manifest_file, fixtures_text);
      return r;
    }
    if (auto why = checkout_mismatch(m)) {
      r.result = VerifyReport::Result::fail;
      r.detail = fmt::format(
          "--regenerate: refused: reference data made from this checkout would not be the patch set of {}: {}",
          manifest_file, *why);
      r.fix = fmt::format("patchmgr sync {0} && patchmgr apply {0}", m.name);
      return r;
    }
    auto env = step_environment(ctx, m);
    env["PATCHMGR_FIXTURES"] = (ctx.root / m.verify.fixtures.front()).string();
    env["PATCHMGR_FIXTURE_DIRS"] = dirs;  // all of them, space-separated
    fs::path log = log_dir / "regenerate.log";
    StepOutcome s = run_step(*m.verify.regenerate, ctx.root, env, log);
    r.seconds += s.seconds;
    if (s.result == StepOutcome::Result::failed) {
      r.result = VerifyReport::Result::fail;
      r.detail =
          fmt::format("regenerating the reference data ({}:{}) failed: {}; log {}, last lines:\n{}", manifest_file,
                      m.verify.regenerate->line, s.detail, display_path(log, ctx.root), log_tail(log));
      return r;
    }
    r.regenerated =
        s.result == StepOutcome::Result::skipped
            ? fmt::format("regenerate skipped ({})", s.detail)
            : fmt::format("reference data regenerated in {:.1f} s (log {})", s.seconds, display_path(log, ctx.root));
    *ctx.out << m.name << ": " << r.regenerated << "\n";
  }

  for (const auto& dir : m.verify.fixtures) {
    FixtureCheck fc = check_fixtures(ctx.root / dir, m.name, block);
    if (fc.state == FixtureCheck::State::missing) {
      r.result = VerifyReport::Result::fail;
      r.detail = fmt::format("no reference data: {}", fc.detail);
      if (m.verify.regenerate) r.fix = regenerate_cmd;
      return r;
    }
    if (fc.state == FixtureCheck::State::stale) {
      r.result = VerifyReport::Result::stale;
      r.detail = fmt::format("{} is stale: {}", dir, fc.detail);
      r.fix = m.verify.regenerate
                  ? fmt::format("{} (runs: {}{})", regenerate_cmd, m.verify.regenerate->run,
                                m.verify.regenerate->when.empty() ? "" : "; needs: " + m.verify.regenerate->when)
                  : fmt::format("remake {} from the patched upstream", dir);
      return r;
    }
  }

  fs::path binary = build_dir / "tests" / "runtime" / "runtime_tests";
  std::error_code ec;
  if (!fs::exists(binary, ec)) {
    r.result = VerifyReport::Result::fail;
    r.detail = fmt::format("no runtime parity tests in {} ({} is not built)", display_path(build_dir, ctx.root),
                           display_path(binary, ctx.root));
    r.fix = fmt::format("patchmgr build runtime --build-dir {}", display_path(build_dir, ctx.root));
    return r;
  }
  std::string built = built_patch_set(build_dir);
  if (built != fp.id) {
    r.result = VerifyReport::Result::fail;
    r.detail = built.empty() ? fmt::format("cannot tell which patch set the runtime in {} was built for",
                                           display_path(build_dir, ctx.root))
                             : fmt::format("the runtime in {} was built for patch set {}, the manifests now give {}",
                                           display_path(build_dir, ctx.root), built, fp.id);
    r.fix = fmt::format("patchmgr build runtime --build-dir {}", display_path(build_dir, ctx.root));
    return r;
  }

  fs::path report = log_dir / "verify-gtest.json";
  fs::path log = log_dir / "verify.log";
  fs::create_directories(log_dir, ec);
  fs::remove(report, ec);
  fs::remove(log, ec);
  Process p;
  p.argv = {binary.string(), "--gtest_filter=" + m.verify.tests, "--gtest_output=json:" + report.string(),
            "--gtest_color=no"};
  p.cwd = build_dir;
  p.log = log;
  p.timeout = o.timeout;
  ProcessResult pr = run_process(p);
  r.seconds += pr.seconds;
  if (!fs::exists(report, ec)) {
    r.result = VerifyReport::Result::fail;
    r.detail =
        fmt::format("{} --gtest_filter={} {} without a report; log {}, last lines:\n{}", display_path(binary, ctx.root),
                    m.verify.tests, pr.describe(), display_path(log, ctx.root), log_tail(log));
    return r;
  }
  r.tests = read_gtest_json(report);
  size_t ran = r.tests.cases.size() - r.tests.skipped();
  if (r.tests.cases.empty()) {
    r.result = VerifyReport::Result::fail;
    r.detail = fmt::format(
        "verify.tests \"{}\" ({}:{}) matches no test in {}; fix the filter (list them with {} --gtest_list_tests)",
        m.verify.tests, manifest_file, m.verify.line, display_path(binary, ctx.root), display_path(binary, ctx.root));
    return r;
  }
  if (r.tests.failed() > 0 || !pr.ok()) {
    r.result = VerifyReport::Result::fail;
    std::string list;
    for (const auto& c : r.tests.cases)
      if (c.result == GTestCase::Result::failed) {
        std::string first = c.message.substr(0, c.message.find('\n', c.message.find('\n') + 1));
        list += fmt::format("  {}: {}\n", c.name, first);
      }
    r.detail = fmt::format("{} of {} parity tests failed against {} ({}{}); log {}:\n{}", r.tests.failed(), ran,
                           fixtures_text, display_path(binary, ctx.root), pr.ok() ? "" : ", " + pr.describe(),
                           display_path(log, ctx.root), list);
    return r;
  }
  r.result = VerifyReport::Result::pass;
  r.detail = fmt::format("{} parity test{} passed{} against {} (patch set {}, {:.1f} s)", ran, ran == 1 ? "" : "s",
                         r.tests.skipped() ? fmt::format(", {} skipped", r.tests.skipped()) : "", fixtures_text, fp.id,
                         pr.seconds);
  return r;
}

std::string verify_text(const VerifyReport& r) {
  std::string head = r.result == VerifyReport::Result::pass      ? "pass"
                     : r.result == VerifyReport::Result::skipped ? "skipped"
                     : r.result == VerifyReport::Result::stale   ? "STALE"
                                                                 : "FAIL";
  std::string text = fmt::format("{}: {}: {}", r.component, head, r.detail);
  if (!text.empty() && text.back() != '\n') text += "\n";
  if (!r.fix.empty()) text += fmt::format("{}: fix: {}\n", r.component, r.fix);
  return text;
}

}  // namespace patchmgr
