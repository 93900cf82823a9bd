// The inputs of a run: files, folders, lists. See inputs.h.
#include "runtime/separate/inputs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/error.h"

namespace stemkit::separate {
namespace fs = std::filesystem;

namespace {

// The duplicates named one by one; more are counted in one line.
constexpr size_t kDuplicatesShown = 10;

std::string_view trim(std::string_view s) {
  const char* blanks = " \t\r\n\v\f";
  size_t b = s.find_first_not_of(blanks);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(blanks);
  return s.substr(b, e - b + 1);
}

// One file or folder, whatever names lead to it.
struct Identity {
  dev_t device;
  ino_t inode;
  bool operator<(const Identity& o) const { return std::tie(device, inode) < std::tie(o.device, o.inode); }
};

std::optional<Identity> identity_of(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;  // follows symlinks: a link and its target are one
  return Identity{st.st_dev, st.st_ino};
}

std::string plural(size_t n, std::string_view word) { return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s"); }

class Collector {
 public:
  InputSet set;
  std::vector<std::string> problems;

  // `shown`: the path as the user wrote it; `where`: "" (the command line) or "<list>:<line>".
  void add(const fs::path& path, const std::string& shown, const std::string& where) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (!fs::exists(status)) {
      const bool missing = !ec || ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory;
      if (!missing)
        problems.push_back(fmt::format("{}{}: {}", where.empty() ? "" : where + ": ", shown, ec.message()));
      else if (where.empty())
        problems.push_back(fmt::format("{}: no such file or folder", shown));
      else
        problems.push_back(fmt::format("{}: {} does not exist", where, shown));
      return;
    }
    if (fs::is_directory(status))
      add_folder(path, shown, where);
    else
      add_file(path);
  }

  void finish() {
    if (duplicates_ > kDuplicatesShown)
      set.duplicates.push_back(fmt::format("... and {} more: each separated once", duplicates_ - kDuplicatesShown));
  }

 private:
  struct Count {
    size_t audio = 0, other = 0;
  };

  void duplicate(std::string line) {
    if (++duplicates_ <= kDuplicatesShown) set.duplicates.push_back(std::move(line));
  }

  void add_file(const fs::path& path) {
    const std::optional<Identity> id = identity_of(path);
    if (id) {
      auto [it, inserted] = files_.emplace(*id, path);
      if (!inserted) {
        duplicate(path == it->second
                      ? fmt::format("{} is given twice: separated once", path.string())
                      : fmt::format("{} is the same file as {}: separated once", path.string(), it->second.string()));
        return;
      }
    }
    set.files.push_back(path);
  }

  void add_folder(const fs::path& path, const std::string& shown, const std::string& where) {
    const std::optional<Identity> id = identity_of(path);
    if (id) {
      if (auto it = folders_.find(*id); it != folders_.end()) {
        duplicate(fmt::format("{} is the same folder as {}: its files are separated once", shown, it->second.string()));
        return;
      }
    }
    Count count;
    const size_t problems_before = problems.size();
    walk(path, id, count);
    if (problems.size() != problems_before) return;  // it could not be read: said
    const std::string prefix = where.empty() ? "" : where + ": ";
    if (count.audio == 0) {
      problems.push_back(fmt::format(
          "{}{}: no audio files in this folder or below it{} (taken by extension: {})", prefix, shown,
          count.other ? fmt::format(" ({} with other extensions)", plural(count.other, "file")) : std::string(),
          fmt::join(audio_extensions(), " ")));
      return;
    }
    set.folders.push_back(
        fmt::format("{}: {}{}", shown, plural(count.audio, "audio file"),
                    count.other ? fmt::format(", {} skipped", plural(count.other, "other file")) : std::string()));
  }

  // The folder's entries in byte order of their names, subfolders walked where
  // they sort; names beginning with '.' skipped.
  void walk(const fs::path& folder, const std::optional<Identity>& id, Count& count) {
    if (id) folders_.emplace(*id, folder);
    std::vector<fs::path> entries;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && name.front() != '.') entries.push_back(it->path());
    }
    if (ec) {
      problems.push_back(fmt::format("{}: cannot list the folder: {}", folder.string(), ec.message()));
      return;
    }
    std::sort(entries.begin(), entries.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    for (const auto& entry : entries) {
      const fs::file_status status = fs::status(entry, ec);  // through symlinks
      if (fs::is_directory(status)) {
        const std::optional<Identity> sub = identity_of(entry);
        if (sub && folders_.count(*sub)) continue;  // a symlink back up, or to a folder already walked
        walk(entry, sub, count);
      } else if (fs::exists(status)) {
        if (!has_audio_extension(entry)) {
          ++count.other;
          continue;
        }
        ++count.audio;
        add_file(entry);
      }  // a dangling symlink: nothing there
    }
  }

  std::map<Identity, fs::path> files_, folders_;
  size_t duplicates_ = 0;
};

}  // namespace

const std::vector<std::string_view>& audio_extensions() {
  // Lossless and lossy audio, then the video and streaming containers whose
  // audio track FFmpeg decodes. Sorted, for the messages.
  static const std::vector<std::string_view> kExtensions = {
      "3gp",  "aac",  "ac3", "aif", "aifc", "aiff", "alac", "amr",  "ape",  "au",   "avi", "caf", "dts", "eac3",
      "flac", "m4a",  "m4b", "m4v", "mka",  "mkv",  "mov",  "mp2",  "mp3",  "mp4",  "mpc", "oga", "ogg", "opus",
      "ra",   "rf64", "snd", "spx", "tta",  "w64",  "wav",  "wave", "weba", "webm", "wma", "wv"};
  return kExtensions;
}

bool has_audio_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  if (ext.size() < 2) return false;
  ext.erase(0, 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto& all = audio_extensions();
  return std::find(all.begin(), all.end(), ext) != all.end();
}

std::vector<ListedPath> parse_input_list(std::istream& in, const fs::path& base, const std::string& name) {
  std::vector<ListedPath> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string_view text = line;
    if (number == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    text = trim(text);
    if (text.empty() || text.front() == '#') continue;
    fs::path path(std::string{text});
    if (path.is_relative() && !base.empty()) path = base / path;
    out.push_back({path, std::string(text), fmt::format("{}:{}", name, number)});
  }
  if (in.bad()) throw Error("cannot read the input list {}: read error", name);
  return out;
}

InputSet collect_inputs(const std::vector<std::string>& arguments, const std::optional<std::string>& list_file,
                        std::istream& standard_input) {
  Collector c;
  bool stdin_read = false;
  auto add_list = [&](const std::string& list) {
    std::vector<ListedPath> listed;
    std::string name = list;
    try {
      if (list == "-") {
        name = "<stdin>";
        if (stdin_read) {
          c.problems.push_back("'-' (the list on stdin) is given twice; stdin can be read once");
          return;
        }
        stdin_read = true;
        listed = parse_input_list(standard_input, {}, name);
      } else {
        std::ifstream in(list, std::ios::binary);
        if (!in) {
          const std::error_code ec(errno, std::generic_category());
          c.problems.push_back(fmt::format("cannot read the input list {}: {}", list, ec.message()));
          return;
        }
        listed = parse_input_list(in, fs::path(list).parent_path(), list);
      }
    } catch (const Error& e) {
      c.problems.push_back(e.what());
      return;
    }
    if (listed.empty()) {
      c.problems.push_back(
          fmt::format("the input list {} lists no files (one path per line; '#' starts a comment)", name));
      return;
    }
    for (const auto& l : listed) {
      const std::string shown = l.path.string() == l.text ? l.text : fmt::format("{} ({})", l.text, l.path.string());
      c.add(l.path, shown, l.where);
    }
  };
  for (const auto& argument : arguments) {
    if (argument == "-")
      add_list(argument);
    else
      c.add(argument, argument, "");
  }
  if (list_file) add_list(*list_file);
  c.finish();
  if (c.problems.size() == 1) throw Error("{}", c.problems.front());
  if (!c.problems.empty())
    throw Error("{} inputs cannot be read:\n  {}", c.problems.size(), fmt::join(c.problems, "\n  "));
  return std::move(c.set);
}

}  // namespace stemkit::separate
