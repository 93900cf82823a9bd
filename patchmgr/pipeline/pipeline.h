// `patchmgr pipeline`: sync -> apply -> build (steps) -> build runtime ->
// verify -> check against latest, over every component, in one command with
// one JUnit report, so a CI job is three lines. A stage that fails for a
// component skips that component's later stages (saying why); the others go on.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/build/runtime_build.h"
#include "patchmgr/build/steps.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/util/error.h"
#include "patchmgr/verify/verify.h"

namespace patchmgr {

struct PipelineOptions {
  std::string against = "latest";  // check --against
  RuntimeBuildOptions runtime;     // build runtime (its allow_mismatch also lets the build steps run)
  VerifyOptions verify;            // build_dir is taken from the runtime build
  std::filesystem::path junit;     // write the JUnit report here (atomically)
};

struct StageResult {
  std::string stage;      // "sync", "apply", "build", "runtime", "verify", "check"
  std::string component;  // "runtime" for the runtime build
  enum class Result { ok, failed, skipped } result = Result::ok;
  std::string message;  // one line
  std::string detail;   // the full text (errors with log tails)
  double seconds = 0;
  ExitCode code = ExitCode::ok;
};

struct PipelineReport {
  std::vector<StageResult> stages;
  ExitCode code() const;  // the worst stage
};

// Runs every stage over `manifests` (all of them: the runtime build needs every checkout).
PipelineReport run_pipeline(const Context& ctx, const std::vector<Manifest>& manifests, const PipelineOptions& options);

std::string pipeline_summary(const PipelineReport& r);
std::string pipeline_junit(const PipelineReport& r);

}  // namespace patchmgr
