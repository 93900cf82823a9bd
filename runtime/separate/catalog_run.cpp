#include "runtime/separate/catalog_run.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include <fmt/format.h>

#include "patchmgr/util/sha256.h"
#include "runtime/error.h"
#include "runtime/separate/model_cache.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

fs::path normal_absolute(const fs::path& p) { return fs::absolute(p).lexically_normal(); }

std::string shard_text(const ShardSpec& s) { return std::to_string(s.index) + "/" + std::to_string(s.count); }

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

}  // namespace

ShardSpec parse_shard(const std::string& text) {
  static const std::regex form(R"(([0-9]{1,9})/([0-9]{1,9}))");
  std::smatch m;
  if (!std::regex_match(text, m, form))
    throw Error("--shard {}: expected I/N, this run's share I of N shares, 0 <= I < N (e.g. --shard 0/4)", text);
  ShardSpec s{std::stoi(m[1]), std::stoi(m[2])};
  if (s.count < 1 || s.index >= s.count)
    throw Error("--shard {}: expected 0 <= I < N (shares are numbered from 0, as Slurm's array indices)", text);
  return s;
}

std::string shard_key(const fs::path& input, const fs::path& root) {
  const fs::path in = normal_absolute(input), base = normal_absolute(root);
  const fs::path rel = in.lexically_relative(base);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(
        "--shard: {} is not under the shard root {}; give --shard-root a folder that holds every input (the same on "
        "every machine of the catalog)",
        input.string(), base.string());
  return rel.generic_string();
}

int shard_of(const std::string& key, int count) {
  const std::string hex = patchmgr::sha256_hex(key);
  const uint64_t h = std::stoull(hex.substr(0, 16), nullptr, 16);
  return static_cast<int>(h % static_cast<uint64_t>(count));
}

ShardSelection select_shard(const std::vector<fs::path>& inputs, const fs::path& root, const ShardSpec& shard) {
  ShardSelection s;
  s.listed = inputs.size();
  for (const auto& in : inputs)
    if (shard_of(shard_key(in, root), shard.count) == shard.index) s.files.push_back(in);
  return s;
}

fs::path catalog_record_path(const fs::path& output_root, const std::optional<ShardSpec>& shard) {
  if (!shard) return output_root / "catalog.jsonl";
  return output_root / ("catalog-" + std::to_string(shard->index) + "-of-" + std::to_string(shard->count) + ".jsonl");
}

std::string utc_now_text() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

RecordFile::RecordFile(fs::path path) : path_(std::move(path)) {
  std::error_code ec;
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path(), ec);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(
        "cannot open the catalog record {} for appending: {}; make its folder writable, or choose another "
        "output root with -o",
        path_.string(), std::strerror(errno));
}

RecordFile::~RecordFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RecordFile::append(const nlohmann::json& record) {
  const std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (::flock(fd_, LOCK_EX) != 0)
    throw Error("cannot lock the catalog record {}: {}", path_.string(), std::strerror(errno));
  struct stat st {};
  const off_t before = ::fstat(fd_, &st) == 0 ? st.st_size : -1;
  const ssize_t n = ::write(fd_, line.data(), line.size());
  const int write_errno = errno;
  std::string failure;
  if (n != static_cast<ssize_t>(line.size())) {
    // Half a line would make the next line unreadable too: cut it back.
    if (n > 0 && before >= 0) (void)!::ftruncate(fd_, before);
    failure = n < 0 ? std::strerror(write_errno) : "a short write (the disk is full?)";
  } else if (::fsync(fd_) != 0) {
    failure = std::string("fsync: ") + std::strerror(errno);
  }
  ::flock(fd_, LOCK_UN);
  if (!failure.empty())
    throw Error(
        "cannot append to the catalog record {}: {}; the stems are written, the record of this track is not: "
        "free space and run again with --skip-existing",
        path_.string(), failure);
}

CatalogRecorder::CatalogRecorder(const fs::path& path, const Run& run)
    : file_(path), shard_(run.shard), root_(normal_absolute(run.root)) {
  const std::string now = utc_now_text();
  run_id_ = host_name() + "-" + std::to_string(::getpid()) + "-" + now;
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& in : run.inputs) inputs.push_back(normal_absolute(in).string());
  nlohmann::json line = {{"record", "run"},
                         {"run", run_id_},
                         {"time", now},
                         {"host", host_name()},
                         {"pid", ::getpid()},
                         {"shard", run.shard ? nlohmann::json(shard_text(*run.shard)) : nlohmann::json(nullptr)},
                         {"shard_count", run.shard ? run.shard->count : 1},
                         {"shard_index", run.shard ? run.shard->index : 0},
                         {"root", root_.string()},
                         {"listed", run.listed},
                         {"inputs", inputs},
                         {"command", run.command},
                         {"version", run.version},
                         {"patch_set", run.patch_set}};
  file_.append(line);
}

void CatalogRecorder::set_model(const std::string& name, const std::vector<std::string>& files,
                                const std::string& precision, const std::string& device,
                                const nlohmann::json& settings) {
  nlohmann::json hashed = nlohmann::json::array();
  for (const auto& f : files) hashed.push_back({{"path", normal_absolute(f).string()}, {"sha256", file_sha256_hex(f)}});
  model_ = {
      {"model", name}, {"model_files", hashed}, {"precision", precision}, {"device", device}, {"settings", settings}};
}

void CatalogRecorder::track(const nlohmann::json& entry) noexcept {
  try {
    const std::string input = entry.at("input").get<std::string>();
    nlohmann::json line = {{"record", "track"}, {"run", run_id_}, {"time", utc_now_text()}};
    line["input"] = normal_absolute(input).string();
    if (shard_) line["shard"] = shard_text(*shard_);
    struct stat st {};
    if (::stat(input.c_str(), &st) == 0) {
      line["size"] = static_cast<int64_t>(st.st_size);
      line["mtime_ns"] = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    line.update(model_);
    for (const auto& [key, value] : entry.items())
      if (key != "input") line[key] = value;
    if (line.contains("outputs"))  // absolute, as the input: records are read from elsewhere than the run's folder
      for (auto& [stem, path] : line["outputs"].items()) path = normal_absolute(path.get<std::string>()).string();
    file_.append(line);
  } catch (const std::exception& e) {
    if (error_.empty()) {
      error_ = e.what();
      std::fprintf(stderr, "separate: %s\n", error_.c_str());
    }
  }
}

CatalogReport summarize_catalog(const fs::path& dir, std::vector<std::string>* warnings) {
  static const std::regex name(R"(catalog(-[0-9]+-of-[0-9]+)?\.jsonl)");
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && std::regex_match(e.path().filename().string(), name)) files.push_back(e.path());
  if (ec) throw Error("--summarize {}: cannot read the folder: {}", dir.string(), ec.message());
  if (files.empty())
    throw Error(
        "--summarize {}: no catalog records there (catalog.jsonl, catalog-I-of-N.jsonl); give the output root a "
        "--shard or --record run wrote them to (OUT/<model>, e.g. separated/htdemucs)",
        dir.string());
  std::sort(files.begin(), files.end());

  struct Seen {
    nlohmann::json record;
    std::string time;
    size_t order = 0;
  };
  std::vector<Seen> runs;
  std::map<std::string, Seen> latest;    // input -> its latest track record
  std::map<std::string, int> separated;  // input -> how many "ok" records
  size_t order = 0;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string text;
    size_t line_no = 0;
    while (std::getline(in, text)) {
      ++line_no;
      ++order;
      if (text.empty()) continue;
      nlohmann::json r = nlohmann::json::parse(text, nullptr, false);
      if (r.is_discarded() || !r.is_object() || !r.contains("record") || !r.contains("time")) {
        if (warnings)
          warnings->push_back(fmt::format("{}:{}: not a record (a line cut short?), skipped", f.string(), line_no));
        continue;
      }
      Seen s{r, r["time"].get<std::string>(), order};
      if (r["record"] == "run") {
        runs.push_back(std::move(s));
      } else if (r["record"] == "track" && r.contains("input")) {
        const std::string input = r["input"];
        if (r.value("status", "") == "ok") ++separated[input];
        auto it = latest.find(input);
        if (it == latest.end() || std::tie(it->second.time, it->second.order) < std::tie(s.time, s.order))
          latest[input] = std::move(s);
      }
    }
  }

  // The shards: those of the latest run's N; per shard, its latest run line tells its inputs.
  std::set<std::string> expected;
  std::vector<int> shards_missing;
  int count = 0;
  if (!runs.empty()) {
    const auto last = std::max_element(runs.begin(), runs.end(), [](const Seen& a, const Seen& b) {
      return std::tie(a.time, a.order) < std::tie(b.time, b.order);
    });
    count = last->record.value("shard_count", 1);
    std::map<int, const Seen*> per_shard;
    for (const auto& r : runs) {
      if (r.record.value("shard_count", 1) != count) continue;
      const int index = r.record.value("shard_index", 0);
      auto it = per_shard.find(index);
      if (it == per_shard.end() || std::tie(it->second->time, it->second->order) < std::tie(r.time, r.order))
        per_shard[index] = &r;
    }
    for (int i = 0; i < count; ++i)
      if (!per_shard.count(i)) shards_missing.push_back(i);
    for (const auto& [index, r] : per_shard)
      for (const auto& in : r->record.value("inputs", nlohmann::json::array())) expected.insert(in.get<std::string>());
  }
  std::set<std::string> all = expected;
  for (const auto& [input, s] : latest) all.insert(input);

  CatalogReport report;
  nlohmann::json tracks = nlohmann::json::array();
  size_t done = 0, failed = 0, missing = 0;
  for (const auto& input : all) {
    nlohmann::json t = {{"input", input}};
    auto it = latest.find(input);
    if (it == latest.end()) {
      t["status"] = "missing";
      ++missing;
    } else {
      const std::string status = it->second.record.value("status", "");
      t["status"] = status == "ok" || status == "skipped" ? "done" : status == "failed" ? "failed" : "missing";
      t["last"] = status;
      t["time"] = it->second.time;
      t["separated"] = separated[input];
      if (it->second.record.contains("error")) t["error"] = it->second.record["error"];
      if (it->second.record.contains("outputs")) t["outputs"] = it->second.record["outputs"];
      if (it->second.record.contains("model")) t["model"] = it->second.record["model"];
      if (it->second.record.contains("shard")) t["shard"] = it->second.record["shard"];
      (t["status"] == "done" ? done : t["status"] == "failed" ? failed : missing)++;
    }
    tracks.push_back(std::move(t));
  }
  nlohmann::json record_files = nlohmann::json::array();
  for (const auto& f : files) record_files.push_back(f.filename().string());
  report.json = {{"dir", dir.string()},
                 {"record_files", record_files},
                 {"runs", runs.size()},
                 {"shard_count", count},
                 {"shards_missing", shards_missing},
                 {"inputs", all.size()},
                 {"done", done},
                 {"failed", failed},
                 {"missing", missing},
                 {"tracks", tracks}};
  report.complete = failed == 0 && missing == 0 && shards_missing.empty();
  return report;
}

std::string catalog_report_text(const CatalogReport& report) {
  const nlohmann::json& j = report.json;
  std::string out = fmt::format("{}: {} input{} in {} shard{} ({} run{} recorded)\n", j["dir"].get<std::string>(),
                                j["inputs"].get<size_t>(), j["inputs"] == 1 ? "" : "s", j["shard_count"].get<int>(),
                                j["shard_count"] == 1 ? "" : "s", j["runs"].get<size_t>(), j["runs"] == 1 ? "" : "s");
  out += fmt::format("  done:    {}\n  failed:  {}\n  missing: {}\n", j["done"].get<size_t>(),
                     j["failed"].get<size_t>(), j["missing"].get<size_t>());
  for (const auto& t : j["tracks"])
    if (t["status"] == "failed")
      out += fmt::format("failed: {}: {}\n", t["input"].get<std::string>(), t.value("error", "(no reason recorded)"));
  for (const auto& t : j["tracks"])
    if (t["status"] == "missing") out += fmt::format("missing: {}\n", t["input"].get<std::string>());
  for (const auto& i : j["shards_missing"])
    out += fmt::format("missing: shard {}/{}: no run recorded (its inputs are not known here: run it)\n", i.get<int>(),
                       j["shard_count"].get<int>());
  return out;
}

}  // namespace stemkit::separate
