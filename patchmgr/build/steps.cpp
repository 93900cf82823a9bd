#include "patchmgr/build/steps.h"

#include <fmt/format.h>

#include <fstream>
#include <optional>

#include "patchmgr/build/stamp.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/git/git.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/process.h"

namespace patchmgr {

namespace {

std::filesystem::path self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("patchmgr") : p;
}

}  // namespace

std::map<std::string, std::string> step_environment(const Context& ctx, const Manifest& m) {
  return {{"PATCHMGR", self_exe().string()},
          {"PATCHMGR_ROOT", ctx.root.string()},
          {"PATCHMGR_COMPONENT", m.name},
          {"PATCHMGR_CHECKOUT", m.checkout.string()}};
}

StepOutcome run_step(const Step& step, const std::filesystem::path& base, const std::map<std::string, std::string>& env,
                     const std::filesystem::path& log) {
  StepOutcome o;
  o.name = step.name;
  o.log = log;
  std::error_code ec;
  std::filesystem::create_directories(log.parent_path(), ec);
  std::filesystem::path cwd = step.cwd.empty() ? base : base / step.cwd;
  {
    std::ofstream out(log, std::ios::trunc);
    if (!out)
      throw Error(ExitCode::failed,
                  fmt::format("step {}: cannot write its log file {}; check the directory's permissions", step.name,
                              log.string()));
    out << fmt::format("# patchmgr step {}\n# cwd: {}\n# time limit: {} s\n", step.name, cwd.string(), step.timeout);
    for (const auto& [k, v] : step.env) out << fmt::format("# env: {}={}\n", k, v);
    if (!step.when.empty()) out << fmt::format("# when: {}\n", step.when);
    out << fmt::format("# run: {}\n", step.run);
  }
  if (!std::filesystem::is_directory(cwd, ec)) {
    o.result = StepOutcome::Result::failed;
    o.detail = fmt::format("its working directory {} does not exist; fix the step's cwd", cwd.string());
    return o;
  }
  Process p;
  p.cwd = cwd;
  p.env = env;
  for (const auto& [k, v] : step.env) p.env[k] = v;
  p.log = log;
  if (!step.when.empty()) {
    p.argv = {"/bin/sh", "-c", step.when};
    p.timeout = std::min(step.timeout, 120);
    ProcessResult w = run_process(p);
    o.seconds += w.seconds;
    if (w.timed_out) {
      o.result = StepOutcome::Result::failed;
      o.detail = fmt::format("its condition (when: {}) {}", step.when, w.describe());
      return o;
    }
    if (!w.ok()) {
      o.result = StepOutcome::Result::skipped;
      o.detail = fmt::format("condition false: {}", step.when);
      std::ofstream(log, std::ios::app) << fmt::format("# skipped: the condition gave {}\n", w.describe());
      return o;
    }
    std::ofstream(log, std::ios::app) << "# condition true\n";
  }
  p.argv = {"/bin/sh", "-c", step.run};
  p.timeout = step.timeout;
  ProcessResult r = run_process(p);
  o.seconds += r.seconds;
  std::ofstream(log, std::ios::app) << fmt::format("# {} after {:.1f} s\n", r.ok() ? "done" : r.describe(), r.seconds);
  if (!r.ok()) {
    o.result = StepOutcome::Result::failed;
    o.detail = r.timed_out ? fmt::format("{} (time limit {} s; raise the step's timeout if it needs longer)",
                                         r.describe(), step.timeout)
                           : r.describe();
  }
  return o;
}

std::vector<StepOutcome> run_build_steps(const Context& ctx, const Manifest& m, const BuildStepsOptions& options) {
  std::ostream& out = *ctx.out;
  if (m.build.empty()) {
    out << fmt::format("{}: no build steps ({} has no build section)\n", m.name, display_path(m.path, ctx.root));
    return {};
  }
  if (auto why = checkout_mismatch(m)) {
    if (!options.allow_mismatch)
      throw Error(ExitCode::refused, fmt::format("{}: not building: the checkout is not the patch set of {}: {}; or "
                                                 "pass --allow-mismatch to build it as it is",
                                                 m.name, display_path(m.path, ctx.root), *why));
    out << fmt::format("{}: building a checkout that differs from its manifest (--allow-mismatch): {}\n", m.name, *why);
  }
  // No sync, apply or revert may move the checkout while its steps run.
  std::optional<CheckoutLock> lock;
  if (git::is_repository(m.checkout)) lock.emplace(m.checkout, "build");
  std::filesystem::path log_dir = (options.log_dir.empty() ? ctx.root / "build" / "logs" : options.log_dir) / m.name;
  auto env = step_environment(ctx, m);
  std::vector<StepOutcome> outcomes;
  size_t n = 0;
  for (const auto& step : m.build) {
    ++n;
    auto log = log_dir / fmt::format("{:02}-{}.log", n, step.name);
    StepOutcome o = run_step(step, m.checkout, env, log);
    std::string shown_log = display_path(log, ctx.root);
    switch (o.result) {
      case StepOutcome::Result::ok:
        out << fmt::format("{}: step {} ok ({:.1f} s, log {})\n", m.name, step.name, o.seconds, shown_log);
        break;
      case StepOutcome::Result::skipped:
        out << fmt::format("{}: step {} skipped ({})\n", m.name, step.name, o.detail);
        break;
      case StepOutcome::Result::failed:
        o.detail = fmt::format(
            "{}: step {} ({}:{}) failed: {}; log {}, last lines:\n{}{}: the steps after it were not run", m.name,
            step.name, display_path(m.path, ctx.root), step.line, o.detail, shown_log, log_tail(log), m.name);
        outcomes.push_back(o);
        throw Error(ExitCode::failed, o.detail);
    }
    outcomes.push_back(std::move(o));
  }
  return outcomes;
}

}  // namespace patchmgr
