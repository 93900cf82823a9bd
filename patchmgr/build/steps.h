// `patchmgr build [component]`: the manifest's build steps, run in order in
// the checkout, each with its environment, working directory, time limit and
// log file. A failing step stops the component, named with the tail of its log.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

namespace patchmgr {

struct StepOutcome {
  std::string name;
  enum class Result { ok, failed, skipped } result = Result::ok;
  std::string detail;  // skipped: why; failed: what happened, the log path and its tail
  std::filesystem::path log;
  double seconds = 0;
};

// Runs one step: `when` first (its output goes to the log too), then `run`,
// with /bin/sh -c in `base` / step.cwd, the step's env on top of `env`. The
// log is rewritten from scratch. Never throws for a failing step.
StepOutcome run_step(const Step& step, const std::filesystem::path& base, const std::map<std::string, std::string>& env,
                     const std::filesystem::path& log);

// The variables every step sees: PATCHMGR (this binary), PATCHMGR_ROOT,
// PATCHMGR_COMPONENT, PATCHMGR_CHECKOUT.
std::map<std::string, std::string> step_environment(const Context& ctx, const Manifest& m);

struct BuildStepsOptions {
  bool allow_mismatch = false;    // run on a checkout that is not the manifest's patch set
  std::filesystem::path log_dir;  // default <root>/build/logs; logs go to <log_dir>/<component>/NN-<step>.log
};

// Runs the component's build steps and prints one line per step. Throws
// Error(failed) at the first failing step (name, log, tail of the log), and
// Error(refused) when the checkout is not the manifest's patch set.
std::vector<StepOutcome> run_build_steps(const Context& ctx, const Manifest& m, const BuildStepsOptions& options);

}  // namespace patchmgr
