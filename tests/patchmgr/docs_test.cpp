// patchmgr docs: PATCHES.md rendered from the manifests, and --check for CI.
#include <gtest/gtest.h>

#include "reference_tools.h"
#include "series_fixture.h"

using namespace testutil;

namespace {

TEST_F(CheckoutTest, DocsRendersEveryPatchAndCheckTellsStaleness) {
  CliRun r = project.run({"docs"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(r.out, "wrote PATCHES.md (1 component)\n");
  std::string page = read(project.root() / "PATCHES.md");
  EXPECT_EQ(page.rfind("# Patches\n", 0), 0u);
  EXPECT_NE(page.find("| [demo](#demo) | https://example.invalid/demo.git | `" + to_hex(project.pin()).substr(0, 12) +
                      "` | 3 source, 0 runtime |"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("| Checkout | `upstream/demo` |"), std::string::npos) << page;
  EXPECT_NE(page.find("| 3 | [The compile patch](#demo-compile) | source | experimental, opt-in |  | 2026-01-25 | "
                      "`model/transformer.py` |"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("- **Status**: experimental since 2026-01-25; opt-in: `patchmgr apply --with compile`"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("- **Changes**: Add sdpa\n\n  > This patch adds sdpa so the tests can check the series.\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("patchmgr apply demo     # the enabled patches"), std::string::npos) << page;

  CliRun check = project.run({"docs", "--check"});
  EXPECT_EQ(check.code, 0) << check.all();
  EXPECT_EQ(check.out, "PATCHES.md is up to date\n");

  // A finding added to the manifest makes the page stale.
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest += "    findings:\n      - date: 2026-11-24\n        text: default mode compiles in 40 s on an H100.\n";
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun stale = project.run({"docs", "--check"});
  EXPECT_EQ(stale.code, 1) << stale.all();
  EXPECT_NE(stale.err.find("PATCHES.md is stale (first difference at line "), std::string::npos) << stale.err;
  EXPECT_EQ(read(project.root() / "PATCHES.md"), page);  // --check never writes
  ASSERT_EQ(project.run({"docs"}).code, 0);
  EXPECT_NE(read(project.root() / "PATCHES.md").find("  - 2026-11-24: default mode compiles in 40 s on an H100.\n"),
            std::string::npos);
  EXPECT_EQ(project.run({"docs", "--check"}).code, 0);
}

TEST_F(CheckoutTest, DocsRefusesInvalidManifests) {
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find("status: implemented"), 19, "status: done");
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"docs"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_FALSE(fs::exists(project.root() / "PATCHES.md"));
}

}  // namespace

namespace {

TEST_F(CheckoutTest, FingerprintFollowsPinsAndPatchFiles) {
  CliRun a = project.run({"fingerprint"});
  ASSERT_EQ(a.code, 0) << a.all();
  EXPECT_EQ(a.out.rfind("patch set ", 0), 0u) << a.out;
  EXPECT_NE(a.out.find("(demo@" + to_hex(project.pin()).substr(0, 12) + "+2)"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("  source compile opt-in "), std::string::npos) << a.out;
  EXPECT_EQ(project.run({"fingerprint"}).out, a.out);  // deterministic
  ASSERT_EQ(project.run({"fingerprint", "--header", "gen/patchset.h"}).code, 0);
  std::string header = read(project.root() / "gen/patchset.h");
  EXPECT_NE(header.find("#define STEMKIT_PATCHSET_ID \"" + a.out.substr(10, 16) + "\""), std::string::npos) << header;
  // A revised patch file is another patch set.
  std::string revised = kAttendPatched1;
  revised.replace(revised.find("return 'math'"), 13, "return 'mem_efficient'");
  project.write_manifest(
      {project.make_patch({.id = "flash-attention", .files = {{"model/attend.py", revised}}}, 1, project.pin())});
  CliRun b = project.run({"fingerprint"});
  EXPECT_NE(b.out.substr(0, 26), a.out.substr(0, 26));
}

TEST_F(CheckoutTest, DocsShowsWhereEachPatchStandsUpstream) {
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  manifest.replace(manifest.find("    status: implemented\n"), 24,
                   "    status: implemented\n    upstream_status: submitted\n    upstream_url: "
                   "https://example.invalid/demo/pull/4\n");
  manifest += "    upstream_status: inappropriate\n    upstream_reason: tunes the model for our GPUs only\n";
  write(project.root() / "manifests/demo.yaml", manifest);
  CliRun r = project.run({"docs"});
  ASSERT_EQ(r.code, 0) << r.all();
  std::string page = read(project.root() / "PATCHES.md");
  EXPECT_NE(page.find("| # | Patch | Kind | Status | Upstream | Since | Files |\n"), std::string::npos) << page;
  EXPECT_NE(page.find("| 1 | [The flash-attention patch](#demo-flash-attention) | source | implemented | "
                      "[submitted](https://example.invalid/demo/pull/4) | 2026-01-25 |"),
            std::string::npos)
      << page;
  EXPECT_NE(
      page.find(
          "| 3 | [The compile patch](#demo-compile) | source | experimental, opt-in | inappropriate | 2026-01-25 |"),
      std::string::npos)
      << page;
  EXPECT_NE(page.find("- **Upstream**: inappropriate for upstream: tunes the model for our GPUs only\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("- **Upstream**: submitted: https://example.invalid/demo/pull/4\n"), std::string::npos) << page;
}

}  // namespace

// patchmgr --completions (the bash and zsh scripts cmake --install installs):
// made from the command table, checked in a real bash with bash-completion,
// completing in the project so that component names come from its manifests.
TEST_F(CheckoutTest, CompletionsCompleteCommandsOptionsAndComponentsInBash) {
  CliRun zsh = project.run({"--completions", "zsh"});
  ASSERT_EQ(zsh.code, 0) << zsh.all();
  EXPECT_EQ(zsh.out.rfind("#compdef patchmgr\n", 0), 0u) << zsh.out;
  EXPECT_NE(zsh.out.find("_patchmgr__build_runtime() {"), std::string::npos) << zsh.out;
  if (sh("command -v zsh").code == 0) {
    write(project.root() / "_patchmgr", zsh.out);
    ToolRun syntax = sh("zsh -n " + shell_quote((project.root() / "_patchmgr").string()));
    EXPECT_EQ(syntax.code, 0) << syntax.out;
  }
  CliRun bash = project.run({"--completions", "bash"});
  ASSERT_EQ(bash.code, 0) << bash.all();
  EXPECT_EQ(project.run({"--completions", "fish"}).code, 2);
  const std::string library = "/usr/share/bash-completion/bash_completion";
  if (!fs::exists(library)) GTEST_SKIP() << "skipped: bash-completion is not installed (" << library << ")";
  write(project.root() / "patchmgr.bash", bash.out);
  // Each line: the words typed so far (the last one being completed) | what bash offers, in table order.
  write(project.root() / "drive.sh", "source " + library + R"(
source ./patchmgr.bash
t() {
  COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  _patchmgr patchmgr "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
  echo "$*|${COMPREPLY[*]}"
}
t patchmgr re
t patchmgr build ''
t patchmgr build runtime --fl
t patchmgr check --format j
t patchmgr --root . ap
t patchmgr apply --with x ''
t patchmgr status --j
)");
  ToolRun r = sh("cd " + shell_quote(project.root().string()) + " && bash drive.sh");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("patchmgr re|revert rebase\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr build |demo runtime\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr build runtime --fl|--flavor\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr check --format j|json junit\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr --root . ap|apply\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr apply --with x |demo\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("patchmgr status --j|--json\n"), std::string::npos) << r.out;
}
