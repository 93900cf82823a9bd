#include "patchmgr/git/diff_check.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include <fmt/format.h>

#include "patchmgr/git/quote.h"

namespace patchmgr::git {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

const std::array<int, 256> kBase85Value = [] {
  std::array<int, 256> v{};
  v.fill(-1);
  const char* chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
  for (int i = 0; chars[i]; ++i) v[static_cast<unsigned char>(chars[i])] = i;
  return v;
}();

// The extended header lines git writes between "diff --git" and the hunks.
bool is_extended_header(const std::string& l) {
  for (const char* p : {"old mode ", "new mode ", "deleted file mode ", "new file mode ", "similarity index ",
                        "dissimilarity index ", "rename from ", "rename to ", "copy from ", "copy to ", "index "})
    if (starts_with(l, p)) return true;
  return false;
}

class Checker {
 public:
  Checker(const std::vector<std::string>& lines, DiffCheck& out) : lines_(lines), out_(out) {}

  size_t run(size_t i) {
    while (i < lines_.size() && starts_with(lines_[i], "diff --git ")) {
      file_ = lines_[i].substr(11);
      if (!paths_quoted_well(i, file_, true)) return i;
      i = file(i + 1);
      if (failed_) return i;
    }
    return i;
  }

 private:
  void problem(size_t index, std::string message) {
    out_.problems.push_back({index, std::move(message)});
    failed_ = true;
  }

  // A quoted path must be one git could have written: closed, with known
  // escapes. `two` for the "diff --git" line, which holds two paths.
  bool paths_quoted_well(size_t i, const std::string& text, bool two) {
    size_t pos = 0;
    for (int n = 0; n < (two ? 2 : 1); ++n) {
      if (n == 1) {
        // The second path starts after the first's closing quote, or at the last " \"" when only it is quoted.
        if (pos == 0) {
          size_t q = text.rfind(" \"");
          if (q == std::string::npos) return true;
          pos = q + 1;
        } else if (pos < text.size() && text[pos] == ' ') {
          ++pos;
        }
      }
      if (pos >= text.size() || text[pos] != '"') continue;
      size_t start = pos;
      if (!unquote_path(text, pos)) {
        problem(i, fmt::format(
                       "malformed quoted path {}: git writes a path with special characters in double quotes with C "
                       "escapes (\"a/na\\303\\257ve.txt\"), closed, with only \\t \\n \\\" \\\\ and octal escapes; "
                       "fix the quoting or write the patch with git format-patch",
                       text.substr(start)));
        return false;
      }
      if (!two && pos != text.size() && text.substr(pos) != "\t") {
        problem(i, fmt::format("unexpected text after the quoted path: \"{}\"", text.substr(pos)));
        return false;
      }
    }
    return true;
  }

  size_t file(size_t i) {
    std::vector<std::string> seen;  // the extended header lines so far, by key ("rename to ")
    for (; i < lines_.size(); ++i) {
      const std::string& l = lines_[i];
      for (const char* prefix : {"rename from ", "rename to ", "copy from ", "copy to ", "--- ", "+++ "})
        if (starts_with(l, prefix) && !paths_quoted_well(i, l.substr(std::string(prefix).size()), false)) return i;
      if (starts_with(l, "--- ")) {
        if (i + 1 >= lines_.size() || !starts_with(lines_[i + 1], "+++ ")) {
          problem(i, fmt::format("{}: a \"--- \" line without the \"+++ \" line after it", file_));
          return i;
        }
        if (!paths_quoted_well(i + 1, lines_[i + 1].substr(4), false)) return i + 1;
        return hunks(i + 2);
      }
      if (l == "GIT binary patch") return binary(i + 1);
      if (starts_with(l, "Binary files ")) {
        problem(
            i, fmt::format("{}: the binary change has no data (\"{}\"); write the patch with git format-patch --binary "
                           "(patchmgr export does), or the change would be lost",
                           file_, l));
        return i;
      }
      if (!is_extended_header(l)) break;
      // git writes each once; a second one is a damaged file (and libgit2 1.5 would keep one silently).
      std::string key = l.substr(0, l.find(' ', l.find(' ') + 1) + 1);
      if (starts_with(l, "index ")) key = "index ";
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        problem(i, fmt::format("{}: a second \"{}\" line in the header of one file; the file is damaged (two headers "
                               "merged?): each file of a diff starts with its own \"diff --git\" line",
                               file_, key.substr(0, key.size() - 1)));
        return i;
      }
      seen.push_back(key);
      auto mode_at = l.rfind(' ');
      if (l.substr(mode_at + 1) == "160000") {
        problem(i,
                fmt::format("{}: a submodule pointer change (mode 160000): patchmgr does not apply submodule changes; "
                            "drop it from the patch and pin the submodule in its own manifest",
                            file_));
        return i;
      }
    }
    return i;
  }

  // "@@ -a[,b] +c[,d] @@": the old and new line counts.
  bool hunk_counts(const std::string& l, long& old_count, long& new_count) {
    long a = 0, c = 0;
    old_count = new_count = 1;
    int used = 0;
    if (std::sscanf(l.c_str(), "@@ -%ld,%ld +%ld,%ld @@%n", &a, &old_count, &c, &new_count, &used) == 4 && used)
      return true;
    old_count = 1, used = 0;
    if (std::sscanf(l.c_str(), "@@ -%ld +%ld,%ld @@%n", &a, &c, &new_count, &used) == 3 && used) return true;
    new_count = 1, used = 0;
    if (std::sscanf(l.c_str(), "@@ -%ld,%ld +%ld @@%n", &a, &old_count, &c, &used) == 3 && used) return true;
    old_count = new_count = 1, used = 0;
    return std::sscanf(l.c_str(), "@@ -%ld +%ld @@%n", &a, &c, &used) == 2 && used;
  }

  size_t hunks(size_t i) {
    if (i >= lines_.size() || !starts_with(lines_[i], "@@ ")) {
      problem(i < lines_.size() ? i : lines_.size() - 1,
              fmt::format("{}: expected a hunk (\"@@ -a,b +c,d @@\") after the \"+++ \" line", file_));
      return i;
    }
    while (i < lines_.size() && starts_with(lines_[i], "@@ ")) {
      size_t header = i;
      long old_left = 0, new_left = 0;
      if (!hunk_counts(lines_[i], old_left, new_left) || old_left < 0 || new_left < 0) {
        problem(i, fmt::format("{}: malformed hunk header \"{}\"", file_, lines_[i]));
        return i;
      }
      for (++i; old_left > 0 || new_left > 0; ++i) {
        if (i >= lines_.size()) {
          problem(lines_.size() - 1,
                  fmt::format("{}: the hunk at line {} ends early: {} old and {} new lines are missing "
                              "(the patch is truncated, or the counts in \"{}\" are wrong)",
                              file_, header + 1, old_left, new_left, lines_[header]));
          return i;
        }
        const std::string& l = lines_[i];
        char c = l.empty() ? ' ' : l[0];  // git apply reads an empty line as an empty context line
        if (c == ' ')
          --old_left, --new_left;
        else if (c == '-')
          --old_left;
        else if (c == '+')
          --new_left;
        else if (c != '\\') {
          problem(i,
                  fmt::format("{}: the hunk at line {} ends early: expected {} more old and {} more new lines, found "
                              "\"{}\" (fix the counts in \"{}\")",
                              file_, header + 1, old_left, new_left, l, lines_[header]));
          return i;
        }
        if (old_left < 0 || new_left < 0) {
          problem(i, fmt::format("{}: the hunk at line {} has more lines than its header \"{}\" counts", file_,
                                 header + 1, lines_[header]));
          return i;
        }
      }
      if (i < lines_.size() && starts_with(lines_[i], "\\ ")) ++i;  // "\ No newline at end of file"
    }
    return i;
  }

  size_t binary(size_t i) {
    for (int block = 0; block < 2; ++block) {
      if (i >= lines_.size() || (!starts_with(lines_[i], "literal ") && !starts_with(lines_[i], "delta "))) {
        if (block == 1) return i;  // the reverse block is optional
        problem(std::min(i, lines_.size() - 1),
                fmt::format("{}: the binary patch is truncated: expected \"literal N\" or "
                            "\"delta N\" after \"GIT binary patch\"",
                            file_));
        return i;
      }
      size_t head = i;
      const std::string& l = lines_[i];
      unsigned long long size = 0;
      int used = 0;
      const char* fmt_ = starts_with(l, "literal ") ? "literal %llu%n" : "delta %llu%n";
      if (std::sscanf(l.c_str(), fmt_, &size, &used) != 1 || size_t(used) != l.size() || size > (1ull << 31)) {
        problem(i, fmt::format("{}: malformed binary patch size \"{}\"", file_, l));
        return i;
      }
      std::string data;
      for (++i; i < lines_.size() && !lines_[i].empty(); ++i) {
        std::string error;
        if (!decode_base85_line(lines_[i], data, error)) {
          problem(i,
                  fmt::format("{}: corrupt binary patch data: {}; the file was damaged (re-export the patch or write "
                              "it again with git format-patch --binary)",
                              file_, error));
          return i;
        }
      }
      if (i >= lines_.size()) {
        problem(lines_.size() - 1,
                fmt::format("{}: the binary patch is truncated: the data that starts at line {} does not "
                            "end with an empty line",
                            file_, head + 2));
        return i;
      }
      // The data must inflate to exactly the size the block states.
      std::string inflated(size_t(size), '\0');
      uLongf out_len = uLongf(size);
      char dummy = 0;
      int rc = uncompress(reinterpret_cast<Bytef*>(size ? inflated.data() : &dummy), &out_len,
                          reinterpret_cast<const Bytef*>(data.data()), uLong(data.size()));
      if (rc != Z_OK || out_len != size) {
        problem(head,
                fmt::format("{}: the binary patch data after \"{}\" does not inflate to {} bytes (zlib: {}); the patch "
                            "is truncated or corrupt (re-export it, or write it again with git format-patch --binary)",
                            file_, l, size, rc == Z_OK ? "size mismatch" : zError(rc)));
        return i;
      }
      ++i;  // the empty line
    }
    return i;
  }

  const std::vector<std::string>& lines_;
  DiffCheck& out_;
  std::string file_;
  bool failed_ = false;
};

}  // namespace

bool decode_base85_line(const std::string& line, std::string& out, std::string& error) {
  if (line.empty()) {
    error = "an empty data line";
    return false;
  }
  char c = line[0];
  size_t n = c >= 'A' && c <= 'Z' ? size_t(c - 'A' + 1) : c >= 'a' && c <= 'z' ? size_t(c - 'a' + 27) : 0;
  if (!n) {
    error = fmt::format("a data line must start with its length ('A'-'Z', 'a'-'z'), found '{}'", c);
    return false;
  }
  size_t groups = (n + 3) / 4;
  if (line.size() != 1 + groups * 5) {
    error = fmt::format("a line of {} bytes has {} base85 characters, expected {}", n, line.size() - 1, groups * 5);
    return false;
  }
  for (size_t g = 0; g < groups; ++g) {
    unsigned long long acc = 0;
    for (size_t k = 0; k < 5; ++k) {
      int v = kBase85Value[static_cast<unsigned char>(line[1 + g * 5 + k])];
      if (v < 0) {
        error = fmt::format("'{}' is not a base85 character", line[1 + g * 5 + k]);
        return false;
      }
      acc = acc * 85 + unsigned(v);
    }
    if (acc > 0xffffffffull) {
      error = "a base85 group overflows 32 bits";
      return false;
    }
    for (size_t k = 0; k < 4; ++k)
      if (g * 4 + k < n) out += char((acc >> (24 - 8 * k)) & 0xff);
  }
  return true;
}

DiffCheck check_diff(const std::vector<std::string>& lines, size_t first) {
  DiffCheck out;
  Checker checker(lines, out);
  size_t i = checker.run(first);
  out.end = i;
  if (!out.problems.empty()) return out;
  // After the diff: the mail signature ("-- " from git, "--" from libgit2), or nothing.
  bool rest_blank = true;
  for (size_t j = i; j < lines.size(); ++j)
    if (!lines[j].empty()) rest_blank = false;
  if (i < lines.size() && !rest_blank && lines[i] != "-- " && lines[i] != "--")
    out.problems.push_back(
        {i, fmt::format("unexpected text after the diff: \"{}\" (the line counts of the hunk before it do not "
                        "match its lines, or text was added; fix the counts, or end the diff with a \"-- \" "
                        "signature line)",
                        lines[i])});
  return out;
}

}  // namespace patchmgr::git
