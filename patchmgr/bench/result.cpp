#include "patchmgr/bench/result.h"

#include <cmath>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>

#include <fmt/format.h>

#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"

namespace patchmgr::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

// Reads keys with the file and the key path in every message.
class Reader {
 public:
  Reader(const fs::path& file, const fs::path& root) : shown_(display_path(file, root)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(ExitCode::usage,
                fmt::format("{}: {}: {}; fix or remove the file (docs/benchmarks.md describes it)", shown_, key, what));
  }
  const json& get(const json& obj, const std::string& path, const char* key) const {
    if (!obj.contains(key)) fail(join(path, key), "missing");
    return obj.at(key);
  }
  const json& object(const json& obj, const std::string& path, const char* key) const {
    const json& v = get(obj, path, key);
    if (!v.is_object()) fail(join(path, key), fmt::format("found {}, expected an object", kind(v)));
    return v;
  }
  std::string string(const json& obj, const std::string& path, const char* key, bool required = true) const {
    if (!obj.contains(key) || (!required && obj.at(key).is_null())) {
      if (required) fail(join(path, key), "missing");
      return {};
    }
    const json& v = obj.at(key);
    if (!v.is_string()) fail(join(path, key), fmt::format("found {}, expected a string", kind(v)));
    return v.get<std::string>();
  }
  std::optional<double> number(const json& obj, const std::string& path, const char* key, bool required) const {
    if (!obj.contains(key) || obj.at(key).is_null()) {
      if (required) fail(join(path, key), "missing");
      return std::nullopt;
    }
    const json& v = obj.at(key);
    if (!v.is_number()) fail(join(path, key), fmt::format("found {}, expected a number", kind(v)));
    return v.get<double>();
  }
  std::optional<int64_t> integer(const json& obj, const std::string& path, const char* key, bool required) const {
    if (!obj.contains(key) || obj.at(key).is_null()) {
      if (required) fail(join(path, key), "missing");
      return std::nullopt;
    }
    const json& v = obj.at(key);
    if (!v.is_number_integer()) fail(join(path, key), fmt::format("found {}, expected an integer", kind(v)));
    return v.get<int64_t>();
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::vector<Row> rows(const json& side, const std::string& path, bool stemkit) const {
    const json& list = get(side, path, "rows");
    if (!list.is_array()) fail(path + ".rows", fmt::format("found {}, expected a list", kind(list)));
    std::vector<Row> out;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string where = fmt::format("{}.rows[{}]", path, i);
      const json& r = list[i];
      if (!r.is_object()) fail(where, fmt::format("found {}, expected an object", kind(r)));
      Row row;
      row.precision = string(r, where, "precision");
      row.batch_size = *integer(r, where, "batch_size", true);
      if (row.batch_size < 1) fail(where + ".batch_size", fmt::format("found {}, expected 1 or more", row.batch_size));
      if (stemkit) {
        const json& g = get(r, where, "graphs");
        if (!g.is_boolean()) fail(where + ".graphs", fmt::format("found {}, expected true or false", kind(g)));
        row.graphs = g.get<bool>();
        row.graphs_status = string(r, where, "graphs_status", false);
        row.attention = string(r, where, "attention", false);
      }
      row.mode = string(r, where, "mode", false);
      row.notes = string(r, where, "notes", false);
      row.error = string(r, where, "error", false);
      row.realtime = number(r, where, "realtime", row.error.empty());
      if (row.realtime && !(*row.realtime > 0))
        fail(where + ".realtime", fmt::format("found {}, expected a positive number", *row.realtime));
      row.realtime_with_io = number(r, where, "realtime_with_io", false);
      row.peak_allocated = integer(r, where, "peak_allocated_bytes", false);
      row.peak_reserved = integer(r, where, "peak_reserved_bytes", false);
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  std::string shown_;
};

const std::regex kDate("^[0-9]{4}-[0-9]{2}-[0-9]{2}$");
const std::regex kComponent("^[a-z0-9][a-z0-9-]*$");

}  // namespace

Result parse_result(const json& j, const fs::path& file, const fs::path& root) {
  Reader rd(file, root);
  if (!j.is_object()) rd.fail("(top level)", fmt::format("found {}, expected an object", kind(j)));
  Result r;
  r.file = file;
  auto schema = rd.integer(j, "", "stemkit_bench", true);
  if (*schema != kResultSchema)
    rd.fail("stemkit_bench",
            fmt::format("found {}, expected {} (the result format this patchmgr reads)", *schema, kResultSchema));
  r.component = rd.string(j, "", "component");
  if (!std::regex_match(r.component, kComponent))
    rd.fail("component", fmt::format("found \"{}\", expected a component name", r.component));
  r.date = rd.string(j, "", "date");
  if (!std::regex_match(r.date, kDate)) rd.fail("date", fmt::format("found \"{}\", expected YYYY-MM-DD", r.date));
  r.time = rd.string(j, "", "time");
  if (r.time.rfind(r.date, 0) != 0)
    rd.fail("time", fmt::format("found \"{}\", expected an ISO 8601 time on {}", r.time, r.date));
  r.imported = rd.string(j, "", "imported", false);
  if (j.contains("notes") && !j.at("notes").is_null()) {
    const json& n = j.at("notes");
    if (!n.is_array()) rd.fail("notes", fmt::format("found {}, expected a list of strings", kind(n)));
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].is_string())
        rd.fail(fmt::format("notes[{}]", i), fmt::format("found {}, expected a string", kind(n[i])));
      r.notes.push_back(n[i].get<std::string>());
    }
  }
  const json& m = rd.object(j, "", "machine");
  r.machine.label = rd.string(m, "machine", "label");
  r.machine.cpu = rd.string(m, "machine", "cpu", false);
  r.machine.os = rd.string(m, "machine", "os", false);
  r.machine.gpu = rd.string(m, "machine", "gpu", false);
  r.machine.driver = rd.string(m, "machine", "driver", false);
  r.machine.gpu_memory = rd.string(m, "machine", "gpu_memory", false);
  r.machine.cores = int(rd.integer(m, "machine", "cores", false).value_or(0));
  r.libtorch = rd.string(j, "", "libtorch", false);
  const json& f = rd.object(j, "", "fingerprint");
  r.fingerprint_id = rd.string(f, "fingerprint", "id");
  r.fingerprint_component = rd.string(f, "fingerprint", "component");
  if (r.fingerprint_component.rfind(r.component + " ", 0) != 0)
    rd.fail("fingerprint.component",
            fmt::format("expected the {} block of `patchmgr fingerprint` (\"{} <pin>\\n  ...\")", r.component,
                        r.component));
  r.runtime_patch_set = rd.string(j, "", "runtime_patch_set", false);
  const json& t = rd.object(j, "", "track");
  r.track = rd.string(t, "track", "path", false);
  r.seconds = *rd.number(t, "track", "seconds", true);
  if (!(r.seconds > 0)) rd.fail("track.seconds", fmt::format("found {}, expected a positive number", r.seconds));
  if (t.contains("synthetic")) {
    if (!t.at("synthetic").is_boolean())
      rd.fail("track.synthetic", fmt::format("found {}, expected true or false", kind(t.at("synthetic"))));
    r.synthetic = t.at("synthetic").get<bool>();
  }
  if (auto n = rd.number(j, "", "repeats", false)) {
    if (!(*n >= 1 && *n <= 100 && *n == std::floor(*n)))
      rd.fail("repeats", fmt::format("found {}, expected a whole number from 1 to 100", *n));
    r.repeats = static_cast<int>(*n);
  }
  const json& c = rd.get(j, "", "commands");
  if (!c.is_array()) rd.fail("commands", fmt::format("found {}, expected a list of strings", kind(c)));
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c[i].is_string())
      rd.fail(fmt::format("commands[{}]", i), fmt::format("found {}, expected a string", kind(c[i])));
    r.commands.push_back(c[i].get<std::string>());
  }
  r.runtime = rd.rows(rd.object(j, "", "runtime"), "runtime", true);
  r.model = rd.string(j.at("runtime"), "runtime", "model", false);
  if (j.contains("upstream") && !j.at("upstream").is_null()) {
    const json& u = rd.object(j, "", "upstream");
    r.has_upstream = true;
    r.upstream = rd.rows(u, "upstream", false);
    r.torch = rd.string(u, "upstream", "torch", false);
  }
  return r;
}

Result read_result(const fs::path& file, const fs::path& root) {
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::parse_error& e) {
    throw Error(ExitCode::usage,
                fmt::format("{}: not valid JSON: {}; fix or remove the file", display_path(file, root), e.what()));
  }
  return parse_result(j, file, root);
}

std::vector<Result> load_results(const fs::path& root) {
  std::vector<Result> out;
  fs::path dir = root / "docs" / "benchmarks";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json" && e.path().filename().string()[0] != '.')
      files.push_back(e.path());
  for (const auto& f : files) out.push_back(read_result(f, root));
  // A second run within the same second: NAME-2.json comes after NAME.json.
  auto run_index = [](const Result& r) {
    std::string stem = r.file.stem().string();
    std::string tail = "-" + r.component;
    if (stem.size() >= tail.size() && stem.compare(stem.size() - tail.size(), tail.size(), tail) == 0) return 1L;
    size_t dash = stem.rfind('-');
    if (dash == std::string::npos || dash + 1 == stem.size() ||
        stem.find_first_not_of("0123456789", dash + 1) != std::string::npos)
      return 0L;
    return std::stol(stem.substr(dash + 1, 9));
  };
  std::sort(out.begin(), out.end(), [&](const Result& a, const Result& b) {
    return std::make_tuple(a.component, a.time, run_index(a), a.file) <
           std::make_tuple(b.component, b.time, run_index(b), b.file);
  });
  return out;
}

fs::path write_result_file(const fs::path& dir, const std::string& stem, const std::string& content) {
  fs::create_directories(dir);
  fs::path tmp = dir / fmt::format(".{}.tmp-{}", stem, ::getpid());
  {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(ExitCode::failed, fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno)));
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw Error(ExitCode::failed, fmt::format("cannot write {}: {}", tmp.string(), std::strerror(err)));
      }
      done += size_t(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      ::unlink(tmp.c_str());
      throw Error(ExitCode::failed, fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno)));
    }
  }
  for (int n = 1; n < 1000; ++n) {
    fs::path target = dir / (n == 1 ? stem + ".json" : fmt::format("{}-{}.json", stem, n));
    // link() never replaces: an existing name (a result of an earlier run) makes it fail with EEXIST.
    if (::link(tmp.c_str(), target.c_str()) == 0) {
      ::unlink(tmp.c_str());
      if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) ::fsync(d), ::close(d);
      return target;
    }
    if (errno != EEXIST) {
      int err = errno;
      ::unlink(tmp.c_str());
      throw Error(ExitCode::failed, fmt::format("cannot write {}: {}", target.string(), std::strerror(err)));
    }
  }
  ::unlink(tmp.c_str());
  throw Error(ExitCode::failed,
              fmt::format("{}: 999 results named {} already; choose another --machine name", dir.string(), stem));
}

std::string machine_slug(const std::string& name) {
  std::string lower;
  for (char ch : name) lower += char(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* vendor : {"nvidia ", "amd ", "geforce ", "radeon ", "intel "})
    while (lower.rfind(vendor, 0) == 0) lower = lower.substr(std::strlen(vendor));
  std::string slug;
  for (char ch : lower) {
    if (std::isalnum(static_cast<unsigned char>(ch)))
      slug += ch;
    else if (!slug.empty() && slug.back() != '-')
      slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  if (slug.size() > 40) slug.resize(40);
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "machine" : slug;
}

}  // namespace patchmgr::bench
