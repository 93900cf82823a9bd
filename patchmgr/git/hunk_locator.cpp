#include "patchmgr/git/hunk_locator.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

namespace patchmgr::git {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    lines.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return lines;
}

namespace {

using Lines = std::vector<std::string>;

struct Shape {
  Lines pre, post;                // preimage (context and '-'), postimage (context and '+')
  int leading = 0, trailing = 0;  // context lines before the first and after the last change
};

Shape shape_of(const Hunk& h) {
  Shape s;
  for (const auto& l : h.lines) {
    if (l.origin != '+') s.pre.push_back(l.text);
    if (l.origin != '-') s.post.push_back(l.text);
  }
  while (s.leading < static_cast<int>(h.lines.size()) && h.lines[s.leading].origin == ' ') ++s.leading;
  while (s.trailing < static_cast<int>(h.lines.size()) && h.lines[h.lines.size() - 1 - s.trailing].origin == ' ')
    ++s.trailing;
  if (s.leading == static_cast<int>(h.lines.size())) s.trailing = 0;  // context only: no change to anchor
  return s;
}

// Whether `pattern`, less `skip_front` and `skip_back` lines at its ends, is in
// `file` with the pattern's first line at `pos`.
bool matches(const Lines& file, const Lines& pattern, int pos, int skip_front, int skip_back) {
  if (pos < 0 || pos + static_cast<int>(pattern.size()) > static_cast<int>(file.size())) return false;
  for (int i = skip_front; i < static_cast<int>(pattern.size()) - skip_back; ++i)
    if (file[pos + i] != pattern[i]) return false;
  return true;
}

// The nearest position at or after `min_pos` where `accept` holds, trying
// `expected`, then expected+1, expected-1, expected+2... (GNU patch's order).
int search(int expected, int min_pos, int max_pos, const std::function<bool(int)>& accept) {
  if (max_pos < min_pos) return -1;
  expected = std::clamp(expected, min_pos, max_pos);
  int reach = std::max(expected - min_pos, max_pos - expected);
  for (int d = 0; d <= reach; ++d) {
    if (expected + d <= max_pos && accept(expected + d)) return expected + d;
    if (d > 0 && expected - d >= min_pos && accept(expected - d)) return expected - d;
  }
  return -1;
}

}  // namespace

FileLocation locate_hunks(const std::string& text, const std::vector<Hunk>& hunks, int max_fuzz) {
  const Lines file = split_lines(text);
  const int n = static_cast<int>(file.size());
  FileLocation out;
  int last_offset = 0, min_pos = 0;
  std::vector<int> starts;  // where each placed hunk's preimage starts
  for (const Hunk& h : hunks) {
    Shape s = shape_of(h);
    const int size = static_cast<int>(s.pre.size());
    const int recorded = std::max(h.old_start - 1, 0);
    const int expected = recorded + last_offset;
    HunkPlacement at;

    // git apply: the whole preimage, anchored at the start of the file for a
    // hunk recorded at line 0 or 1, at its end for one without trailing context.
    const bool at_beginning = h.old_start <= 1;
    const bool at_end = s.trailing == 0;
    int pos = search(expected, min_pos, n - size, [&](int p) {
      if (at_beginning && p != 0) return false;
      if (at_end && p + size != n) return false;
      return matches(file, s.pre, p, 0, 0);
    });
    if (pos >= 0) {
      at.how = pos == recorded ? HunkPlacement::How::exact : HunkPlacement::How::offset;
    } else {
      // Already there: the postimage at its place (or near it).
      const int post_size = static_cast<int>(s.post.size());
      int up = post_size == 0
                   ? (n == 0 ? 0 : -1)
                   : search(expected, min_pos, n - post_size, [&](int p) { return matches(file, s.post, p, 0, 0); });
      if (up >= 0) {
        at.how = HunkPlacement::How::upstream;
        at.offset = up - recorded;
        at.line = up + 1;
        last_offset = at.offset;
        min_pos = up + post_size;
        out.hunks.push_back(at);
        starts.push_back(-1);
        continue;
      }
      // GNU patch's fuzz: drop context at the ends, the side with more context
      // first; a side with less context than the other must match the file's edge.
      const int context = std::max(s.leading, s.trailing);
      for (int fuzz = 0; fuzz <= std::min(max_fuzz, context) && pos < 0; ++fuzz) {
        int front = fuzz + s.leading - context, back = fuzz + s.trailing - context;
        if (front < 0 && back < 0) {
          if (size == n && min_pos == 0 && matches(file, s.pre, 0, 0, 0)) pos = 0;
        } else if (front < 0) {
          if (min_pos == 0 && matches(file, s.pre, 0, 0, std::min(back, s.trailing))) pos = 0;
        } else if (back < 0) {
          if (n - size >= min_pos && matches(file, s.pre, n - size, std::min(front, s.leading), 0)) pos = n - size;
        } else {
          front = std::min(front, s.leading), back = std::min(back, s.trailing);
          pos = search(expected, min_pos, n - size, [&](int p) { return matches(file, s.pre, p, front, back); });
        }
        if (pos >= 0) at.how = HunkPlacement::How::fuzz, at.fuzz = fuzz;
      }
    }
    if (pos < 0) {
      at.how = HunkPlacement::How::missing;
      out.hunks.push_back(at);
      starts.push_back(-1);
      continue;
    }
    at.offset = pos - recorded;
    at.line = pos + 1;
    last_offset = at.offset;
    min_pos = pos + size;
    out.hunks.push_back(at);
    starts.push_back(pos);
  }

  if (std::any_of(out.hunks.begin(), out.hunks.end(),
                  [](const auto& p) { return p.how == HunkPlacement::How::missing; }))
    return out;
  // Apply at the found places. Context lines keep the file's text: a fuzzed
  // context line may differ, and patch keeps the file's version.
  int cursor = 0;
  for (size_t k = 0; k < hunks.size(); ++k) {
    if (starts[k] < 0) continue;  // already upstream
    for (; cursor < starts[k]; ++cursor) out.result += file[cursor];
    for (const auto& l : hunks[k].lines) {
      if (l.origin == '+')
        out.result += l.text;
      else if (l.origin == ' ')
        out.result += file[cursor++];
      else
        ++cursor;
    }
  }
  for (; cursor < n; ++cursor) out.result += file[cursor];
  out.applied = true;
  return out;
}

}  // namespace patchmgr::git
