// The real manifests (manifests/*.yaml of this repository) against local
// copies of the real upstreams. Labelled "upstream"; each component runs only
// when PATCHMGR_UPSTREAM_<NAME> points at a clone or mirror of its upstream
// (tests never use the network), and says so when it skips.
#include <gtest/gtest.h>

#include <cstdlib>

#include "fixture.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"

using namespace testutil;

namespace {

const fs::path kSource = STEMKIT_SOURCE_DIR;

std::vector<std::string> real_components() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kSource / "manifests"))
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class RealUpstream : public ::testing::TestWithParam<std::string> {};

TEST(RealManifests, AreValid) {
  auto r = patchmgr::load_all_manifests(kSource);
  std::string text;
  for (const auto& d : r.diagnostics) text += d.to_string(kSource) + "\n";
  EXPECT_TRUE(r.diagnostics.empty()) << text;
}

TEST_P(RealUpstream, SeriesAppliesOnThePinAndIsCheckedAgainstLatest) {
  const std::string name = GetParam();
  const std::string var = patchmgr::upstream_env_var(name);
  const char* mirror = std::getenv(var.c_str());
  if (!mirror || !*mirror) GTEST_SKIP() << "skipped: set " << var << " to a local clone or mirror of " << name << "'s upstream to run it";
  // A private copy of the project, so the test's checkout never lands in the source tree.
  TempDir root;
  fs::create_directories(root.path() / "manifests");
  fs::create_directories(root.path() / "patches");
  fs::copy_file(kSource / "manifests" / (name + ".yaml"), root.path() / "manifests" / (name + ".yaml"));
  fs::copy(kSource / "patches" / name, root.path() / "patches" / name, fs::copy_options::recursive);
  std::map<std::string, std::string> env = {{var, mirror}};

  CliRun sync = run_patchmgr(root.path(), {"sync", name}, env);
  ASSERT_EQ(sync.code, 0) << sync.all();
  CliRun check = run_patchmgr(root.path(), {"check", name}, env);
  EXPECT_EQ(check.code, 0) << check.all();
  CliRun apply = run_patchmgr(root.path(), {"apply", name}, env);
  ASSERT_EQ(apply.code, 0) << apply.all();
  CliRun status = run_patchmgr(root.path(), {"status", name}, env);
  EXPECT_NE(status.out.find(name + ": patched"), std::string::npos) << status.out;
  // The manifest's build steps on the patched checkout (the install steps skip without STEMKIT_PYTHON).
  env["STEMKIT_PYTHON"] = "";
  CliRun build = run_patchmgr(root.path(), {"build", name}, env);
  EXPECT_EQ(build.code, 0) << build.all();
  // Against upstream's newest commit the answer may be either; it must be an honest report.
  CliRun latest = run_patchmgr(root.path(), {"check", name, "--against", "latest"}, env);
  EXPECT_TRUE(latest.code == 0 || latest.code == 1) << latest.all();
  std::cout << latest.out;
  CliRun revert = run_patchmgr(root.path(), {"revert", name}, env);
  EXPECT_EQ(revert.code, 0) << revert.all();
}

INSTANTIATE_TEST_SUITE_P(Manifests, RealUpstream, ::testing::ValuesIn(real_components()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) if (c == '-') c = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RealUpstream);

}  // namespace
