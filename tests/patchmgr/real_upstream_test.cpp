// The real manifests (manifests/*.yaml of this repository) against local
// copies of the real upstreams. Labelled "upstream"; each component runs only
// when PATCHMGR_UPSTREAM_<NAME> points at a clone or mirror of its upstream
// (tests never use the network), and says so when it skips.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include <algorithm>
#include <ctime>
#include <fstream>

#include "fixture.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/checkout/drift_bisect.h"
#include "tool_agreement.h"

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
  if (!mirror || !*mirror)
    GTEST_SKIP() << "skipped: set " << var << " to a local clone or mirror of " << name << "'s upstream to run it";
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

// Every first-parent commit of BS-RoFormer's history that has bs_roformer/attend.py,
// before the pin and after it: the class patchmgr gives each patch must be what git
// apply, git apply -3 and GNU patch say on the same tree (tool_agreement.h), and the
// file patchmgr computes must be the one the tool writes. The table it prints (and
// writes to bs-roformer-history.md in the current directory) is the one in
// docs/patch-verification.md.
TEST(RealHistory, BsRoformerEveryCommitWithAttendAgreesWithTheTools) {
  const std::string var = patchmgr::upstream_env_var("bs-roformer");
  const char* mirror = std::getenv(var.c_str());
  if (!mirror || !*mirror)
    GTEST_SKIP() << "skipped: set " << var << " to a local clone or mirror of bs-roformer's upstream to run it";
  auto loaded = patchmgr::load_manifest(kSource / "manifests/bs-roformer.yaml", kSource);
  ASSERT_EQ(loaded.manifests.size(), 1u);
  const patchmgr::Manifest& m = loaded.manifests[0];
  std::vector<const patchmgr::Patch*> series;
  for (const patchmgr::Patch* p : m.source_patches())
    if (p->enabled || p->status == patchmgr::PatchStatus::experimental) series.push_back(p);
  ASSERT_FALSE(series.empty());

  TempDir tmp;
  fs::path work = tmp.path() / "bs-roformer";
  std::string w = shell_quote(work.string());
  ASSERT_EQ(sh("git clone -q " + shell_quote(mirror) + " " + w).code, 0);
  // git apply -3 finds the base of patch k by the blob in its index line: the pin's
  // file with the earlier patches applied. Put those blobs in the clone.
  ASSERT_EQ(sh("git -C " + w + " checkout -q --detach " + m.commit).code, 0);
  for (const auto* p : series)
    ASSERT_EQ(sh("git -C " + w + " apply --index " + shell_quote(p->file.string())).code, 0) << p->id;
  ASSERT_EQ(sh("git -C " + w + " write-tree").code, 0);
  ToolRun tip = sh("git -C " + w + " rev-parse origin/" + m.track);
  ASSERT_EQ(tip.code, 0) << tip.out;
  ToolRun list = sh("git -C " + w + " rev-list --first-parent --reverse origin/" + m.track);
  Repo repo(work, Repo::Existing{});
  git_oid pin = patchmgr::git::from_hex(m.commit);

  std::string table = "| commit | date | ";
  for (const auto* p : series) table += p->id + " | ";
  table += "git apply | patch -F2 | git apply -3 |\n|---|---|";
  for (size_t i = 0; i < series.size() + 3; ++i) table += "---|";
  table += "\n";
  std::map<std::string, int> counts;
  int commits = 0, before_pin = 0, mismatches = 0;
  bool seen_pin = false;
  std::vector<std::string> walked;                          // oldest first
  std::map<std::string, std::vector<std::string>> classes;  // commit -> class per patch
  std::istringstream in(list.out);
  for (std::string hex; std::getline(in, hex);) {
    if (hex.size() != 40) continue;
    git_oid oid = patchmgr::git::from_hex(hex);
    patchmgr::git::Commit c = patchmgr::git::lookup_commit(repo.get(), oid);
    patchmgr::git::Tree tree = patchmgr::git::commit_tree(c.get());
    git_tree_entry* e = nullptr;
    if (git_tree_entry_bypath(&e, tree.get(), "bs_roformer/attend.py") != 0) continue;
    git_tree_entry_free(e);
    ++commits;
    if (hex == m.commit)
      seen_pin = true;
    else if (!seen_pin)
      ++before_pin;
    auto rows = compare_with_tools(repo.get(), work, pin, oid, series);
    walked.push_back(hex);
    for (const auto& r : rows) classes[hex].push_back(r.ours);
    std::time_t t = git_commit_time(c.get());
    char date[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&t));
    table += fmt::format("| `{}`{} | {} | ", hex.substr(0, 7), hex == m.commit ? " (pin)" : "", date);
    std::string git_apply, patch_f2, three;
    for (const auto& r : rows) {
      ++counts[r.id + ": " + r.ours];
      table += r.ours + (r.hunks.empty() ? "" : " (" + r.hunks + ")") + " | ";
      auto word = [](bool ok) { return ok ? "ok" : "fails"; };
      std::string offsets;
      for (const auto& [h, o] : r.verdict.git_offsets)
        offsets += fmt::format("{}hunk {} {:+}", offsets.empty() ? " at " : ", ", h, o);
      git_apply += fmt::format("{}{}{}", git_apply.empty() ? "" : "; ", word(r.verdict.git_apply),
                               r.verdict.git_apply ? offsets : "");
      patch_f2 += fmt::format("{}{}", patch_f2.empty() ? "" : "; ", word(r.verdict.patch_f2));
      three += fmt::format("{}{}", three.empty() ? "" : "; ", word(r.verdict.git_3way));
      if (!r.mismatch.empty()) {
        ++mismatches;
        ADD_FAILURE() << hex.substr(0, 12) << " " << r.id << ": " << r.mismatch;
      }
    }
    table += git_apply + " | " + patch_f2 + " | " + three + " |\n";
  }
  EXPECT_TRUE(seen_pin) << "the pin is not on origin/" << m.track << "'s first-parent line";

  // --bisect from the oldest commit back to the pin names the commit a linear walk finds:
  // the newest one whose parent gives the patch the oldest commit's class.
  size_t pin_at = std::find(walked.begin(), walked.end(), m.commit) - walked.begin();
  ASSERT_LT(pin_at, walked.size());
  for (size_t k = 0; k < series.size(); ++k) {
    const std::string& oldest = walked.front();
    auto severity_of = [&](const std::string& hex) {
      for (int d = 0; d <= static_cast<int>(patchmgr::Drift::conflict); ++d)
        if (classes[hex][k] == patchmgr::to_string(static_cast<patchmgr::Drift>(d)))
          return patchmgr::severity(static_cast<patchmgr::Drift>(d));
      return -1;
    };
    if (severity_of(oldest) <= severity_of(m.commit)) continue;
    std::string needed;
    for (size_t i = pin_at; i-- > 0;)
      if (severity_of(walked[i]) >= severity_of(oldest)) {
        needed = walked[i + 1];
        break;
      }
    auto at_oldest = patchmgr::classify_series(repo.get(), pin, patchmgr::git::from_hex(oldest), series)[k].drift;
    patchmgr::DriftChange b =
        patchmgr::bisect_drift(repo.get(), pin, patchmgr::git::from_hex(oldest), series, k, at_oldest);
    EXPECT_EQ(b.error, "");
    EXPECT_TRUE(b.backwards);
    EXPECT_EQ(b.commit, needed) << series[k]->id;
    std::cout << fmt::format(
        "bisect {} back to {}: needs {} ({}: {}), {} with it, {} without; {} of {} commits classified\n", series[k]->id,
        oldest.substr(0, 7), b.commit.substr(0, 7), b.date, b.subject, patchmgr::to_string(b.after),
        patchmgr::to_string(b.before), b.classifications, b.commits);
  }
  std::string summary = fmt::format(
      "{} commits with bs_roformer/attend.py on the first-parent line of {} ({} before the pin); "
      "patchmgr and the tools disagree on {} patch checks.\n\n",
      commits, m.track, before_pin, mismatches);
  for (const auto& [k, n] : counts) summary += fmt::format("- {}: {} commits\n", k, n);
  std::string out = summary + "\n" + table;
  std::ofstream("bs-roformer-history.md") << out;
  std::cout << out;
}

INSTANTIATE_TEST_SUITE_P(Manifests, RealUpstream, ::testing::ValuesIn(real_components()), [](const auto& info) {
  std::string n = info.param;
  for (auto& c : n)
    if (c == '-') c = '_';
  return n;
});
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(RealUpstream);

}  // namespace
