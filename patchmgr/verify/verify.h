// `patchmgr verify [component]`: the runtime's parity tests against the
// component's reference data, when that data was made from the patch set the
// manifests describe now. Per component: pass, fail, stale (which fingerprint
// lines differ, and the command that remakes the data) or skipped (why).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/verify/gtest_report.h"

namespace patchmgr {

struct VerifyOptions {
  std::filesystem::path build_dir;  // the runtime build (default <root>/build): tests/runtime/runtime_tests
  bool regenerate = false;          // run verify.regenerate first
  int timeout = 1800;               // seconds for the test run
  std::filesystem::path log_dir;    // default <root>/build/logs
};

struct VerifyReport {
  std::string component;
  enum class Result { pass, fail, stale, skipped } result = Result::skipped;
  std::string detail;       // one paragraph: why (fail, stale, skipped) or what passed
  std::string fix;          // the command to run next, when there is one
  std::string regenerated;  // what --regenerate did ("", "regenerated in 12.0 s", "skipped: ...")
  GTestRun tests;           // the parity tests that ran
  double seconds = 0;
  bool ok() const { return result == Result::pass || result == Result::skipped; }
};
const char* to_string(VerifyReport::Result r);  // "pass", "fail", "stale", "skipped"

// Verifies one component. `manifests` is every manifest (the fingerprint covers them all).
// Never throws for a result; throws Error only for problems outside the component.
VerifyReport verify(const Context& ctx, const std::vector<Manifest>& manifests, const Manifest& m,
                    const VerifyOptions& options);

// The text printed per component ("demucs: pass: 9 parity tests ...").
std::string verify_text(const VerifyReport& r);

}  // namespace patchmgr
