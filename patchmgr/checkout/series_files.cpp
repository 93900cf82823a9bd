// The write happens in three steps:
//   1. every new text (patch files, manifest) is computed in memory, and the
//      component is staged in a temporary project (manifests/, patches/<name>/)
//      that load_manifest reads like any command would;
//   2. each file is written to a temporary name beside its destination and synced;
//   3. the old files are kept as hard links, the new ones renamed into place
//      (patch files first, the manifest last), the manifest loaded again, and
//      the links removed. A failure in 2 or 3 puts the old files back.
#include "patchmgr/checkout/series_files.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "patchmgr/checkout/journal.h"
#include "patchmgr/git/patch_file.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/sha256.h"

namespace patchmgr {

void test_fail_point(const std::string& point) {
  const char* at = std::getenv("PATCHMGR_TEST_FAIL_AT");
  if (at && point == at)
    throw Error(ExitCode::failed, fmt::format("injected failure at {} (PATCHMGR_TEST_FAIL_AT)", point));
}

namespace {

// The manifest as lines, edited by original line number (1-based): a value
// replaced, a line removed, text inserted after a line. Line numbers stay those
// load_manifest reported, whatever was edited before.
class ManifestLines {
 public:
  explicit ManifestLines(const std::string& text) {
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      lines_.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    removed_.assign(lines_.size(), false);
  }
  size_t size() const { return lines_.size(); }
  const std::string& at(int line) const { return lines_.at(size_t(line - 1)); }

  // Replaces the value of `key: value  # comment` on `line`, keeping the comment.
  void set_value(int line, const std::string& key, const std::string& value) {
    std::string& l = lines_.at(size_t(line - 1));
    size_t k = l.find(key + ":");
    if (k == std::string::npos) throw Error(ExitCode::failed, fmt::format("line {} has no {}: to rewrite", line, key));
    size_t v = k + key.size() + 1;
    size_t comment = l.find(" #", v);
    std::string tail = comment == std::string::npos ? "" : l.substr(comment);
    l = l.substr(0, v) + " " + value + tail;
  }
  void replace_first(int line, const std::regex& pattern, const std::string& value) {
    std::string& l = lines_.at(size_t(line - 1));
    l = std::regex_replace(l, pattern, value, std::regex_constants::format_first_only);
  }
  void remove(int line) { removed_.at(size_t(line - 1)) = true; }
  void insert_after(int line, const std::string& text) { inserted_[line] += text; }

  std::string text() const {
    std::string out = inserted_.count(0) ? inserted_.at(0) : "";
    for (size_t i = 0; i < lines_.size(); ++i) {
      if (!removed_[i]) out += lines_[i] + (i + 1 < lines_.size() ? "\n" : "");
      if (auto it = inserted_.find(int(i + 1)); it != inserted_.end()) {
        if (i + 1 == lines_.size() && !removed_[i]) out += "\n";
        out += it->second;
      }
    }
    return out;
  }

 private:
  std::vector<std::string> lines_;
  std::vector<bool> removed_;
  std::map<int, std::string> inserted_;
};

size_t indentation(const std::string& line) {
  size_t i = line.find_first_not_of(' ');
  return i == std::string::npos ? line.size() : i;
}

// A YAML scalar that reads back as `s`: plain when that is safe, else double-quoted.
std::string yaml_scalar(const std::string& s) {
  static const std::regex kPlain("^[A-Za-z0-9_./][A-Za-z0-9_./ ()+,-]*$");
  if (std::regex_match(s, kPlain) && s.back() != ' ') return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\\\"") : ch == '\\' ? std::string("\\\\") : std::string(1, ch);
  return q + "\"";
}

std::string flow_list(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const auto& i : items) quoted.push_back(yaml_scalar(i));
  return fmt::format("[{}]", fmt::join(quoted, ", "));
}

// Rewrites `files:` of `p` as a flow list; a block list's item lines go.
void set_files(ManifestLines& lines, const Patch& p, const std::vector<std::string>& files) {
  auto it = p.key_lines.find("files");
  if (it == p.key_lines.end()) return;
  int line = it->second;
  size_t key_indent = indentation(lines.at(line));
  for (int l = line + 1; l <= int(lines.size()); ++l) {
    const std::string& text = lines.at(l);
    size_t ind = indentation(text);
    bool item = ind < text.size() && text.compare(ind, 2, "- ") == 0 && ind >= key_indent;
    if (!item || (ind == key_indent && text.compare(ind, 2, "- ") != 0)) break;
    lines.remove(l);
  }
  lines.set_value(line, "files", flow_list(files));
}

// The last line of the patch entry that starts at `entry_line`: the lines
// indented at least as deep as its keys, comments at that depth included.
int entry_end(const ManifestLines& lines, int entry_line) {
  const std::string& first = lines.at(entry_line);
  size_t dash = first.find("- ");
  size_t key_col = dash == std::string::npos ? indentation(first) : first.find_first_not_of(' ', dash + 1);
  int end = entry_line;
  for (int l = entry_line + 1; l <= int(lines.size()); ++l) {
    const std::string& text = lines.at(l);
    if (text.find_first_not_of(' ') == std::string::npos) continue;
    if (indentation(text) < key_col) break;
    end = l;
  }
  return end;
}

std::string new_entry(const NewPatch& n, const std::string& dash_pad, const std::string& key_pad) {
  std::string e;
  e += fmt::format("{}- id: {}\n", dash_pad, n.id);
  e += fmt::format("{}file: {}\n", key_pad, n.file_name);
  e += fmt::format("{}sha256: {}\n", key_pad, sha256_hex(n.text));
  e += fmt::format("{}title: {}\n", key_pad, yaml_scalar(n.title));
  e += fmt::format("{}purpose: \"{}: why this patch exists: what it fixes or speeds up, and where\"\n", key_pad,
                   kPlaceholder);
  e += fmt::format("{}status: implemented\n", key_pad);
  e += fmt::format(
      "{}upstream_status: {}   # pending, submitted, accepted, backport, denied or inappropriate (docs/manifest.md)\n",
      key_pad, kPlaceholder);
  e += fmt::format("{}since: {}\n", key_pad, n.since);
  e += fmt::format("{}files: {}\n", key_pad, flow_list(n.files));
  return e;
}

// Appends the new entries after the last patch entry (or into an empty `patches:`).
void add_entries(ManifestLines& lines, const Manifest& m, const std::vector<NewPatch>& added) {
  if (added.empty()) return;
  std::string dash_pad = "  ", key_pad = "    ";
  int after = 0;
  if (!m.patches.empty()) {
    int start = m.patches.back().line;
    const std::string& first = lines.at(start);
    size_t dash = first.find("- ");
    if (dash != std::string::npos) {
      dash_pad = std::string(dash, ' ');
      key_pad = std::string(first.find_first_not_of(' ', dash + 1), ' ');
    }
    after = entry_end(lines, start);
  } else {
    static const std::regex kEmpty("^patches:\\s*(\\[\\])?\\s*(#.*)?$");
    for (int l = 1; l <= int(lines.size()) && !after; ++l) {
      std::smatch match;
      if (!std::regex_match(lines.at(l), match, kEmpty)) continue;
      if (match[1].matched) lines.set_value(l, "patches", "");
      after = l;
      for (int k = l + 1; k <= int(lines.size()); ++k) {
        std::string t = lines.at(k);
        if (t.find_first_not_of(' ') == std::string::npos) continue;
        if (t.substr(indentation(t)) == "[]") lines.remove(k), after = k;
        break;
      }
    }
    if (!after)
      throw Error(ExitCode::failed,
                  fmt::format("{}: cannot find the patches: list to add to", m.path.filename().string()));
  }
  std::string text;
  for (const auto& n : added) text += new_entry(n, dash_pad, key_pad);
  lines.insert_after(after, text);
}

void mark_upstreamed(ManifestLines& lines, const UpstreamedPatch& u) {
  const Patch& p = *u.patch;
  int status_line = p.key_lines.at("status");
  lines.set_value(status_line, "status", "upstreamed");
  if (auto e = p.key_lines.find("enabled"); e != p.key_lines.end()) lines.remove(e->second);
  std::string pad(indentation(lines.at(status_line)), ' ');
  if (status_line == p.line) pad = std::string(lines.at(status_line).find("status"), ' ');
  std::string inserted;
  auto set_or_add = [&](const char* key, const std::string& value) {
    if (auto k = p.key_lines.find(key); k != p.key_lines.end())
      lines.set_value(k->second, key, value);
    else
      inserted += fmt::format("{}{}: {}\n", pad, key, value);
  };
  set_or_add("upstream_status", "accepted");
  set_or_add("upstream_commit", u.commit);
  if (!inserted.empty()) lines.insert_after(status_line, inserted);
}

// A temporary project holding the staged component; removed on destruction.
class Stage {
 public:
  Stage() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "patchmgr-stage-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw Error(ExitCode::failed, fmt::format("cannot make a staging directory in {}",
                                                std::filesystem::temp_directory_path().string()));
    dir_ = tmpl;
  }
  ~Stage() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

std::filesystem::path side_name(const std::filesystem::path& path, const char* what) {
  std::filesystem::path p = path;
  p += fmt::format(".patchmgr-{}-{}", what, ::getpid());
  return p;
}

}  // namespace

SeriesWrite write_series_files(const Context& ctx, const Manifest& m, const SeriesEdit& edit) {
  auto& out = *ctx.out;
  ManifestLines lines(read_file(m.path));
  std::vector<std::pair<std::filesystem::path, std::string>> writes;  // patch files, then the manifest
  std::vector<std::string> report;

  for (const auto& u : edit.updates) {
    git::PatchFile parsed = git::parse_patch_file(u.text);
    std::set<std::string> listed(u.patch->files.begin(), u.patch->files.end());
    std::set<std::string> touched(parsed.touched_files.begin(), parsed.touched_files.end());
    if (listed != touched) {
      set_files(lines, *u.patch, parsed.touched_files);
      report.push_back(fmt::format("  {:<28} files: now {}", u.patch->id, flow_list(parsed.touched_files)));
    }
    if (std::string now = read_file(u.patch->file);
        u.text == now || git::same_patch(parsed, git::parse_patch_file(now))) {
      report.push_back(fmt::format("  {:<28} unchanged", u.patch->id));
      continue;
    }
    std::string sha = sha256_hex(u.text);
    lines.replace_first(u.patch->sha256_line, std::regex("[0-9a-f]{64}"), sha);
    writes.emplace_back(u.patch->file, u.text);
    report.push_back(fmt::format("  {:<28} written to patches/{}/{} (sha256 {})", u.patch->id, m.name,
                                 u.patch->file_field, sha.substr(0, 16)));
  }
  std::filesystem::path patch_dir = ctx.root / "patches" / m.name;
  for (const auto& n : edit.added) {
    writes.emplace_back(patch_dir / n.file_name, n.text);
    report.push_back(fmt::format("  {:<28} new: patches/{}/{} (sha256 {}); write its purpose and upstream_status in {}",
                                 n.id, m.name, n.file_name, sha256_hex(n.text).substr(0, 16),
                                 display_path(m.path, ctx.root)));
  }
  add_entries(lines, m, edit.added);
  for (const auto& u : edit.upstreamed) {
    mark_upstreamed(lines, u);
    report.push_back(
        fmt::format("  {:<28} upstream has it ({}): status set to upstreamed", u.patch->id, u.commit.substr(0, 12)));
  }
  if (edit.new_pin) lines.replace_first(m.commit_line, std::regex("[0-9a-f]{40}"), *edit.new_pin);

  SeriesWrite result;
  result.changed = writes.size();
  std::string manifest_text = lines.text();
  if (writes.empty() && !edit.new_pin && edit.upstreamed.empty() && manifest_text == read_file(m.path)) {
    for (const auto& r : report) out << r << "\n";
    result.manifest = m;
    return result;
  }

  // 1. Stage and load.
  {
    Stage stage;
    std::filesystem::path staged_patches = stage.dir() / "patches" / m.name;
    std::filesystem::create_directories(staged_patches);
    std::filesystem::create_directories(stage.dir() / "manifests");
    std::error_code ec;
    if (std::filesystem::is_directory(patch_dir, ec))
      for (const auto& e : std::filesystem::directory_iterator(patch_dir))
        if (e.is_regular_file()) std::filesystem::copy_file(e.path(), staged_patches / e.path().filename());
    for (const auto& [path, text] : writes) write_file_atomic(staged_patches / path.filename(), text);
    std::filesystem::path staged_manifest = stage.dir() / "manifests" / m.path.filename();
    write_file_atomic(staged_manifest, manifest_text);
    LoadResult staged = load_manifest(staged_manifest, stage.dir());
    if (!staged.diagnostics.empty()) {
      std::string text;
      for (auto d : staged.diagnostics) {
        // Name the files where they will be, not where they were staged.
        d.file = d.file == staged_manifest ? m.path : patch_dir / d.file.filename();
        text += "\n" + d.to_string(ctx.root);
      }
      throw Error(ExitCode::failed,
                  fmt::format("{}: the rewritten series would not load:{}\n{}: nothing was written: the manifest "
                              "and the patch files are as they were",
                              m.name, text, m.name));
    }
    if (edit.verify) edit.verify(staged.manifests[0]);
  }
  writes.emplace_back(m.path, manifest_text);

  // 2. Temporary files beside the destinations.
  std::vector<std::filesystem::path> temps, backups;
  std::vector<bool> existed;
  size_t renamed = 0;
  auto clean = [&] {
    std::error_code ec;
    for (const auto& t : temps) std::filesystem::remove(t, ec);
  };
  try {
    for (const auto& [path, text] : writes) {
      temps.push_back(side_name(path, "new"));
      write_file_atomic(temps.back(), text);
    }
    test_fail_point("series:written");
    // 3. Keep the old files, move the new ones in, load the result.
    for (const auto& [path, text] : writes) {
      backups.push_back(side_name(path, "old"));
      existed.push_back(std::filesystem::exists(path));
      if (existed.back() && ::link(path.c_str(), backups.back().c_str()) != 0)
        throw Error(ExitCode::failed, fmt::format("cannot keep a copy of {} while replacing it", path.string()));
    }
    for (size_t i = 0; i < writes.size(); ++i) {
      std::filesystem::rename(temps[i], writes[i].first);
      ++renamed;
      test_fail_point(fmt::format("series:renamed:{}", renamed));
      test_kill_point(fmt::format("series:renamed:{}", renamed));
    }
    LoadResult final_load = load_manifest(m.path, ctx.root);
    if (!final_load.diagnostics.empty())
      throw Error(ExitCode::failed, fmt::format("{}: the rewritten manifest does not load: {}", m.name,
                                                final_load.diagnostics[0].to_string(ctx.root)));
    result.manifest = std::move(final_load.manifests[0]);
  } catch (const std::exception& e) {
    std::error_code ec;
    for (size_t i = 0; i < renamed; ++i) {
      if (existed[i])
        std::filesystem::rename(backups[i], writes[i].first, ec);
      else
        std::filesystem::remove(writes[i].first, ec);
    }
    for (size_t i = renamed; i < backups.size(); ++i) std::filesystem::remove(backups[i], ec);
    clean();
    throw Error(ExitCode::failed,
                fmt::format("{}\n{}: nothing was written: the manifest and the patch files are as they were", e.what(),
                            m.name));
  }
  std::error_code ec;
  for (size_t i = 0; i < backups.size(); ++i)
    if (existed[i]) std::filesystem::remove(backups[i], ec);
  for (const auto& r : report) out << r << "\n";
  return result;
}

std::vector<std::string> recover_series_writes(const std::filesystem::path& root) {
  static const std::regex kSide("^(.*)\\.patchmgr-(old|new)-([0-9]+)$");
  struct Write {
    std::vector<std::pair<std::filesystem::path, std::filesystem::path>> olds;  // copy, original
    std::vector<std::filesystem::path> news;
    std::filesystem::path manifest_copy, manifest;
  };
  std::map<long, Write> writes;
  std::vector<std::filesystem::path> dirs = {root / "manifests"};
  std::error_code ec;
  if (std::filesystem::is_directory(root / "patches", ec))
    for (const auto& e : std::filesystem::directory_iterator(root / "patches"))
      if (e.is_directory()) dirs.push_back(e.path());
  for (const auto& dir : dirs) {
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      std::smatch m;
      std::string name = e.path().filename().string();
      if (!std::regex_match(name, m, kSide)) continue;
      Write& w = writes[std::stol(m[3])];
      std::filesystem::path original = dir / m[1].str();
      if (m[2] == "new")
        w.news.push_back(e.path());
      else if (dir == root / "manifests")
        w.manifest_copy = e.path(), w.manifest = original;
      else
        w.olds.emplace_back(e.path(), original);
    }
  }
  std::vector<std::string> notes;
  for (auto& [pid, w] : writes) {
    if (pid == ::getpid() || ::kill(pid_t(pid), 0) == 0) continue;  // still writing
    for (const auto& n : w.news) std::filesystem::remove(n, ec);
    if (w.manifest_copy.empty()) continue;  // killed before it kept copies: nothing was replaced
    struct stat a {
    }, b{};
    bool replaced =
        ::stat(w.manifest_copy.c_str(), &a) != 0 || ::stat(w.manifest.c_str(), &b) != 0 || a.st_ino != b.st_ino;
    for (const auto& [copy, original] : w.olds) {
      struct stat c {
      }, o{};
      bool same = ::stat(copy.c_str(), &c) == 0 && ::stat(original.c_str(), &o) == 0 && c.st_ino == o.st_ino;
      if (replaced || same)
        std::filesystem::remove(copy, ec);
      else
        std::filesystem::rename(copy, original, ec);
    }
    std::filesystem::remove(w.manifest_copy, ec);
    notes.push_back(
        replaced ? fmt::format(
                       "{}: patchmgr (pid {}) was killed after writing the series; removed its copies of the old files",
                       w.manifest.stem().string(), pid)
                 : fmt::format("{}: patchmgr (pid {}) was killed while writing the series; the manifest and the patch "
                               "files are back as they were before it",
                               w.manifest.stem().string(), pid));
  }
  return notes;
}

size_t write_series_files(const Context& ctx, const Manifest& manifest, const std::vector<PatchFileUpdate>& updates,
                          const std::optional<std::string>& new_pin) {
  SeriesEdit edit;
  edit.updates = updates;
  edit.new_pin = new_pin;
  return write_series_files(ctx, manifest, edit).changed;
}

}  // namespace patchmgr
