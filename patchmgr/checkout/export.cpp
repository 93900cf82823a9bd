#include "patchmgr/checkout/export.h"

#include <regex>
#include <set>

#include <fmt/format.h>

#include "patchmgr/checkout/inspect.h"
#include "patchmgr/checkout/journal.h"
#include "patchmgr/checkout/lock.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/sha256.h"

namespace patchmgr {

size_t write_series_files(const Context& ctx, const Manifest& m, const std::vector<PatchFileUpdate>& updates,
                          const std::optional<std::string>& new_pin) {
  auto& out = *ctx.out;
  std::vector<std::string> lines;
  {
    std::string text = read_file(m.path);
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      lines.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
  }
  auto replace_on_line = [&](int line, const std::regex& pattern, const std::string& value) {
    std::string& l = lines.at(size_t(line - 1));
    l = std::regex_replace(l, pattern, value, std::regex_constants::format_first_only);
  };
  std::vector<std::pair<std::filesystem::path, std::string>> writes;
  for (const auto& u : updates) {
    git::PatchFile parsed = git::parse_patch_file(u.text);
    std::set<std::string> listed(u.patch->files.begin(), u.patch->files.end());
    std::set<std::string> touched(parsed.touched_files.begin(), parsed.touched_files.end());
    if (listed != touched)
      *ctx.err << fmt::format("{}: warning: {} now touches [{}]; set its files: in {} to match\n", m.name, u.patch->id,
                              fmt::join(parsed.touched_files, ", "), m.path.filename().string());
    if (u.text == read_file(u.patch->file)) {
      out << fmt::format("  {:<28} unchanged\n", u.patch->id);
      continue;
    }
    std::string sha = sha256_hex(u.text);
    replace_on_line(u.patch->sha256_line, std::regex("[0-9a-f]{64}"), sha);
    writes.emplace_back(u.patch->file, u.text);
    out << fmt::format("  {:<28} written to patches/{}/{} (sha256 {})\n", u.patch->id, m.name, u.patch->file_field, sha.substr(0, 16));
  }
  if (new_pin) replace_on_line(m.commit_line, std::regex("[0-9a-f]{40}"), *new_pin);
  if (writes.empty() && !new_pin) return 0;
  // Patch files first, the manifest last: a crash in between shows up as a
  // sha256 mismatch naming the file, never as a manifest pointing at stale bytes.
  for (const auto& [path, text] : writes) write_file_atomic(path, text);
  std::string manifest;
  for (size_t i = 0; i < lines.size(); ++i) manifest += lines[i] + (i + 1 < lines.size() ? "\n" : "");
  write_file_atomic(m.path, manifest);
  return writes.size();
}

void export_series(const Context& ctx, const Manifest& m) {
  auto& out = *ctx.out;
  LockedCheckout checkout(ctx, m, "export");
  git_repository* repo = checkout.repo();
  Inspection in = inspect(repo, m, false);
  if (!in.based_on_pin) throw Error(ExitCode::failed, fmt::format("{}: {}", m.name, in.detail));
  if (in.chain.empty())
    throw Error(ExitCode::failed, fmt::format("{}: the checkout is pristine, there is nothing to export; run patchmgr apply {} first", m.name, m.name));
  if (in.has_tracked_edits())
    throw Error(ExitCode::refused, fmt::format("{}: the checkout has uncommitted edits; commit them into the patch commits "
                                               "(git commit --amend, or git commit --fixup and git rebase --autosquash) and export again",
                                               m.name));

  // Every commit must be one of the series' patches, each once, in series order.
  std::vector<std::pair<const Patch*, git_oid>> exports;
  std::set<const Patch*> seen;
  int last = -1;
  for (const auto& c : in.chain) {
    if (!c.patch || c.patch->kind != PatchKind::source)
      throw Error(ExitCode::failed,
                  fmt::format("{}: commit {} \"{}\" is not one of the series' patches; squash it into a patch commit, or "
                              "give it a \"{}: <id>\" trailer and a manifest entry for <id>",
                              m.name, git::short_hex(c.oid), c.subject, kPatchTrailer));
    int index = int(c.patch - m.patches.data());
    if (!seen.insert(c.patch).second || index < last)
      throw Error(ExitCode::failed, fmt::format("{}: commit {} holds patch {} out of series order (or twice); reorder the "
                                                "commits (git rebase -i) or the manifest, then export again",
                                                m.name, git::short_hex(c.oid), c.patch->id));
    last = index;
    exports.emplace_back(c.patch, c.oid);
  }

  std::vector<PatchFileUpdate> updates;
  for (const auto& [patch, oid] : exports) {
    git::Commit commit = git::lookup_commit(repo, oid);
    updates.push_back({patch, git::format_patch(commit.get())});
  }
  size_t changed = write_series_files(ctx, m, updates, std::nullopt);
  out << fmt::format("{}: exported {} patch{}, {} changed{}\n", m.name, exports.size(), exports.size() == 1 ? "" : "es", changed,
                     changed ? fmt::format("; {} updated", display_path(m.path, ctx.root)) : "");
}

}  // namespace patchmgr
