// Classification, in this order: libgit2's exact apply; then per file the hunk
// locator (offset, fuzz, already upstream); then, for what it cannot place, a
// three-way merge of the trees (pin+series as theirs, the target as ours),
// which is also what sees a change that upstream made in other words.
#include "patchmgr/checkout/drift.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "patchmgr/checkout/apply.h"
#include "patchmgr/git/git.h"
#include "patchmgr/git/patch_file.h"

namespace patchmgr {

const char* to_string(Drift d) {
  switch (d) {
    case Drift::applies: return "applies";
    case Drift::offset: return "offset";
    case Drift::fuzz: return "fuzz";
    case Drift::three_way: return "3-way";
    case Drift::upstream: return "already upstream";
    case Drift::partly_upstream: return "partly upstream";
    case Drift::conflict: return "conflict";
  }
  return "?";
}

int severity(Drift d) {
  switch (d) {
    case Drift::applies: return 0;
    case Drift::offset: return 1;
    case Drift::fuzz: return 2;
    case Drift::three_way: return 3;
    case Drift::upstream: return 4;
    case Drift::partly_upstream:
    case Drift::conflict: return 5;
  }
  return 5;
}

std::optional<Drift> parse_fail_on(const std::string& text) {
  if (text == "offset") return Drift::offset;
  if (text == "fuzz") return Drift::fuzz;
  if (text == "3-way") return Drift::three_way;
  if (text == "upstream") return Drift::upstream;
  if (text == "conflict") return Drift::conflict;
  return std::nullopt;
}

std::string PatchDrift::summary() const {
  std::string out, file;
  for (const auto& h : hunks) {
    using How = git::HunkPlacement::How;
    if (h.placement.how == How::exact) continue;
    std::string where;
    switch (h.placement.how) {
      case How::offset: where = fmt::format("{:+}", h.placement.offset); break;
      case How::fuzz: where = fmt::format("fuzz {} at {:+}", h.placement.fuzz, h.placement.offset); break;
      case How::upstream: where = "already upstream"; break;
      case How::missing: where = "not found"; break;
      case How::exact: break;
    }
    if (!out.empty()) out += ", ";
    out += h.file == file ? fmt::format("hunk {} {}", h.number, where)
                          : fmt::format("{} hunk {} {}", h.file, h.number, where);
    file = h.file;
  }
  return out;
}

std::string describe_conflict(git_repository* repo, const git_index_entry* ancestor, const git_index_entry* ours,
                              const git_index_entry* theirs) {
  const char* path = ours ? ours->path : theirs ? theirs->path : ancestor->path;
  if (!ours) return fmt::format("{} (deleted upstream, changed by the patch)", path);
  if (!theirs) return fmt::format("{} (changed upstream, deleted by the patch)", path);
  if (!ancestor) return fmt::format("{} (added upstream and by the patch, with different content)", path);
  git_merge_file_result raw{};
  git_merge_file_options opts = GIT_MERGE_FILE_OPTIONS_INIT;
  if (git_merge_file_from_index(&raw, repo, ancestor, ours, theirs, &opts) < 0) return path;
  std::string merged(raw.ptr ? raw.ptr : "", raw.len);
  git_merge_file_result_free(&raw);
  std::vector<std::string> ranges;
  std::string first;
  int upstream_line = 0, start = 0;
  enum { outside, in_ours, in_theirs } where = outside;
  for (const auto& line_nl : git::split_lines(merged)) {
    std::string line = line_nl.substr(0, line_nl.find('\n'));
    if (where == outside && line.rfind("<<<<<<<", 0) == 0)
      where = in_ours, start = upstream_line + 1;
    else if (where == in_ours && line.rfind("=======", 0) == 0)
      where = in_theirs;
    else if (where == in_theirs && line.rfind(">>>>>>>", 0) == 0) {
      where = outside;
      ranges.push_back(upstream_line > start    ? fmt::format("{}-{}", start, upstream_line)
                       : upstream_line == start ? fmt::format("{}", start)
                                                : fmt::format("after {}", start - 1));
    } else if (where != in_theirs) {
      ++upstream_line;
      if (where == in_ours && first.empty()) first = line;
    }
  }
  if (ranges.empty()) return path;
  bool one = ranges.size() == 1 && ranges[0].find('-') == std::string::npos;
  std::string out = fmt::format("{} (upstream line{} {})", path, one ? "" : "s", fmt::join(ranges, ", "));
  size_t indent = first.find_first_not_of(" \t");
  if (indent != std::string::npos) {
    std::string quote = first.substr(indent);
    if (quote.size() > 72) {  // cut where a UTF-8 character starts, and said to be cut
      size_t cut = 69;
      while (cut > 0 && (static_cast<unsigned char>(quote[cut]) & 0xC0) == 0x80) --cut;
      quote = quote.substr(0, cut) + "...";
    }
    out += fmt::format(": `{}`", quote);
  }
  return out;
}

namespace {

using GitPatch = git::Handle<git_patch, git_patch_free>;
using How = git::HunkPlacement::How;

struct FileContent {
  std::string text;
  uint32_t mode = 0;
  git_oid id{};
};

std::optional<FileContent> read_file(git_repository* repo, git_tree* tree, const std::string& path) {
  git_tree_entry* e = nullptr;
  if (!tree || git_tree_entry_bypath(&e, tree, path.c_str()) < 0) return std::nullopt;
  FileContent f;
  f.mode = git_tree_entry_filemode(e);
  f.id = *git_tree_entry_id(e);
  git_tree_entry_free(e);
  if (f.mode == GIT_FILEMODE_TREE || f.mode == GIT_FILEMODE_COMMIT) return std::nullopt;
  git_blob* b = nullptr;
  git::check(git_blob_lookup(&b, repo, &f.id), fmt::format("cannot read {}", path));
  git::Blob blob(b);
  f.text.assign(static_cast<const char*>(git_blob_rawcontent(b)), git_blob_rawsize(b));
  return f;
}

std::vector<git::Hunk> hunks_of(git_patch* patch) {
  std::vector<git::Hunk> hunks;
  for (size_t h = 0; h < git_patch_num_hunks(patch); ++h) {
    const git_diff_hunk* gh = nullptr;
    size_t lines = 0;
    git::check(git_patch_get_hunk(&gh, &lines, patch, h), "cannot read a hunk of the patch");
    git::Hunk hunk;
    hunk.header.assign(gh->header, gh->header_len);
    while (!hunk.header.empty() && (hunk.header.back() == '\n' || hunk.header.back() == '\r')) hunk.header.pop_back();
    hunk.old_start = gh->old_start;
    for (size_t l = 0; l < lines; ++l) {
      const git_diff_line* line = nullptr;
      git::check(git_patch_get_line_in_hunk(&line, patch, h, l), "cannot read a line of the patch");
      std::string text(line->content, line->content_len);
      if (line->origin == GIT_DIFF_LINE_CONTEXT_EOFNL || line->origin == GIT_DIFF_LINE_ADD_EOFNL ||
          line->origin == GIT_DIFF_LINE_DEL_EOFNL) {
        // "\ No newline at end of file": the line before it ends without one.
        if (!hunk.lines.empty() && !hunk.lines.back().text.empty() && hunk.lines.back().text.back() == '\n')
          hunk.lines.back().text.pop_back();
        continue;
      }
      if (line->origin != ' ' && line->origin != '-' && line->origin != '+') continue;
      hunk.lines.push_back({line->origin, text});
    }
    hunks.push_back(std::move(hunk));
  }
  return hunks;
}

std::string postimage(const std::vector<git::Hunk>& hunks) {
  std::string s;
  for (const auto& h : hunks)
    for (const auto& l : h.lines)
      if (l.origin != '-') s += l.text;
  return s;
}

// The edits the located patch makes to the target tree.
struct Edits {
  std::map<std::string, std::pair<std::string, uint32_t>> write;  // path -> content, mode
  std::vector<std::string> remove;
};

git_oid write_tree(git_repository* repo, git_tree* target, const Edits& edits) {
  git_index* raw = nullptr;
  git::check(git_index_new(&raw), "cannot make an index in memory");
  git::Index index(raw);
  git::check(git_index_read_tree(raw, target), "cannot read the target tree");
  for (const auto& path : edits.remove) git_index_remove(raw, path.c_str(), 0);
  for (const auto& [path, content] : edits.write) {
    // An index made in memory has no repository, so the blob is written first.
    git_index_entry e{};
    e.mode = content.second;
    e.path = path.c_str();
    git::check(git_blob_create_from_buffer(&e.id, repo, content.first.data(), content.first.size()),
               fmt::format("cannot store {}", path));
    git::check(git_index_add(raw, &e), fmt::format("cannot stage {}", path));
  }
  git_oid tree;
  git::check(git_index_write_tree_to(&tree, raw, repo), "cannot write the patched tree");
  return tree;
}

struct Merge {
  bool clean = false;
  git_oid tree{};
  std::string conflicts;  // "; "-joined describe_conflict of each file
};

Merge three_way(git_repository* repo, git_tree* base, git_tree* ours, git_tree* theirs) {
  Merge m;
  git_merge_options opts = GIT_MERGE_OPTIONS_INIT;
  git_index* raw = nullptr;
  git::check(git_merge_trees(&raw, repo, base, ours, theirs, &opts), "cannot merge the patch into the target");
  git::Index index(raw);
  if (git_index_has_conflicts(raw)) {
    std::vector<std::string> files;
    git_index_conflict_iterator* it = nullptr;
    git::check(git_index_conflict_iterator_new(&it, raw), "cannot list conflicts");
    const git_index_entry *a = nullptr, *o = nullptr, *t = nullptr;
    while (git_index_conflict_next(&a, &o, &t, it) == 0) files.push_back(describe_conflict(repo, a, o, t));
    git_index_conflict_iterator_free(it);
    m.conflicts = fmt::format("{}", fmt::join(files, "; "));
    return m;
  }
  git::check(git_index_write_tree_to(&m.tree, raw, repo), "cannot write the merged tree");
  m.clean = true;
  return m;
}

}  // namespace

PatchDrift classify_patch(git_repository* repo, git_tree* target, git_tree* base, const Patch& patch) {
  PatchDrift out;
  git::Diff diff = git::parse_diff(patch.parsed);
  TreeApply exact = apply_patch_to_tree(repo, target, patch);

  // Every text hunk, located on the target; with the edits that place them.
  Edits edits;
  std::vector<std::string> unplaced;    // what the locator could not place, for the conflict message
  bool upstream_outside_hunks = false;  // a mode change or binary change upstream already made
  std::vector<std::string> renamed_upstream;
  size_t deltas = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < deltas; ++i) {
    git_patch* raw = nullptr;
    git::check(git_patch_from_diff(&raw, diff.get(), i), fmt::format("cannot read {}", patch.file_field));
    GitPatch gp(raw);
    const git_diff_delta* d = git_patch_get_delta(raw);
    std::string old_path = d->old_file.path ? d->old_file.path : "";
    std::string new_path = d->new_file.path ? d->new_file.path : old_path;
    std::vector<git::Hunk> hunks = hunks_of(raw);
    auto record = [&](const std::vector<git::HunkPlacement>& placements) {
      for (size_t h = 0; h < hunks.size(); ++h)
        out.hunks.push_back({new_path, static_cast<int>(h + 1), hunks[h].header, placements[h]});
    };
    auto all = [&](How how) {
      git::HunkPlacement p;
      p.how = how;
      record(std::vector<git::HunkPlacement>(hunks.size(), p));
    };

    if (d->flags & GIT_DIFF_FLAG_BINARY) {
      auto now = read_file(repo, target, new_path);
      if ((d->status != GIT_DELTA_DELETED && now && git_oid_equal(&now->id, &d->new_file.id)) ||
          (d->status == GIT_DELTA_DELETED && !read_file(repo, target, old_path))) {
        upstream_outside_hunks = true;  // already there
        continue;
      }
      unplaced.push_back(fmt::format("{} (binary: applies only exactly)", new_path));
      continue;
    }
    std::optional<FileContent> old_file =
        d->status == GIT_DELTA_ADDED ? std::nullopt : read_file(repo, target, old_path);
    if (d->status == GIT_DELTA_ADDED) {
      if (auto there = read_file(repo, target, new_path)) {
        if (there->text == postimage(hunks)) {
          all(How::upstream);
        } else {
          all(How::missing);
          unplaced.push_back(fmt::format("{} (the patch adds it; upstream has it with other content)", new_path));
        }
        continue;
      }
      old_file = FileContent{};
    } else if (!old_file) {
      if (d->status == GIT_DELTA_DELETED) {
        all(How::upstream);
        continue;
      }
      if (d->status == GIT_DELTA_RENAMED && (old_file = read_file(repo, target, new_path))) {
        // Upstream made the rename; the content is what is left to find. GNU
        // patch follows such a rename, git apply does not: at best fuzz.
        renamed_upstream.push_back(fmt::format("upstream already renamed {} to {}", old_path, new_path));
        old_path = new_path;
      } else {
        all(How::missing);
        unplaced.push_back(fmt::format("{} (deleted upstream, changed by the patch)", old_path));
        continue;
      }
    }
    if (hunks.empty()) {  // a mode change or a pure rename
      auto there = read_file(repo, target, new_path);
      if (there && there->mode == d->new_file.mode && (old_path == new_path || !read_file(repo, target, old_path))) {
        upstream_outside_hunks = true;
        continue;
      }
      if (old_path != new_path) edits.remove.push_back(old_path);
      edits.write[new_path] = {old_file->text, d->new_file.mode};
      continue;
    }
    git::FileLocation loc = git::locate_hunks(old_file->text, hunks);
    record(loc.hunks);
    if (!loc.applied) {
      for (size_t h = 0; h < hunks.size(); ++h)
        if (loc.hunks[h].how == How::missing)
          unplaced.push_back(fmt::format("{}, hunk {} ({}) not found", new_path, h + 1, hunks[h].header));
      continue;
    }
    if (d->status == GIT_DELTA_DELETED) {
      if (loc.result.empty()) edits.remove.push_back(old_path);
      continue;
    }
    if (old_path != new_path) edits.remove.push_back(old_path);
    edits.write[new_path] = {loc.result, d->new_file.mode ? d->new_file.mode : old_file->mode};
  }

  // libgit2 writes a new file over one that exists; git apply refuses, so the
  // locator's view must agree before libgit2's result counts as exact.
  bool all_exact =
      std::all_of(out.hunks.begin(), out.hunks.end(), [](const HunkDrift& h) { return h.placement.how == How::exact; });
  if (exact.tree && unplaced.empty() && all_exact) {
    out.drift = Drift::applies;
    out.tree = exact.tree;
    return out;
  }
  auto count = [&](How how) {
    return std::count_if(out.hunks.begin(), out.hunks.end(),
                         [&](const HunkDrift& h) { return h.placement.how == how; });
  };
  if (unplaced.empty()) {
    git_oid tree = write_tree(repo, target, edits);
    out.tree = tree;
    if (git_oid_equal(&tree, git_tree_id(target)))
      out.drift = Drift::upstream;
    else if (count(How::upstream) > 0 || upstream_outside_hunks)
      out.drift = Drift::partly_upstream;
    else if (count(How::fuzz) > 0 || !renamed_upstream.empty())
      out.drift = Drift::fuzz;
    else
      out.drift = Drift::offset;
    out.detail = out.drift == Drift::offset && count(How::offset) == 0 ? exact.describe() : out.summary();
    for (const auto& r : renamed_upstream) out.detail += (out.detail.empty() ? "" : "; ") + r;
    return out;
  }

  std::string missing = fmt::format("{}", fmt::join(unplaced, "; "));
  if (!base) {
    out.drift = Drift::conflict;
    out.detail = missing + "; no three-way merge: the series does not apply on the pin";
    return out;
  }
  TreeApply theirs_apply = apply_patch_to_tree(repo, base, patch);
  if (!theirs_apply.tree) {
    out.drift = Drift::conflict;
    out.detail = missing +
                 fmt::format("; no three-way merge: the patch does not apply on the pin ({})", theirs_apply.describe());
    return out;
  }
  git::Tree theirs = git::lookup_tree(repo, *theirs_apply.tree);
  Merge m = three_way(repo, base, target, theirs.get());
  if (!m.clean) {
    out.drift = Drift::conflict;
    out.detail = missing + "; the three-way merge with the pin conflicts in " + m.conflicts;
    return out;
  }
  out.tree = m.tree;
  if (git_oid_equal(&m.tree, git_tree_id(target))) {
    out.drift = Drift::upstream;
    out.detail = "the three-way merge with the pin changes nothing: upstream has the change";
  } else {
    out.drift = Drift::three_way;
    out.detail = missing + "; the three-way merge with the pin is clean";
  }
  return out;
}

std::vector<PatchDrift> classify_series(git_repository* repo, const git_oid& pin, const git_oid& target,
                                        const std::vector<const Patch*>& series) {
  git::Commit pin_commit = git::lookup_commit(repo, pin);
  git::Commit target_commit = git::lookup_commit(repo, target);
  std::optional<git::Tree> base = git::commit_tree(pin_commit.get());
  git::Tree tree = git::commit_tree(target_commit.get());
  std::vector<std::string> left_out;
  std::vector<PatchDrift> out;
  for (const Patch* p : series) {
    PatchDrift d = classify_patch(repo, tree.get(), base ? base->get() : nullptr, *p);
    d.checked_without = left_out;
    if (d.tree)
      tree = git::lookup_tree(repo, *d.tree);
    else
      left_out.push_back(p->id);
    if (base) {
      TreeApply b = apply_patch_to_tree(repo, base->get(), *p);
      if (b.tree)
        base = git::lookup_tree(repo, *b.tree);
      else
        base.reset();
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace patchmgr
