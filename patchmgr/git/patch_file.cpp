#include "patchmgr/git/patch_file.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "patchmgr/git/binary_patch.h"
#include "patchmgr/git/diff_check.h"
#include "patchmgr/git/diff_trees.h"
#include "patchmgr/git/diffstat.h"
#include "patchmgr/git/mail_header.h"
#include "patchmgr/git/quote.h"
#include "patchmgr/git/similarity.h"

namespace patchmgr::git {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// "Sat, 25 Jan 2026 10:00:00 +0100" (RFC 2822, as git writes it; weekday optional).
bool parse_rfc2822_date(const std::string& text, git_time& out) {
  static const std::array<const char*, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string s = trim(text);
  if (auto comma = s.find(','); comma != std::string::npos) s = trim(s.substr(comma + 1));
  std::istringstream in(s);
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  std::string mon, time, zone;
  if (!(in >> day >> mon >> year >> time >> zone)) return false;
  auto it = std::find(months.begin(), months.end(), mon);
  if (it == months.end()) return false;
  int month = int(it - months.begin()) + 1;
  if (std::sscanf(time.c_str(), "%d:%d:%d", &hh, &mm, &ss) != 3) return false;
  if (zone.size() != 5 || (zone[0] != '+' && zone[0] != '-')) return false;
  for (size_t i = 1; i < 5; ++i)
    if (!std::isdigit(static_cast<unsigned char>(zone[i]))) return false;
  int offset = std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(3, 2));
  if (zone[0] == '-') offset = -offset;
  // Every field in range, also below: "-99:00:00" would overflow the seconds below (found by fuzz_patch_file).
  if (day < 1 || day > 31 || year < 0 || year > 9999 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60)
    return false;
  // Days from civil (Howard Hinnant's algorithm), so no dependence on the local time zone.
  int y = year - (month <= 2);
  int era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = unsigned(y - era * 400);
  unsigned doy = unsigned((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1);
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  long long days = (long long)era * 146097 + (long long)doe - 719468;
  long long local = days * 86400 + hh * 3600 + mm * 60 + ss;
  out.time = local - (long long)offset * 60;
  out.offset = offset;
  out.sign = zone[0];
  return true;
}

// "A U Thor <a@example.org>"
bool parse_author(const std::string& text, std::string& name, std::string& email) {
  auto lt = text.rfind('<');
  auto gt = text.rfind('>');
  if (lt == std::string::npos || gt == std::string::npos || gt < lt) return false;
  name = trim(text.substr(0, lt));
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    // An RFC 822 quoted string: drop the quotes and the backslashes that escape '"' and '\\'.
    std::string unquoted;
    for (size_t k = 1; k + 1 < name.size(); ++k) {
      if (name[k] == '\\' && k + 2 < name.size()) ++k;
      unquoted += name[k];
    }
    name = unquoted;
  }
  email = trim(text.substr(lt + 1, gt - lt - 1));
  return !name.empty() && !email.empty();
}

// Drops "[PATCH]", "[PATCH 2/3]", "[PATCH v2 1/4]" and similar prefixes.
std::string strip_subject_prefix(std::string s) {
  s = trim(s);
  while (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) break;
    s = trim(s.substr(close + 1));
  }
  return s;
}

// A path in a header line, for libgit2: always in double quotes when it holds
// a space, as libgit2 1.5 ends an unquoted path at the first space.
std::string libgit2_path(const std::string& path) {
  std::string q = quote_path(path);
  return q.front() != '"' && q.find(' ') != std::string::npos ? "\"" + q + "\"" : q;
}

// A path as a header line writes it (quoted or not, maybe with git's tab after
// it), unquoted; nothing when it is malformed.
std::optional<std::string> header_path(std::string text) {
  if (!text.empty() && text.back() == '\t') text.pop_back();
  if (text.empty() || text.front() != '"') return text;
  size_t pos = 0;
  auto path = unquote_path(text, pos);
  if (!path || pos != text.size()) return std::nullopt;
  return path;
}

// The diff text rewritten into what libgit2 1.5 parses the way git apply
// reads the original:
// - a path with a space: git writes it unquoted ("diff --git a/x y b/x y",
//   "rename from x y", "+++ b/x y<TAB>"), libgit2 1.5 ends it at the space
//   ("trailing data", "lacks old / new paths"); it gets quotes here, the tab goes.
//   The two paths of the "diff --git" line come from the rename/copy or ---/+++
//   lines of the same file, or, when it has none (a mode change, an empty
//   file, a binary file), from the symmetry of "a/<path> b/<path>";
// - a new or deleted empty file has no ---/+++ lines, which libgit2 1.5
//   requires ("unexpected header line"); they are added.
std::string diff_text_for_libgit2(const std::string& text) {
  auto lines = split_lines(text);
  std::string out;
  for (size_t i = 0; i < lines.size();) {
    if (!starts_with(lines[i], "diff --git ")) {
      out += lines[i++] + "\n";
      continue;
    }
    size_t end = i + 1;  // the file's header lines: up to its hunks, binary data or the next file
    while (end < lines.size() && !starts_with(lines[end], "diff --git ") && !starts_with(lines[end], "@@ ") &&
           lines[end] != "GIT binary patch" && !starts_with(lines[end], "Binary files "))
      ++end;
    std::optional<std::string> old_path, new_path;
    bool added = false, deleted = false, has_names = false;
    for (size_t j = i + 1; j < end; ++j) {
      const std::string& h = lines[j];
      if (starts_with(h, "rename from ") || starts_with(h, "copy from "))
        old_path = header_path(h.substr(h.find(" from ") + 6));
      else if (starts_with(h, "rename to ") || starts_with(h, "copy to "))
        new_path = header_path(h.substr(h.find(" to ") + 4));
      else if (starts_with(h, "new file mode "))
        added = true;
      else if (starts_with(h, "deleted file mode "))
        deleted = true;
      else if (starts_with(h, "--- ") || starts_with(h, "+++ ")) {
        has_names = true;
        auto path = header_path(h.substr(4));
        if (path && path->size() > 2 && (*path)[1] == '/') (h[0] == '-' ? old_path : new_path) = path->substr(2);
      }
    }
    std::string rest = lines[i].substr(11);
    if ((!old_path || !new_path) && rest.find('"') == std::string::npos && rest.size() % 2 == 1) {
      // "a/<path> b/<path>": the two halves are the same path.
      size_t half = (rest.size() - 1) / 2;
      if (rest[half] == ' ' && starts_with(rest, "a/") && rest.compare(half + 1, 2, "b/") == 0 &&
          rest.compare(2, half - 2, rest, half + 3, half - 2) == 0) {
        if (!old_path) old_path = rest.substr(2, half - 2);
        if (!new_path) new_path = rest.substr(2, half - 2);
      }
    }
    if (!old_path) old_path = new_path;
    if (!new_path) new_path = old_path;
    bool spaced = (old_path && old_path->find(' ') != std::string::npos) ||
                  (new_path && new_path->find(' ') != std::string::npos);
    out += spaced && old_path
               ? "diff --git " + libgit2_path("a/" + *old_path) + " " + libgit2_path("b/" + *new_path) + "\n"
               : lines[i] + "\n";
    for (size_t j = i + 1; j < end; ++j) {
      const std::string& h = lines[j];
      std::string key;
      for (const char* k : {"rename from ", "rename to ", "copy from ", "copy to ", "--- ", "+++ "})
        if (starts_with(h, k)) key = k;
      auto path = key.empty() ? std::nullopt : header_path(h.substr(key.size()));
      out += path && (path->find(' ') != std::string::npos || h.back() == '\t') ? key + libgit2_path(*path) + "\n"
                                                                                : h + "\n";
    }
    bool no_content = end == lines.size() || starts_with(lines[end], "diff --git ");
    if (!has_names && no_content && old_path && (added || deleted))
      out += added ? "--- /dev/null\n+++ " + libgit2_path("b/" + *new_path) + "\n"
                   : "--- " + libgit2_path("a/" + *old_path) + "\n+++ /dev/null\n";
    i = end;
  }
  return out;
}

}  // namespace

bool same_patch(const PatchFile& a, const PatchFile& b) {
  return a.ok() && b.ok() && a.author_name == b.author_name && a.author_email == b.author_email &&
         a.date.time == b.date.time && a.date.offset == b.date.offset && a.subject == b.subject &&
         a.description == b.description && a.diff_text == b.diff_text;
}

std::string PatchFile::message() const {
  std::string msg = subject + "\n";
  if (!description.empty()) msg += "\n" + description + "\n";
  return msg;
}

PatchFile parse_patch_file(const std::string& text) {
  PatchFile p;
  auto lines = split_lines(text);
  size_t i = 0;
  if (i < lines.size() && starts_with(lines[i], "From ")) ++i;  // mbox separator line
  // Headers, up to the first empty line; any of them may be folded over several lines.
  struct Header {
    std::string name, value;
    int line;
  };
  std::vector<Header> headers;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    const std::string& l = lines[i];
    if ((l[0] == ' ' || l[0] == '\t') && !headers.empty()) {
      headers.back().value += l;  // RFC 2822 unfolding: the line break goes, the whitespace stays
      continue;
    }
    auto colon = l.find(':');
    if (colon == std::string::npos) {
      p.problems.push_back({int(i + 1), fmt::format("expected a mail header (\"Name: value\"), found \"{}\"", l)});
      continue;
    }
    headers.push_back({l.substr(0, colon), trim(l.substr(colon + 1)), int(i + 1)});
  }
  bool have_from = false, have_date = false, have_subject = false;
  int subject_line = 0;
  for (const auto& h : headers) {
    std::string value, error;
    if (h.name == "From" || h.name == "Subject") {
      if (!decode_header(h.value, value, error)) {
        p.problems.push_back({h.line, fmt::format("{}: {}", h.name, error)});
        continue;
      }
    }
    if (h.name == "From") {
      have_from = true;
      if (!parse_author(value, p.author_name, p.author_email))
        p.problems.push_back({h.line, fmt::format("From: expected \"Name <email>\", found \"{}\"", value)});
    } else if (h.name == "Date") {
      have_date = true;
      if (!parse_rfc2822_date(h.value, p.date))
        p.problems.push_back(
            {h.line,
             fmt::format("Date: expected an RFC 2822 date like \"Sat, 25 Jan 2026 10:00:00 +0100\", found \"{}\"",
                         h.value)});
    } else if (h.name == "Subject") {
      have_subject = true;
      subject_line = h.line;
      p.subject = value;
    } else if (h.name == "Content-Transfer-Encoding" && h.value != "8bit" && h.value != "7bit") {
      p.problems.push_back(
          {h.line, fmt::format("Content-Transfer-Encoding: \"{}\" is not supported, only 8bit and 7bit (write "
                               "the patch with git format-patch, not a mail client)",
                               h.value)});
    }
  }
  if (!have_from)
    p.problems.push_back({1, "missing the \"From: Name <email>\" header (write patches with git format-patch)"});
  if (!have_date) p.problems.push_back({1, "missing the \"Date:\" header (write patches with git format-patch)"});
  p.subject = strip_subject_prefix(p.subject);
  if (!have_subject || p.subject.empty())
    p.problems.push_back({subject_line ? subject_line : 1, "missing a Subject: every patch needs a one-line summary"});

  // Description: everything up to the "---" separator or the diff itself.
  std::string description;
  size_t body_start = i;
  for (; i < lines.size(); ++i) {
    if (lines[i] == "---" || starts_with(lines[i], "diff --git ")) break;
    description += lines[i] + "\n";
  }
  p.description = trim(description);
  if (p.description.empty())
    p.problems.push_back(
        {int(body_start + 1), "missing a description: say below the Subject what the patch changes and why"});
  // Skip the diffstat up to the diff.
  while (i < lines.size() && !starts_with(lines[i], "diff --git ")) ++i;
  if (i == lines.size()) {
    p.problems.push_back({int(lines.size()), "no diff found (expected a line starting with \"diff --git\")"});
    return p;
  }
  p.diff_line = int(i + 1);
  // The diff ends where its last hunk (or binary patch) ends: what follows is
  // the mail signature ("-- " and git's version, when git format-patch wrote one).
  DiffCheck check = check_diff(lines, i);
  for (const auto& problem : check.problems) p.problems.push_back({int(problem.index + 1), problem.message});
  for (size_t j = i; j < check.end; ++j) p.diff_text += lines[j] + "\n";
  if (!check.problems.empty()) return p;

  git_diff* d = nullptr;
  std::string for_libgit2 = diff_text_for_libgit2(p.diff_text);
  if (git_diff_from_buffer(&d, for_libgit2.data(), for_libgit2.size()) < 0) {
    const git_error* e = git_error_last();
    p.problems.push_back(
        {p.diff_line, fmt::format("the diff does not parse: {}", e && e->message ? e->message : "unknown error")});
    return p;
  }
  Diff diff(d);
  std::set<std::string> files;
  for (size_t k = 0; k < git_diff_num_deltas(d); ++k) {
    const git_diff_delta* delta = git_diff_get_delta(d, k);
    if (delta->old_file.path && delta->status != GIT_DELTA_ADDED) files.insert(delta->old_file.path);
    if (delta->new_file.path && delta->status != GIT_DELTA_DELETED) files.insert(delta->new_file.path);
  }
  if (files.empty()) p.problems.push_back({p.diff_line, "the diff changes no file"});
  p.touched_files.assign(files.begin(), files.end());
  return p;
}

Diff parse_diff(const PatchFile& patch) {
  git_diff* d = nullptr;
  std::string text = diff_text_for_libgit2(patch.diff_text);
  check(git_diff_from_buffer(&d, text.data(), text.size()), "cannot parse the patch's diff");
  return Diff(d);
}

namespace {

// "Thu, 1 Jan 2026 01:06:00 +0100": git's RFC 2822 date (day not zero-padded).
std::string rfc2822_date(const git_time& when) {
  static const char* days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // 1970-01-01 was a Thursday
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  long long local = (long long)when.time + (long long)when.offset * 60;
  long long days_since = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  long long secs = local - days_since * 86400;
  // Civil from days (Howard Hinnant's algorithm).
  long long z = days_since + 719468;
  long long era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = unsigned(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long y = (long long)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1;
  unsigned m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  int off = when.offset < 0 ? -when.offset : when.offset;
  char sign = when.offset < 0 ? '-' : '+';
  return fmt::format("{}, {} {} {} {:02}:{:02}:{:02} {}{:02}{:02}", days[((days_since % 7) + 7) % 7], d, months[m - 1],
                     y, secs / 3600, secs / 60 % 60, secs % 60, sign, off / 60, off % 60);
}

std::string abbrev(const git_oid& oid, bool full) { return full ? to_hex(oid) : to_hex(oid).substr(0, 7); }

// The header git's builtin_diff() and fill_metainfo() write for one file pair.
std::string diff_header(git_repository* repo, const git_diff_delta& d, bool binary, bool has_hunks) {
  std::string a = d.old_file.path, b = d.new_file.path;
  std::string out = fmt::format("diff --git {} {}\n", quote_path("a/" + a), quote_path("b/" + b));
  bool added = d.status == GIT_DELTA_ADDED, deleted = d.status == GIT_DELTA_DELETED;
  if (added) {
    out += fmt::format("new file mode {:06o}\n", d.new_file.mode);
  } else if (deleted) {
    out += fmt::format("deleted file mode {:06o}\n", d.old_file.mode);
  } else if (d.old_file.mode != d.new_file.mode) {
    out += fmt::format("old mode {:06o}\nnew mode {:06o}\n", d.old_file.mode, d.new_file.mode);
  }
  if (d.status == GIT_DELTA_RENAMED || d.status == GIT_DELTA_COPIED) {
    const char* what = d.status == GIT_DELTA_RENAMED ? "rename" : "copy";
    out += fmt::format("similarity index {}%\n{} from {}\n{} to {}\n", similarity_index(repo, d), what, quote_path(a),
                       what, quote_path(b));
  }
  if (!git_oid_equal(&d.old_file.id, &d.new_file.id)) {
    out += fmt::format("index {}..{}", abbrev(d.old_file.id, binary), abbrev(d.new_file.id, binary));
    if (!added && !deleted && d.old_file.mode == d.new_file.mode) out += fmt::format(" {:06o}", d.new_file.mode);
    out += "\n";
  }
  if (has_hunks) {
    // git ends a name that holds a space with a tab, so that a reader can tell where it ends.
    out += fmt::format("--- {}{}\n", added ? "/dev/null" : quote_path("a/" + a),
                       !added && a.find(' ') != std::string::npos ? "\t" : "");
    out += fmt::format("+++ {}{}\n", deleted ? "/dev/null" : quote_path("b/" + b),
                       !deleted && b.find(' ') != std::string::npos ? "\t" : "");
  }
  return out;
}

struct BinaryCollector {
  size_t index = 0;
  std::map<size_t, std::string> sections;  // delta index -> "GIT binary patch" section
};

int on_file(const git_diff_delta*, float, void* payload) {
  ++static_cast<BinaryCollector*>(payload)->index;
  return 0;
}

int on_binary(const git_diff_delta*, const git_diff_binary* binary, void* payload) {
  auto* c = static_cast<BinaryCollector*>(payload);
  if (binary->contains_data) c->sections[c->index - 1] = format_binary_patch(*binary);
  return 0;
}

// The diff of one commit as `git format-patch --binary` writes it. libgit2
// makes the hunks; the file headers and binary sections are written here,
// because libgit2 1.5 writes them differently from git (see docs/cli.md, export).
std::string format_diff(git_repository* repo, git_diff* diff) {
  BinaryCollector binaries;
  check(git_diff_foreach(diff, on_file, on_binary, nullptr, nullptr, &binaries),
        "cannot read the binary changes of the diff");
  std::string out;
  for (size_t i = 0; i < git_diff_num_deltas(diff); ++i) {
    git_patch* p = nullptr;
    check(git_patch_from_diff(&p, diff, i), "cannot format the diff");
    std::unique_ptr<git_patch, decltype(&git_patch_free)> patch(p, git_patch_free);
    const git_diff_delta* d = git_patch_get_delta(p);
    if (d->old_file.mode == GIT_FILEMODE_COMMIT || d->new_file.mode == GIT_FILEMODE_COMMIT)
      throw Error(ExitCode::failed,
                  fmt::format("{}: a submodule pointer change cannot be written as a patch file (patchmgr does "
                              "not apply submodule changes); drop it from the commit",
                              d->new_file.path));
    bool binary = (d->flags & GIT_DIFF_FLAG_BINARY) != 0;
    std::string hunks;
    if (!binary && git_patch_num_hunks(p) > 0) {
      git_buf buf = GIT_BUF_INIT;
      check(git_patch_to_buf(&buf, p), "cannot format the diff");
      std::string text(buf.ptr, buf.size);
      git_buf_dispose(&buf);
      size_t at = text.find("\n@@ -", text.find("\n+++ "));
      if (at == std::string::npos)
        throw Error(ExitCode::failed, fmt::format("{}: libgit2 wrote a diff without hunks", d->new_file.path));
      hunks = text.substr(at + 1);
    }
    out += diff_header(repo, *d, binary, !hunks.empty());
    if (binary && !git_oid_equal(&d->old_file.id, &d->new_file.id)) {  // a pure rename or mode change has no data
      auto it = binaries.sections.find(i);
      if (it == binaries.sections.end())
        throw Error(ExitCode::failed, fmt::format("{}: libgit2 gave no data for the binary change", d->new_file.path));
      out += it->second;
    }
    out += hunks;
  }
  return out;
}

}  // namespace

std::string format_patch(git_commit* commit) {
  git_repository* repo = git_commit_owner(commit);
  if (git_commit_parentcount(commit) != 1)
    throw Error(ExitCode::failed, fmt::format("commit {} is a merge or a root commit; a patch needs exactly one parent",
                                              to_hex(*git_commit_id(commit))));
  Commit parent = lookup_commit(repo, *git_commit_parent_id(commit, 0));
  Tree old_tree = commit_tree(parent.get()), new_tree = commit_tree(commit);
  Diff diff = diff_trees(repo, old_tree.get(), new_tree.get(), GIT_DIFF_SHOW_BINARY);

  // The description: the message after the subject, without patchmgr's trailers.
  std::string message = git_commit_message(commit) ? git_commit_message(commit) : "";
  std::string summary = git_commit_summary(commit) ? git_commit_summary(commit) : "";
  std::string body;
  auto lines = split_lines(message);
  size_t first_body = 1;
  while (first_body < lines.size() && lines[first_body - 1].find_first_not_of(" \t") != std::string::npos) ++first_body;
  for (size_t i = first_body; i < lines.size(); ++i) {
    if (starts_with(lines[i], "Patchmgr-Patch: ") || starts_with(lines[i], "Patchmgr-Patch-Id: ")) continue;
    body += lines[i] + "\n";
  }
  body = trim(body);
  if (!body.empty()) body += "\n";

  const git_signature* author = git_commit_author(commit);
  // --zero-commit: the file does not depend on the commit id.
  std::string out = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n";
  out += from_header(author->name, author->email);
  out += "Date: " + rfc2822_date(author->when) + "\n";
  out += subject_header(summary);
  if (needs_8bit_headers(summary + body))
    out += "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n";
  out += "\n" + body + "---\n";
  out += format_diffstat(stat_entries(repo, diff.get())) + "\n";
  out += format_diff(repo, diff.get());
  return out;
}

}  // namespace patchmgr::git
