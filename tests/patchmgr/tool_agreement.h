// patchmgr's drift classes next to the reference tools' verdicts, patch by
// patch through a series: each patch is asked of the tools on a working tree
// that holds the target plus the earlier patches, applied there by the tool
// that matches patchmgr's class (git apply, patch -F2, git apply -3), and the
// file patchmgr computed in memory must be the file the tool wrote.
#pragma once

#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

#include "patchmgr/checkout/drift.h"
#include "patchmgr/git/git.h"
#include "fixture.h"
#include "reference_tools.h"

namespace testutil {

struct Agreement {
  std::string id;
  std::string ours;   // patchmgr's class
  std::string tools;  // ToolVerdict::expected_class()
  std::string hunks;  // patchmgr's per-hunk summary
  ToolVerdict verdict;
  std::string mismatch;  // empty when patchmgr and the tools agree
};

inline std::string blob_text(git_repository* repo, const git_oid& tree_id, const std::string& path, bool* exists) {
  patchmgr::git::Tree tree = patchmgr::git::lookup_tree(repo, tree_id);
  git_tree_entry* e = nullptr;
  *exists = git_tree_entry_bypath(&e, tree.get(), path.c_str()) == 0;
  if (!*exists) return "";
  git_blob* b = nullptr;
  git_blob_lookup(&b, repo, git_tree_entry_id(e));
  std::string text(static_cast<const char*>(git_blob_rawcontent(b)), git_blob_rawsize(b));
  git_blob_free(b);
  git_tree_entry_free(e);
  return text;
}

// `workdir` is a working tree of `repo` (it is reset to `target`).
inline std::vector<Agreement> compare_with_tools(git_repository* repo, const std::filesystem::path& workdir,
                                                 const git_oid& pin, const git_oid& target,
                                                 const std::vector<const patchmgr::Patch*>& series) {
  using patchmgr::Drift;
  using How = patchmgr::git::HunkPlacement::How;
  std::vector<patchmgr::PatchDrift> drifts = patchmgr::classify_series(repo, pin, target, series);
  std::string wd = shell_quote(workdir.string());
  sh(fmt::format("git -C {} checkout -q -f --detach {} && git -C {} clean -qfdx", wd, patchmgr::git::to_hex(target),
                 wd));
  std::vector<Agreement> out;
  for (size_t k = 0; k < series.size(); ++k) {
    const patchmgr::Patch& p = *series[k];
    const patchmgr::PatchDrift& d = drifts[k];
    stage_all(workdir);
    Agreement a;
    a.id = p.id;
    a.ours = patchmgr::to_string(d.drift);
    a.hunks = d.summary();
    a.verdict = ask_tools(workdir, p.file);
    a.tools = a.verdict.expected_class();
    // The tools have no "partly upstream": git apply fails, and git apply -3
    // merges the hunks upstream has as identical changes (or conflicts).
    std::vector<std::string> wrong;
    bool one_file = p.parsed.touched_files.size() == 1;
    if (a.ours != a.tools && !(d.drift == Drift::partly_upstream && (a.tools == "conflict" || a.tools == "3-way")))
      wrong.push_back(fmt::format("class {} but the tools say {}", a.ours, a.tools));
    else if (d.drift == Drift::offset && one_file) {
      for (const auto& h : d.hunks) {
        int git = a.verdict.git_offsets.count(h.number) ? a.verdict.git_offsets.at(h.number) : 0;
        if (git != h.placement.offset)
          wrong.push_back(fmt::format("hunk {} at {:+}, git apply: {:+}", h.number, h.placement.offset, git));
      }
    } else if (d.drift == Drift::fuzz && one_file) {
      for (const auto& h : d.hunks) {
        auto tool =
            a.verdict.patch_hunks.count(h.number) ? a.verdict.patch_hunks.at(h.number) : std::pair<int, int>{0, 0};
        int fuzz = h.placement.how == How::fuzz ? h.placement.fuzz : 0;
        if (tool != std::pair<int, int>{fuzz, h.placement.offset})
          wrong.push_back(fmt::format("hunk {} fuzz {} at {:+}, patch: fuzz {} at {:+}", h.number, fuzz,
                                      h.placement.offset, tool.first, tool.second));
      }
    }
    // Bring the working tree to where patchmgr's next patch is checked.
    std::string pf = shell_quote(p.file.string());
    ToolRun applied{0, ""};
    if (d.drift == Drift::applies || d.drift == Drift::offset)
      applied = sh(fmt::format("git -C {} apply {}", wd, pf));
    else if (d.drift == Drift::fuzz)
      applied = sh(fmt::format("patch -d {} -p1 --forward --batch -F2 -s -i {}", wd, pf));
    else if (d.drift == Drift::three_way)
      applied = sh(fmt::format("git -C {} apply -3 {}", wd, pf));
    else if (d.drift == Drift::partly_upstream)
      for (const auto& path : p.parsed.touched_files) {
        bool exists = false;
        std::string text = blob_text(repo, *d.tree, path, &exists);
        if (exists)
          write(workdir / path, text);
        else
          std::filesystem::remove(workdir / path);
      }
    if (applied.code != 0) wrong.push_back("the tool did not apply it: " + applied.out);
    if (d.tree && d.drift != Drift::partly_upstream)
      for (const auto& path : p.parsed.touched_files) {
        bool exists = false;
        std::string ours = blob_text(repo, *d.tree, path, &exists);
        bool there = std::filesystem::exists(workdir / path);
        if (exists != there || (there && read(workdir / path) != ours))
          wrong.push_back(fmt::format("{} differs from what the tool wrote", path));
      }
    for (const auto& w : wrong) a.mismatch += (a.mismatch.empty() ? "" : "; ") + w;
    if (!a.mismatch.empty()) a.mismatch += "\n" + a.verdict.log;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace testutil
