#include "patchmgr/git/patch_file.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

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
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return false;
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
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
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

}  // namespace

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
  // Headers, up to the first empty line; "Subject" may be folded over several lines.
  bool have_from = false, have_date = false, have_subject = false;
  int subject_line = 0;
  std::string current;
  for (; i < lines.size() && !lines[i].empty(); ++i) {
    const std::string& l = lines[i];
    if ((l[0] == ' ' || l[0] == '\t') && current == "Subject") {
      p.subject += " " + trim(l);
      continue;
    }
    auto colon = l.find(':');
    if (colon == std::string::npos) {
      p.problems.push_back({int(i + 1), fmt::format("expected a mail header (\"Name: value\"), found \"{}\"", l)});
      current.clear();
      continue;
    }
    current = l.substr(0, colon);
    std::string value = trim(l.substr(colon + 1));
    if (current == "From") {
      have_from = true;
      if (!parse_author(value, p.author_name, p.author_email))
        p.problems.push_back({int(i + 1), fmt::format("From: expected \"Name <email>\", found \"{}\"", value)});
    } else if (current == "Date") {
      have_date = true;
      if (!parse_rfc2822_date(value, p.date))
        p.problems.push_back(
            {int(i + 1), fmt::format("Date: expected an RFC 2822 date like \"Sat, 25 Jan 2026 10:00:00 +0100\", found \"{}\"", value)});
    } else if (current == "Subject") {
      have_subject = true;
      subject_line = int(i + 1);
      p.subject = value;
    }
  }
  if (!have_from) p.problems.push_back({1, "missing the \"From: Name <email>\" header (write patches with git format-patch)"});
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
    p.problems.push_back({int(body_start + 1),
                          "missing a description: say below the Subject what the patch changes and why"});
  // Skip the diffstat up to the diff.
  while (i < lines.size() && !starts_with(lines[i], "diff --git ")) ++i;
  if (i == lines.size()) {
    p.problems.push_back({int(lines.size()), "no diff found (expected a line starting with \"diff --git\")"});
    return p;
  }
  p.diff_line = int(i + 1);
  // The diff ends at the mail signature "-- " (git format-patch appends "-- \n<version>").
  size_t end = lines.size();
  for (size_t j = lines.size(); j-- > i;) {
    if (lines[j] == "-- ") {
      end = j;
      break;
    }
  }
  for (size_t j = i; j < end; ++j) p.diff_text += lines[j] + "\n";

  git_diff* d = nullptr;
  if (git_diff_from_buffer(&d, p.diff_text.data(), p.diff_text.size()) < 0) {
    const git_error* e = git_error_last();
    p.problems.push_back({p.diff_line, fmt::format("the diff does not parse: {}", e && e->message ? e->message : "unknown error")});
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
  check(git_diff_from_buffer(&d, patch.diff_text.data(), patch.diff_text.size()), "cannot parse the patch's diff");
  return Diff(d);
}

std::string format_patch(git_commit* commit) {
  git_repository* repo = git_commit_owner(commit);
  if (git_commit_parentcount(commit) != 1)
    throw Error(ExitCode::failed, fmt::format("commit {} is a merge or a root commit; a patch needs exactly one parent",
                                              to_hex(*git_commit_id(commit))));
  Commit parent = lookup_commit(repo, *git_commit_parent_id(commit, 0));
  Tree old_tree = commit_tree(parent.get()), new_tree = commit_tree(commit);
  Diff diff = diff_trees(repo, old_tree.get(), new_tree.get());

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

  git_email_create_options opts = GIT_EMAIL_CREATE_OPTIONS_INIT;
  opts.flags = GIT_EMAIL_CREATE_OMIT_NUMBERS;
  opts.diff_opts.flags |= GIT_DIFF_INDENT_HEURISTIC;
  git_oid zero;
  std::memset(&zero, 0, sizeof zero);  // like git format-patch --zero-commit: the file does not depend on the commit id
  git_buf buf = GIT_BUF_INIT;
  check(git_email_create_from_diff(&buf, diff.get(), 1, 1, &zero, summary.c_str(), body.c_str(), git_commit_author(commit), &opts),
        fmt::format("cannot format commit {} as a patch", to_hex(*git_commit_id(commit))));
  std::string out(buf.ptr, buf.size);
  git_buf_dispose(&buf);
  out += "-- \npatchmgr\n";
  return out;
}

}  // namespace patchmgr::git
