// A port of git's show_stats() and diff_summary() (diff.c) for the mail
// width; the names of the steps follow git's so the two can be compared.
#include "patchmgr/git/diffstat.h"

#include <fmt/format.h>

#include "patchmgr/git/git.h"
#include "patchmgr/git/quote.h"
#include "patchmgr/git/similarity.h"

namespace patchmgr::git {
namespace {

constexpr int kStatWidth = 72;  // git's MAIL_DEFAULT_WRAP, format-patch's --stat width

int decimal_width(size_t n) {
  int w = 1;
  for (; n >= 10; n /= 10) ++w;
  return w;
}

// git's pprint_rename(): "dir/{old => new}/rest", or both paths quoted in full.
std::string rename_name(const std::string& a, const std::string& b) {
  if (path_needs_quotes(a) || path_needs_quotes(b)) return quote_path(a) + " => " + quote_path(b);
  long len_a = long(a.size()), len_b = long(b.size());
  long pfx = 0;
  for (long i = 0; i < len_a && i < len_b && a[i] == b[i]; ++i)
    if (a[i] == '/') pfx = i + 1;
  long sfx = 0;
  long adjust = pfx ? 1 : 0;
  for (long oa = len_a, ob = len_b; pfx - adjust <= oa && pfx - adjust <= ob; --oa, --ob) {
    char ca = oa < len_a ? a[oa] : '\0', cb = ob < len_b ? b[ob] : '\0';
    if (ca != cb) break;
    if (ca == '/') sfx = len_a - oa;
  }
  long a_mid = std::max(0L, len_a - pfx - sfx), b_mid = std::max(0L, len_b - pfx - sfx);
  std::string out;
  if (pfx + sfx) out += a.substr(0, size_t(pfx)) + "{";
  out += a.substr(size_t(pfx), size_t(a_mid)) + " => " + b.substr(size_t(pfx), size_t(b_mid));
  if (pfx + sfx) out += "}" + a.substr(size_t(len_a - sfx));
  return out;
}

std::string print_name(const StatEntry& e) {
  if (e.status == GIT_DELTA_RENAMED || e.status == GIT_DELTA_COPIED) return rename_name(e.old_path, e.new_path);
  return quote_path(e.status == GIT_DELTA_DELETED ? e.old_path : e.new_path);
}

size_t scale_linear(size_t it, int width, size_t max_change) {
  if (!it) return 0;
  return 1 + it * size_t(width - 1) / max_change;
}

std::string mode_change(const StatEntry& e, bool show_name) {
  if (!e.old_mode || !e.new_mode || e.old_mode == e.new_mode) return "";
  std::string s = fmt::format(" mode change {:06o} => {:06o}", e.old_mode, e.new_mode);
  if (show_name) s += " " + quote_path(e.new_path);
  return s + "\n";
}

size_t blob_size(git_repository* repo, const git_diff_file& f) {
  if (!(f.flags & GIT_DIFF_FLAG_EXISTS)) return 0;
  if (f.size) return size_t(f.size);
  git_blob* b = nullptr;
  check(git_blob_lookup(&b, repo, &f.id), fmt::format("cannot read the blob of {}", f.path));
  Blob blob(b);
  return size_t(git_blob_rawsize(b));
}

}  // namespace

std::vector<StatEntry> stat_entries(git_repository* repo, git_diff* diff) {
  std::vector<StatEntry> entries;
  for (size_t i = 0; i < git_diff_num_deltas(diff); ++i) {
    git_patch* p = nullptr;
    check(git_patch_from_diff(&p, diff, i), "cannot count the lines of a diff");
    std::unique_ptr<git_patch, decltype(&git_patch_free)> patch(p, git_patch_free);
    const git_diff_delta* d = git_patch_get_delta(p);
    StatEntry e;
    e.old_path = d->old_file.path ? d->old_file.path : "";
    e.new_path = d->new_file.path ? d->new_file.path : "";
    e.status = d->status;
    e.old_mode = d->old_file.mode;
    e.new_mode = d->new_file.mode;
    if (e.status == GIT_DELTA_RENAMED || e.status == GIT_DELTA_COPIED) e.similarity = similarity_index(repo, *d);
    e.binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
    if (e.binary && git_oid_equal(&d->old_file.id, &d->new_file.id)) {
      // Same content (a rename, a mode change): git shows "Bin" without sizes.
    } else if (e.binary) {
      e.deleted = blob_size(repo, d->old_file);
      e.added = blob_size(repo, d->new_file);
    } else {
      size_t context = 0;
      check(git_patch_line_stats(&context, &e.added, &e.deleted, p), "cannot count the lines of a diff");
    }
    // A type change: git shows it as the deletion then the creation of one
    // path, but counts it once, as a mode change.
    if (e.status == GIT_DELTA_ADDED && !entries.empty() && entries.back().status == GIT_DELTA_DELETED &&
        entries.back().old_path == e.new_path) {
      StatEntry& prev = entries.back();
      prev.status = GIT_DELTA_MODIFIED;
      prev.new_path = e.new_path;
      prev.new_mode = e.new_mode;
      prev.binary = prev.binary || e.binary;
      prev.added += e.added;
      continue;
    }
    entries.push_back(e);
  }
  return entries;
}

std::string format_diffstat(const std::vector<StatEntry>& entries) {
  std::vector<std::string> names;
  size_t max_change = 0, max_len = 0;
  int number_width = 0, bin_width = 0;
  for (const auto& e : entries) {
    names.push_back(print_name(e));
    max_len = std::max(max_len, names.back().size());
    if (e.binary) {
      bin_width = std::max(bin_width, 14 + decimal_width(e.added) + decimal_width(e.deleted));
      number_width = 3;
      continue;
    }
    max_change = std::max(max_change, e.added + e.deleted);
  }
  int width = kStatWidth;
  number_width = std::max(number_width, decimal_width(max_change));
  if (width < 16 + 6 + number_width) width = 16 + 6 + number_width;
  int graph_width = int(max_change) + 4 > bin_width ? int(max_change) : bin_width - 4;
  int name_width = int(max_len);
  if (name_width + number_width + 6 + graph_width > width) {
    if (graph_width > width * 3 / 8 - number_width - 6) {
      graph_width = width * 3 / 8 - number_width - 6;
      if (graph_width < 6) graph_width = 6;
    }
    if (name_width > width - number_width - 6 - graph_width)
      name_width = width - number_width - 6 - graph_width;
    else
      graph_width = width - number_width - 6 - name_width;
  }

  std::string out;
  size_t adds = 0, dels = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const StatEntry& e = entries[i];
    std::string name = names[i];
    std::string prefix;
    int len = name_width;
    if (name_width < int(name.size())) {
      // Too long: keep the end of the name, from a slash when there is one.
      prefix = "...";
      len = std::max(0, len - 3);
      name = name.substr(name.size() - size_t(len));
      if (auto slash = name.find('/'); slash != std::string::npos) name = name.substr(slash);
    }
    int padding = std::max(0, len - int(name.size()));
    if (e.binary) {
      out += fmt::format(" {}{}{:{}} | {:>{}}", prefix, name, "", padding, "Bin", number_width);
      if (e.added || e.deleted) out += fmt::format(" {} -> {} bytes", e.deleted, e.added);
      out += "\n";
      continue;
    }
    adds += e.added;
    dels += e.deleted;
    size_t add = e.added, del = e.deleted;
    if (size_t(graph_width) <= max_change) {
      size_t total = scale_linear(add + del, graph_width, max_change);
      if (total < 2 && add && del) total = 2;
      if (add < del) {
        add = scale_linear(add, graph_width, max_change);
        del = total - add;
      } else {
        del = scale_linear(del, graph_width, max_change);
        add = total - del;
      }
    }
    out += fmt::format(" {}{}{:{}} | {:>{}}{}{}{}\n", prefix, name, "", padding, e.added + e.deleted, number_width,
                       e.added + e.deleted ? " " : "", std::string(add, '+'), std::string(del, '-'));
  }
  size_t files = entries.size();
  out += fmt::format(" {} file{} changed", files, files == 1 ? "" : "s");
  if (adds || !dels) out += fmt::format(", {} insertion{}(+)", adds, adds == 1 ? "" : "s");
  if (dels || !adds) out += fmt::format(", {} deletion{}(-)", dels, dels == 1 ? "" : "s");
  out += "\n";

  for (const auto& e : entries) {
    switch (e.status) {
      case GIT_DELTA_DELETED: out += fmt::format(" delete mode {:06o} {}\n", e.old_mode, quote_path(e.old_path)); break;
      case GIT_DELTA_ADDED: out += fmt::format(" create mode {:06o} {}\n", e.new_mode, quote_path(e.new_path)); break;
      case GIT_DELTA_RENAMED:
      case GIT_DELTA_COPIED:
        out += fmt::format(" {} {} ({}%)\n", e.status == GIT_DELTA_RENAMED ? "rename" : "copy",
                           rename_name(e.old_path, e.new_path), e.similarity);
        out += mode_change(e, false);
        break;
      default: out += mode_change(e, true);
    }
  }
  return out;
}

}  // namespace patchmgr::git
