// patchmgr verify: the runtime's parity tests (a stand-in runtime_tests that
// writes GoogleTest's JSON report) against reference data whose recorded
// fingerprint is compared with the manifests' (current, stale, missing), the
// runtime build's own patch set, and --regenerate through the manifest's command.
#include <gtest/gtest.h>

#include <cstdlib>

#include <sys/stat.h>

#include "patchmgr/report/fingerprint.h"
#include "patchmgr/verify/fixtures.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

const char* kPassJson = R"({"tests": 2, "failures": 0, "testsuites": [
  {"name": "DemoParity", "tests": 2, "testsuite": [
    {"name": "ForwardMatchesUpstream", "status": "RUN", "result": "COMPLETED", "time": "0.5s"},
    {"name": "GpuOnly", "status": "RUN", "result": "SKIPPED", "time": "0s", "skipped": [{"message": "no GPU"}]}]}]})";
const char* kFailJson = R"({"tests": 2, "failures": 1, "testsuites": [
  {"name": "DemoParity", "tests": 2, "testsuite": [
    {"name": "ForwardMatchesUpstream", "status": "RUN", "result": "COMPLETED", "time": "0.5s",
     "failures": [{"failure": "htdemucs_test.cpp:52\nExpected: (rel_l2(out, want)) < (1e-5), actual: 0.31 vs 1e-05", "type": ""}]},
    {"name": "Shapes", "status": "RUN", "result": "COMPLETED", "time": "0.1s"}]}]})";
const char* kEmptyJson = R"({"tests": 0, "failures": 0, "testsuites": []})";

class VerifyTest : public CheckoutTest {
 protected:
  void SetUp() override {
    CheckoutTest::SetUp();
    write(
        project.root() / "manifests/demo.yaml",
        read(project.root() / "manifests/demo.yaml") +
            "verify:\n"
            "  tests: \"DemoParity*\"\n"
            "  fixtures: tests/fixtures/demo\n"
            "  regenerate:\n"
            "    when: test -n \"$MAKE_FIXTURES\"\n"
            "    run: >-\n"
            "      mkdir -p \"$PATCHMGR_FIXTURES\" &&\n"
            "      block=$(\"$PATCHMGR\" fingerprint | awk 'f&&/^  /{printf \"%s\\\\n\",$0;next} f{exit} /^demo "
            "/{f=1;printf \"%s\\\\n\",$0}') &&\n"
            "      printf '{\"fingerprint\": {\"demo\": \"%s\"}}\\n' \"$block\" > \"$PATCHMGR_FIXTURES/small.json\"\n");
    fake_build(kPassJson);
  }
  std::string block() const {
    auto loaded = patchmgr::load_all_manifests(project.root());
    EXPECT_TRUE(loaded.diagnostics.empty())
        << loaded.diagnostics.size() << " " << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].message);
    return patchmgr::component_block(patchmgr::fingerprint(loaded.manifests).text, "demo");
  }
  std::string patch_set() const {
    return patchmgr::fingerprint(patchmgr::load_all_manifests(project.root()).manifests).id;
  }
  void fixture(const std::string& name, const std::string& recorded) {
    nlohmann::json j = {{"config", name}, {"fingerprint", {{"patch_set", "patch set x"}, {"demo", recorded}}}};
    write(project.root() / "tests/fixtures/demo" / (name + ".json"), j.dump(1));
  }
  // build/tests/runtime/runtime_tests: records its arguments and writes `report` as its JSON output.
  void fake_build(const std::string& report, const std::string& id = "") {
    fs::path bin = project.root() / "build/tests/runtime/runtime_tests";
    write(project.root() / "build/report.json", report);
    write(bin,
          "#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args.txt\"\n"
          "for a in \"$@\"; do case \"$a\" in --gtest_output=json:*) cp \"$(dirname \"$0\")/../../report.json\" "
          "\"${a#--gtest_output=json:}\";; esac; done\n"
          "echo '[  PASSED  ]'\n");
    chmod(bin.c_str(), 0755);
    write(project.root() / "build/patchmgr-build.json",
          nlohmann::json{{"patch_set", id.empty() ? patch_set() : id}}.dump());
  }
};

TEST_F(VerifyTest, CurrentReferenceDataAndPassingTestsPass) {
  fixture("small", block());
  fixture("merge", block());
  CliRun r = project.run({"verify"});
  EXPECT_EQ(r.code, 0) << r.all();
  // The run's seconds are the machine's (0.0 s alone, 0.1 s on a busy one): compared as a number.
  const std::string head =
      "demo: pass: 1 parity test passed, 1 skipped against tests/fixtures/demo (patch set " + patch_set() + ", ";
  ASSERT_EQ(r.out.rfind(head, 0), 0u) << r.out;
  const std::string rest = r.out.substr(head.size());
  char* end = nullptr;
  const double seconds = std::strtod(rest.c_str(), &end);
  EXPECT_TRUE(seconds >= 0 && seconds < 30) << r.out;
  EXPECT_EQ(std::string(end), " s)\n") << r.out;
  std::string args = read(project.root() / "build/tests/runtime/args.txt");
  EXPECT_NE(args.find("--gtest_filter=DemoParity* --gtest_output=json:"), std::string::npos) << args;
}

TEST_F(VerifyTest, FailingTestsAreNamedWithTheirMessage) {
  fixture("small", block());
  fake_build(kFailJson);
  CliRun r = project.run({"verify", "demo"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: FAIL: 1 of 2 parity tests failed against tests/fixtures/demo"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("  DemoParity.ForwardMatchesUpstream: htdemucs_test.cpp:52\nExpected: (rel_l2(out, want)) < "
                       "(1e-5), actual: 0.31 vs 1e-05"),
            std::string::npos)
      << r.out;
}

TEST_F(VerifyTest, StaleReferenceDataIsStaleNotAPass) {
  std::string old = block();
  old.replace(old.find("demo ") + 5, 40, std::string(40, 'a'));  // made on another pin
  fixture("small", old);
  fixture("merge", block());
  CliRun r = project.run({"verify"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: STALE: tests/fixtures/demo is stale: small.json made from another demo patch set (pin "
                       "aaaaaaaaaaaa -> " +
                       to_hex(project.pin()).substr(0, 12) + ")"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("demo: fix: patchmgr verify --regenerate demo (runs: mkdir -p"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("needs: test -n \"$MAKE_FIXTURES\""), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(project.root() / "build/tests/runtime/args.txt"))
      << "stale data must not be tested as if current";

  // A patch file changed since: its hash is named.
  std::string changed = block();
  size_t line = changed.find("  source sdpa enabled ");
  ASSERT_NE(line, std::string::npos) << changed;
  changed.replace(line + 22, 64, std::string(64, 'b'));
  fixture("small", changed);
  r = project.run({"verify"});
  EXPECT_NE(r.out.find("patch sdpa: patch file sha256 bbbbbbbbbbbb -> "), std::string::npos) << r.out;
}

TEST_F(VerifyTest, SeveralReferenceDataDirectoriesAreEachChecked) {
  // verify.fixtures as a list: a component whose parity tests read two sets of data.
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  const std::string one = "  fixtures: tests/fixtures/demo\n";
  ASSERT_NE(manifest.find(one), std::string::npos);
  manifest.replace(manifest.find(one), one.size(), "  fixtures: [tests/fixtures/demo, tests/fixtures/demo_mel]\n");
  write(project.root() / "manifests/demo.yaml", manifest);
  fake_build(kPassJson);
  fixture("small", block());
  nlohmann::json j = {{"config", "mel"}, {"fingerprint", {{"demo", block()}}}};
  write(project.root() / "tests/fixtures/demo_mel/mel.json", j.dump(1));
  CliRun r = project.run({"verify"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("against tests/fixtures/demo, tests/fixtures/demo_mel (patch set"), std::string::npos) << r.out;

  std::string old = block();
  old.replace(old.find("demo ") + 5, 40, std::string(40, 'a'));
  j["fingerprint"]["demo"] = old;
  write(project.root() / "tests/fixtures/demo_mel/mel.json", j.dump(1));
  r = project.run({"verify"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("demo: STALE: tests/fixtures/demo_mel is stale: mel.json made from another demo patch set"),
            std::string::npos)
      << r.out;

  const std::string list = "[tests/fixtures/demo, tests/fixtures/demo_mel]";
  manifest.replace(manifest.find(list), list.size(), "[tests/fixtures/demo, /abs/data]");
  write(project.root() / "manifests/demo.yaml", manifest);
  r = project.run({"lint"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.all().find("verify.fixtures: \"/abs/data\" leaves the project root"), std::string::npos) << r.all();
}

TEST_F(VerifyTest, MissingDataMissingBuildAndAnotherPatchSetAreFailures) {
  CliRun none = project.run({"verify"});
  EXPECT_EQ(none.code, 1) << none.all();
  EXPECT_NE(none.out.find("demo: FAIL: no reference data: " + (project.root() / "tests/fixtures/demo").string() +
                          " does not exist"),
            std::string::npos)
      << none.out;
  EXPECT_NE(none.out.find("demo: fix: patchmgr verify --regenerate demo"), std::string::npos) << none.out;

  fixture("small", block());
  fake_build(kPassJson, "0123456789abcdef");
  CliRun other = project.run({"verify"});
  EXPECT_EQ(other.code, 1) << other.all();
  EXPECT_NE(other.out.find("the runtime in build was built for patch set 0123456789abcdef, the manifests now give " +
                           patch_set()),
            std::string::npos)
      << other.out;
  EXPECT_NE(other.out.find("demo: fix: patchmgr build runtime --build-dir build"), std::string::npos) << other.out;

  CliRun nobuild = project.run({"verify", "--build-dir", "elsewhere"});
  EXPECT_EQ(nobuild.code, 1) << nobuild.all();
  EXPECT_NE(
      nobuild.out.find("no runtime parity tests in elsewhere (elsewhere/tests/runtime/runtime_tests is not built)"),
      std::string::npos)
      << nobuild.out;

  fake_build(kEmptyJson);
  CliRun empty = project.run({"verify"});
  EXPECT_EQ(empty.code, 1) << empty.all();
  EXPECT_NE(empty.out.find("verify.tests \"DemoParity*\" (manifests/demo.yaml:"), std::string::npos) << empty.out;
  EXPECT_NE(empty.out.find("matches no test"), std::string::npos) << empty.out;
}

TEST_F(VerifyTest, TheCompiledInPatchSetWinsOverTheRecord) {
  // A plain cmake build after the manifests changed: its generated header is the truth.
  fixture("small", block());
  write(project.root() / "build/generated/stemkit/patchset.h",
        "#pragma once\n#define STEMKIT_PATCHSET_ID \"feedfacefeedface\"\n");
  CliRun r = project.run({"verify"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.out.find("was built for patch set feedfacefeedface"), std::string::npos) << r.out;
  write(project.root() / "build/generated/stemkit/patchset.h", "#define STEMKIT_PATCHSET_ID \"" + patch_set() + "\"\n");
  EXPECT_EQ(project.run({"verify"}).code, 0);
}

TEST_F(VerifyTest, RegenerateRemakesTheDataFromThePatchedCheckout) {
  std::string old = block();
  old.replace(old.find("demo ") + 5, 40, std::string(40, 'a'));
  fixture("small", old);
  // Not on an unpatched checkout: that data would be made from another patch set.
  ASSERT_EQ(project.run({"sync"}).code, 0);
  CliRun refused = project.run({"verify", "--regenerate"}, {{"MAKE_FIXTURES", "1"}});
  EXPECT_EQ(refused.code, 1) << refused.all();
  EXPECT_NE(refused.out.find("--regenerate: refused: reference data made from this checkout would not be the patch set "
                             "of manifests/demo.yaml: pristine"),
            std::string::npos)
      << refused.out;
  ASSERT_EQ(project.run({"apply"}).code, 0);
  // Without what it needs, regenerating is skipped, and the stale data stays stale.
  CliRun skipped = project.run({"verify", "--regenerate"});
  EXPECT_EQ(skipped.code, 1) << skipped.all();
  EXPECT_NE(skipped.out.find("demo: regenerate skipped (condition false: test -n \"$MAKE_FIXTURES\")"),
            std::string::npos)
      << skipped.out;
  EXPECT_NE(skipped.out.find("demo: STALE"), std::string::npos) << skipped.out;
  CliRun r = project.run({"verify", "--regenerate"}, {{"MAKE_FIXTURES", "1"}});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.out.find("demo: reference data regenerated in"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: pass: 1 parity test passed"), std::string::npos) << r.out;
  EXPECT_EQ(nlohmann::json::parse(read(project.root() / "tests/fixtures/demo/small.json"))["fingerprint"]["demo"],
            block());
}

TEST_F(VerifyTest, AComponentWithoutAVerifySectionIsSkipped) {
  project.write_manifest({});
  CliRun r = project.run({"verify"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(r.out, "demo: skipped: manifests/demo.yaml has no verify section\n");
}

TEST(FixtureBlocks, DifferencesAreNamedPerPatch) {
  std::string a =
      "demo 1111111111111111111111111111111111111111\n  source a enabled 1111111111111111\n  source b enabled 2222\n  "
      "runtime r\n";
  std::string b =
      "demo 1111111111111111111111111111111111111111\n  source a opt-in 1111111111111111\n  source c enabled 3333\n  "
      "runtime r\n";
  auto d = patchmgr::block_differences(a, b);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], "patch a: enabled -> opt-in");
  EXPECT_EQ(d[1], "patch b: no longer in the manifest");
  EXPECT_EQ(d[2], "patch c: new");
  EXPECT_EQ(patchmgr::component_block("patch set v1\nx 00\n  source q enabled 1\ndemo 22\n  runtime r\n", "demo"),
            "demo 22\n  runtime r\n");
}

}  // namespace
