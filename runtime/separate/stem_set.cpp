// A track's stems as one set: temporaries, renames, the marker written last,
// and the clean-up of what killed runs left. See stem_set.h.
#include "runtime/separate/stem_set.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <system_error>

#include <fmt/format.h>

#include "runtime/error.h"

namespace stemkit::separate {
namespace fs = std::filesystem;

namespace {

constexpr int kMarkerVersion = 1;
constexpr const char* kTag = ".stemkit-tmp-";
constexpr size_t kMarkerNameMax = 120;  // of the input's name in its set's record's name

// A leftover temporary of any stem: ".<name>.stemkit-tmp-<pid>-<8 hex>[.ext][.tmp-<pid>]".
const std::regex& temporary_pattern() {
  static const std::regex re(R"(^\..*\.stemkit-tmp-([0-9]+)-[0-9a-f]{8}(\.[^/]*)?$)");
  return re;
}

std::string nonce() {
  static thread_local std::mt19937 gen{std::random_device{}()};
  return fmt::format("{:08x}", static_cast<uint32_t>(gen()));
}

fs::path folder_of(const fs::path& p) { return p.parent_path().empty() ? fs::path(".") : p.parent_path(); }

// A rename or an unlink lasts across a power cut once its folder is flushed.
void sync_folder(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Whether the run that made a temporary may still be writing it. Our own pid
// is not: this run removes leftovers before it writes anything, and in a
// container every run may get the same pid.
bool running(long pid) {
  if (pid <= 0 || pid == static_cast<long>(::getpid())) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

fs::path nearest_existing(const fs::path& dir) {
  fs::path p = fs::absolute(dir);
  std::error_code ec;
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  return p;
}

}  // namespace

fs::path stem_set_temporary(const fs::path& path) {
  const std::string name =
      "." + path.stem().string() + kTag + std::to_string(::getpid()) + "-" + nonce() + path.extension().string();
  return path.parent_path() / name;
}

fs::path stem_set_marker(const fs::path& input, const std::vector<const PlannedOutput*>& outputs) {
  if (outputs.empty()) throw std::invalid_argument("stem_set_marker: a set of no stems");
  std::string name = input.filename().string();
  if (name.size() > kMarkerNameMax) {
    // A long input name (its stems can still fit NAME_MAX: they are named by
    // stem) would give a record, and a temporary of it, longer than NAME_MAX:
    // its first characters and a stable hash (FNV-1a) of the whole name.
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
    name = fmt::format("{}~{:016x}", name.substr(0, kMarkerNameMax), hash);
  }
  return outputs.front()->path.parent_path() / ("." + name + ".stems.json");
}

bool stem_set_complete(const fs::path& marker, const std::vector<const PlannedOutput*>& outputs,
                       const nlohmann::json& settings, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  std::ifstream in(marker);
  if (!in) return no("no record of a complete set");
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return no(fmt::format("{} is not a set record", marker.string()));
  }
  if (!record.is_object() || record.value("version", 0) != kMarkerVersion || !record["stems"].is_array())
    return no(fmt::format("{} is not a set record of this version", marker.string()));
  if (record["settings"] != settings) {
    std::string diff;  // the settings that differ, as "encoding pcm24, now pcm16"
    const nlohmann::json& was = record["settings"];
    for (const auto& [key, value] : settings.items()) {
      const nlohmann::json before = was.is_object() && was.contains(key) ? was[key] : nlohmann::json();
      if (before != value)
        diff += fmt::format("{}{} {}, now {}", diff.empty() ? "" : "; ", key, before.dump(), value.dump());
    }
    return no("made with other settings: " + (diff.empty() ? was.dump() : diff));
  }
  const nlohmann::json& stems = record["stems"];
  if (stems.size() != outputs.size()) return no(fmt::format("the set recorded {} stems", stems.size()));
  const fs::path base = marker.parent_path();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const nlohmann::json& s = stems[i];
    const PlannedOutput& out = *outputs[i];
    if (!s.is_object() || s.value("stem", "") != out.stem || !s["file"].is_string() ||
        !s["bytes"].is_number_unsigned() ||
        (base / s["file"].get<std::string>()).lexically_normal() != out.path.lexically_normal())
      return no(fmt::format("{} is not in the recorded set", out.path.string()));
    std::error_code ec;
    const uintmax_t bytes = fs::file_size(out.path, ec);
    if (ec) return no(fmt::format("{} is missing", out.path.string()));
    if (bytes != s["bytes"].get<uintmax_t>())
      return no(fmt::format("{}: {} bytes, the set recorded {}", out.path.string(), bytes, s["bytes"].dump()));
  }
  return true;
}

StemSetWriter::StemSetWriter(fs::path input, std::vector<const PlannedOutput*> outputs, nlohmann::json settings)
    : input_(std::move(input)),
      marker_(stem_set_marker(input_, outputs)),
      outputs_(std::move(outputs)),
      settings_(std::move(settings)) {
  for (const auto* p : outputs_) temporaries_.push_back(stem_set_temporary(p->path));
}

StemSetWriter::~StemSetWriter() {
  if (!done_) abandon();
}

void StemSetWriter::make_folders() {
  for (const auto* p : outputs_) {
    std::vector<fs::path> missing;  // deepest first
    for (fs::path d = p->path.parent_path(); !d.empty() && !fs::exists(d); d = d.parent_path()) missing.push_back(d);
    fs::create_directories(folder_of(p->path));
    made_folders_.insert(made_folders_.end(), missing.rbegin(), missing.rend());
  }
}

void StemSetWriter::abandon() noexcept {
  std::error_code ec;
  for (const auto& t : temporaries_) fs::remove(t, ec);
  for (auto it = made_folders_.rbegin(); it != made_folders_.rend(); ++it) fs::remove(*it, ec);  // only if empty
  made_folders_.clear();
  done_ = true;
}

void StemSetWriter::commit() {
  std::set<fs::path> folders;
  for (const auto* p : outputs_) folders.insert(folder_of(p->path));
  // From here until the new marker is in place the set is incomplete on disk,
  // and says so by having no marker.
  std::error_code ec;
  if (!fs::remove(marker_, ec) && ec && ec != std::errc::no_such_file_or_directory)
    throw Error("{}: cannot remove the old set's record ({}); nothing was replaced", marker_.string(), ec.message());
  sync_folder(folder_of(marker_));
  nlohmann::json stems = nlohmann::json::array();
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const fs::path& final_path = outputs_[i]->path;
    const uintmax_t bytes = fs::file_size(temporaries_[i], ec);
    if (ec) throw Error("{}: the finished stem is gone ({}); run again", temporaries_[i].string(), ec.message());
    fs::rename(temporaries_[i], final_path, ec);
    if (ec)
      throw Error("{}: cannot move the finished stem into place ({}); the set of {} is incomplete: run again",
                  final_path.string(), ec.message(), input_.string());
    stems.push_back(
        {{"stem", outputs_[i]->stem},
         {"file", final_path.lexically_normal().lexically_relative(marker_.parent_path().lexically_normal()).string()},
         {"bytes", bytes}});
  }
  for (const auto& f : folders) sync_folder(f);
  const nlohmann::json record = {
      {"version", kMarkerVersion}, {"input", input_.string()}, {"settings", settings_}, {"stems", stems}};
  const fs::path tmp = stem_set_temporary(marker_);
  temporaries_.push_back(tmp);  // removed by abandon() if what follows throws
  {
    std::ofstream out(tmp);
    out << record.dump(1) << "\n";
    out.flush();
    if (!out)
      throw Error("{}: cannot write the set's record; the stems are written, run again to record them",
                  marker_.string());
  }
  if (int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, marker_, ec);
  if (ec) throw Error("{}: cannot move the set's record into place ({})", marker_.string(), ec.message());
  sync_folder(folder_of(marker_));
  done_ = true;
}

std::vector<fs::path> remove_stale_temporaries(const std::vector<PlannedOutput>& outputs) {
  std::map<fs::path, std::set<std::string>> folders;  // folder -> the stems' file names there
  for (const auto& p : outputs) folders[folder_of(p.path)].insert(p.path.filename().string());
  std::vector<fs::path> removed;
  for (const auto& [dir, names] : folders) {
    std::error_code ec;
    fs::directory_iterator it(dir, ec), end;
    if (ec) continue;  // not made yet
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      const std::string name = it->path().filename().string();
      long pid = -1;
      std::smatch m;
      if (std::regex_match(name, m, temporary_pattern())) {
        pid = std::stol(m[1].str().substr(0, 9));
      } else {
        // An earlier version's write_audio temporary: "<stem file>.tmp-<pid>".
        const size_t cut = name.rfind(".tmp-");
        if (cut == std::string::npos || !names.count(name.substr(0, cut)) || !all_digits(name.substr(cut + 5)))
          continue;
        pid = std::stol(name.substr(cut + 5, 9));
      }
      if (running(pid)) continue;
      std::error_code rm;
      if (fs::remove(it->path(), rm)) removed.push_back(it->path());
    }
  }
  return removed;
}

void check_outputs_writable(const std::vector<PlannedOutput>& outputs) {
  std::set<fs::path> dirs;
  for (const auto& p : outputs) dirs.insert(folder_of(p.path));
  std::map<fs::path, long> name_max;       // per folder, from its nearest existing one
  std::map<fs::path, std::string> probed;  // nearest existing folder -> its problem, "" for none
  for (const auto& dir : dirs) {
    const fs::path existing = nearest_existing(dir);  // the stems' folders are made in it
    auto [it, first] = probed.emplace(existing, "");
    std::string& problem = it->second;
    std::error_code ec;
    if (!first) {
      // probed already: a thousand tracks' new folders share one existing parent
    } else if (!fs::is_directory(existing, ec)) {
      problem = fmt::format("{} is not a folder", existing.string());
    } else {
      // access() says yes to root on a read-only mount's siblings and knows
      // nothing of quotas or FUSE: a real file tells.
      const fs::path probe = stem_set_temporary(existing / "probe");
      const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) {
        problem = fmt::format("{}: {}", existing.string(), std::strerror(errno));
      } else {
        ::close(fd);
        ::unlink(probe.c_str());
      }
    }
    if (!problem.empty())
      throw Error("cannot write stems into {} ({}); choose another output root with -o DIR, or another --filename",
                  dir.string(), problem);
    const long max = ::pathconf(existing.c_str(), _PC_NAME_MAX);
    name_max[dir] = max > 0 ? max : NAME_MAX;
  }
  for (const auto& p : outputs) {
    std::error_code ec;
    if (fs::is_directory(p.path, ec))
      throw Error("{} is a folder, where the stem {} of {} goes; move it away, or choose another --filename",
                  p.path.string(), p.stem, p.input.string());
    // The longest name written beside the stem: write_audio's temporary of the set's temporary.
    const size_t longest = stem_set_temporary(p.path).filename().string().size() + 5 + 10;
    const long max = name_max[folder_of(p.path)];
    if (longest > static_cast<size_t>(max))
      throw Error(
          "{}: the name is too long to write it safely (its temporary name has {} characters, this file system "
          "takes {}); choose a shorter --filename or rename the input",
          p.path.string(), longest, max);
  }
}

}  // namespace stemkit::separate
