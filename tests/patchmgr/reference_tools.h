// What the reference tools say about a patch file on a git working tree:
// `git apply --check -v` (exact, or at offsets: it prints them), `git apply
// -R --check` (already applied), GNU `patch --dry-run` with -F0 and -F2 (it
// prints each hunk's fuzz and offset) and `git apply -3 --check` (needs the
// working tree to match the index: call stage_all first). The drift classes
// are checked against these, so they mean what the tools mean.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <string>

namespace testutil {

struct ToolRun {
  int code = -1;
  std::string out;
};

inline ToolRun sh(const std::string& command) {
  ToolRun r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Stages the working tree, so that `git apply -3` sees index == working tree.
inline void stage_all(const std::filesystem::path& dir) { sh("git -C " + shell_quote(dir.string()) + " add -A"); }

struct ToolVerdict {
  bool git_apply = false;          // git apply --check
  std::map<int, int> git_offsets;  // hunk number (per file, as git prints it) -> offset, for hunks git moved
  bool reverse = false;            // git apply -R --check: the patch is already applied
  bool patch_f0 = false;           // patch --dry-run --forward -F0
  bool patch_f2 = false;           // patch --dry-run --forward -F2
  std::map<int, std::pair<int, int>>
      patch_hunks;        // -F2: hunk number -> (fuzz, offset), for hunks patch moved or fuzzed
  bool git_3way = false;  // git apply -3 --check
  std::string log;

  // The class the tools agree on, in patchmgr's words.
  std::string expected_class() const {
    if (git_apply) return git_offsets.empty() ? "applies" : "offset";
    if (reverse) return "already upstream";
    if (patch_f2) return "fuzz";
    if (git_3way) return "3-way";
    return "conflict";
  }
};

inline ToolVerdict ask_tools(const std::filesystem::path& dir, const std::filesystem::path& patch) {
  ToolVerdict v;
  std::string d = shell_quote(dir.string()), p = shell_quote(patch.string());
  ToolRun a = sh("git -C " + d + " apply --check -v " + p);
  v.git_apply = a.code == 0;
  std::smatch m;
  static const std::regex git_hunk(R"(Hunk #(\d+) succeeded at \d+ \(offset (-?\d+) lines?\))");
  for (auto it = std::sregex_iterator(a.out.begin(), a.out.end(), git_hunk); it != std::sregex_iterator(); ++it)
    v.git_offsets[std::stoi((*it)[1])] = std::stoi((*it)[2]);
  v.reverse = sh("git -C " + d + " apply -R --check " + p).code == 0;
  v.patch_f0 = sh("patch -d " + d + " -p1 --dry-run --forward --batch -F0 -i " + p).code == 0;
  ToolRun f2 = sh("patch -d " + d + " -p1 --dry-run --forward --batch -F2 -i " + p);
  v.patch_f2 = f2.code == 0;
  static const std::regex patch_hunk(
      R"(Hunk #(\d+) succeeded at \d+(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?\.)");
  for (auto it = std::sregex_iterator(f2.out.begin(), f2.out.end(), patch_hunk); it != std::sregex_iterator(); ++it)
    v.patch_hunks[std::stoi((*it)[1])] = {(*it)[2].matched ? std::stoi((*it)[2]) : 0,
                                          (*it)[3].matched ? std::stoi((*it)[3]) : 0};
  ToolRun three = sh("git -C " + d + " apply -3 --check " + p);
  // With --check, git apply -3 exits 0 even when the merge conflicts; it says so.
  v.git_3way = three.code == 0 && three.out.find("with conflicts") == std::string::npos;
  v.log = "git apply: " + a.out + "\npatch -F2: " + f2.out + "\ngit apply -3: " + three.out;
  return v;
}

}  // namespace testutil
