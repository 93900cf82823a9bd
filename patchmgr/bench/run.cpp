#include "patchmgr/bench/run.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/bench/result.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/process.h"

namespace patchmgr::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ojson = nlohmann::ordered_json;

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string trim(std::string s) {
  s.erase(0, s.find_first_not_of(" \t\r\n"));
  s.erase(s.find_last_not_of(" \t\r\n") + 1);
  return s;
}

// Fills {name} from `values`; every name was checked when the manifest was loaded.
std::string expand(const std::string& text, const std::map<std::string, std::string>& values,
                   const std::string& where) {
  static const std::regex kPlaceholder("\\{([A-Za-z0-9_-]*)\\}");
  std::string out;
  auto last = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), kPlaceholder), end; it != end; ++it) {
    out.append(last, text.cbegin() + it->position());
    auto v = values.find((*it)[1]);
    if (v == values.end())
      throw Error(ExitCode::usage, fmt::format("{}: {{{}}} has no value; set it with --var {}=VALUE or in bench.vars",
                                               where, (*it)[1].str(), (*it)[1].str()));
    out += v->second;
    last = text.cbegin() + it->position() + it->length();
  }
  out.append(last, text.cend());
  return out;
}

std::vector<std::string> expand_all(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& values, const std::string& where) {
  std::vector<std::string> out;
  for (const auto& a : args) out.push_back(expand(a, values, where));
  return out;
}

fs::path resolve(const fs::path& root, const std::string& path) {
  fs::path p(path);
  return p.is_absolute() ? p : root / p;
}

std::string number_text(double v) { return fmt::format("{:g}", v); }

std::string utc_now(const char* format) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string file_value(const fs::path& file, const std::string& key, char sep) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto pos = line.find(sep);
    if (pos == std::string::npos || trim(line.substr(0, pos)) != key) continue;
    std::string v = trim(line.substr(pos + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    return v;
  }
  return {};
}

// The host and its GPU, from what the machine says; anything missing stays empty.
Machine probe_machine(const fs::path& root, const json& runtime) {
  Machine m;
  m.cpu = file_value("/proc/cpuinfo", "model name", ':');
  m.cores = int(std::thread::hardware_concurrency());
  m.os = file_value("/etc/os-release", "PRETTY_NAME", '=');
  // Probes: their answer captured, their complaints (no GPU, no driver) not shown.
  Process probe;
  probe.cwd = root;
  probe.capture = probe.quiet = true;
  probe.argv = {"nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"};
  ProcessResult smi = run_process(probe);
  if (smi.ok()) {
    auto lines = split(smi.out, '\n');
    if (!lines.empty()) {
      auto fields = split(lines.front(), ',');
      if (fields.size() >= 1) m.gpu = trim(fields[0]);
      if (fields.size() >= 2) m.driver = trim(fields[1]);
      if (fields.size() >= 3) m.gpu_memory = trim(fields[2]);
      if (lines.size() > 1) m.gpu += fmt::format(" (first of {} GPUs)", lines.size());
    }
  }
  if (m.gpu.empty()) {
    probe.argv = {"rocm-smi", "--showproductname", "--showdriverversion", "--json"};
    ProcessResult rocm = run_process(probe);
    if (rocm.ok()) {
      try {
        json j = json::parse(rocm.out);
        for (const auto& [key, v] : j.items()) {
          if (key.rfind("card", 0) == 0 && v.is_object() && m.gpu.empty()) {
            for (const char* k : {"Card Series", "Card series", "Card Model", "Card model"})
              if (v.contains(k) && v[k].is_string()) {
                m.gpu = v[k].get<std::string>();
                break;
              }
          }
          if (v.is_object())
            for (const char* k : {"Driver version", "Driver Version"})
              if (v.contains(k) && v[k].is_string() && m.driver.empty()) m.driver = v[k].get<std::string>();
        }
      } catch (const json::exception&) {
      }
    }
  }
  // What separate saw, when the tools above are missing.
  if (m.gpu.empty() && runtime.contains("gpu") && runtime["gpu"].is_string() && runtime["gpu"] != "none")
    m.gpu = runtime["gpu"].get<std::string>();
  return m;
}

json read_json(const std::string& component, const fs::path& file, const std::string& what) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Error(ExitCode::failed,
                fmt::format("{}: {} exited 0 but wrote no {}; nothing was recorded", component, what, file.string()));
  try {
    return json::parse(read_file(file));
  } catch (const json::parse_error& e) {
    throw Error(ExitCode::failed, fmt::format("{}: {} wrote {}, which is not valid JSON: {}; nothing was recorded",
                                              component, what, file.string(), e.what()));
  }
}

void run_step(const Context& ctx, const Manifest& m, const std::string& what, const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env) {
  *ctx.out << fmt::format("{}: {}: {}\n", m.name, what, shell_join(argv)) << std::flush;
  // Its output is shared with ours: the user sees separate's table as it comes.
  Process p;
  p.argv = argv;
  p.cwd = ctx.root;
  p.env = env;
  ProcessResult r = run_process(p);
  if (r.exit_code == 127)
    throw Error(
        ExitCode::failed,
        fmt::format("{}: {} could not be started ({} not found or not executable, or exited 127); nothing was recorded",
                    m.name, what, argv.front()));
  if (!r.ok())  // the status as a shell's $? gives it: 128 + the signal that ended it
    throw Error(ExitCode::failed, fmt::format("{}: {} failed (exit {}); its output is above; nothing was recorded",
                                              m.name, what, r.signal != 0 ? 128 + r.signal : r.exit_code));
}

}  // namespace

fs::path find_separate(const std::string& option, const fs::path& patchmgr_exe, const fs::path& root) {
  std::error_code ec;
  auto usable = [&](const fs::path& p) { return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0; };
  if (!option.empty()) {
    fs::path p = fs::absolute(option);
    if (!usable(p)) throw Error(ExitCode::usage, fmt::format("--separate {}: no executable file there", option));
    return p;
  }
  if (const char* env = std::getenv("STEMKIT_SEPARATE"); env && *env) {
    fs::path p = fs::absolute(env);
    if (!usable(p)) throw Error(ExitCode::usage, fmt::format("$STEMKIT_SEPARATE={}: no executable file there", env));
    return p;
  }
  std::vector<fs::path> looked;
  if (!patchmgr_exe.empty()) {
    fs::path p = patchmgr_exe.parent_path().parent_path() / "runtime" / "separate" / "separate";
    if (usable(p)) return p;
    looked.push_back(p);
  }
  fs::path best;
  fs::file_time_type newest{};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory(ec) || e.path().filename().string().rfind("build", 0) != 0) continue;
    fs::path p = e.path() / "runtime" / "separate" / "separate";
    if (!usable(p)) continue;
    auto t = fs::last_write_time(p, ec);
    if (best.empty() || t > newest) best = p, newest = t;
  }
  if (!best.empty()) return best;
  std::vector<std::string> shown;
  for (const auto& p : looked) shown.push_back(display_path(p, root));
  shown.push_back("build*/runtime/separate/separate");
  throw Error(ExitCode::usage,
              fmt::format("no separate binary (looked for {}); build it (cmake --build build --target separate, "
                          "docs/runtime.md) or pass --separate PATH",
                          fmt::join(shown, ", ")));
}

fs::path run_bench(const Context& ctx, const Manifest& m, const Fingerprint& fp, const BenchOptions& o) {
  const BenchSpec& spec = m.bench;
  if (!spec.present)
    throw Error(ExitCode::usage, fmt::format("{}: {} has no bench: section; add one (docs/manifest.md, \"Benchmarks\")",
                                             m.name, display_path(m.path, ctx.root)));
  const fs::path root = ctx.root;
  const fs::path separate = find_separate(o.separate, o.patchmgr_exe, root);
  const fs::path work = o.work.empty() ? root / ".bench" / m.name : fs::absolute(o.work);
  fs::create_directories(work);

  // Settings: the options win over the manifest.
  const double seconds = o.seconds.value_or(spec.seconds);
  if (!(seconds > 0)) throw Error(ExitCode::usage, "--seconds: expected a positive number of seconds");
  std::vector<std::string> precisions = o.precisions.empty() ? spec.precisions : split(o.precisions, ',');
  std::vector<std::string> batches;
  if (!o.batch_sizes.empty())
    batches = split(o.batch_sizes, ',');
  else
    for (int b : spec.batch_sizes) batches.push_back(std::to_string(b));
  std::vector<std::string> graphs = o.graphs.empty() ? spec.graphs : split(o.graphs, ',');
  const int repeats = o.repeats.value_or(spec.repeats);
  if (repeats < 1 || repeats > 100)
    throw Error(ExitCode::usage, "--repeats: expected 1 to 100 timed runs per configuration");

  std::map<std::string, std::string> values = spec.vars;
  for (const auto& v : o.vars) {
    auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ExitCode::usage, fmt::format("--var {}: expected NAME=VALUE, like --var deps=/srv/py", v));
    values[v.substr(0, eq)] = v.substr(eq + 1);
  }
  // Vars may refer to these (one level: "{checkout}", never another var).
  std::map<std::string, std::string> early;
  early["root"] = root.string();
  early["work"] = work.string();
  early["checkout"] = m.checkout.string();
  early["python"] = o.python.empty() ? spec.python : o.python;
  early["patchmgr"] = o.patchmgr_exe.string();
  early["component"] = m.name;
  for (auto& [name, value] : values)
    value = expand(value, early, fmt::format("{}: bench.vars.{}", display_path(m.path, root), name));
  for (const auto& [name, value] : early) values[name] = value;
  values["seconds"] = number_text(seconds);
  values["precisions"] = fmt::format("{}", fmt::join(precisions, ","));
  values["batch_sizes"] = fmt::format("{}", fmt::join(batches, ","));
  values["repeats"] = std::to_string(repeats);
  std::map<std::string, std::string> env = spec.env;
  const std::string where = fmt::format("{}: bench", display_path(m.path, root));

  std::string model = expand(o.model.empty() ? spec.model : o.model, values, where + ".model");
  std::string checkpoint = expand(o.checkpoint.empty() ? spec.checkpoint : o.checkpoint, values, where + ".checkpoint");
  values["model"] = model;
  values["checkpoint"] = checkpoint;
  std::error_code ec;
  auto missing = [&] {
    std::vector<std::string> out;
    if (!fs::exists(resolve(root, model), ec)) out.push_back(model);
    if (!checkpoint.empty() && !fs::exists(resolve(root, checkpoint), ec)) out.push_back(checkpoint);
    return out;
  };
  if (!missing().empty()) {
    if (spec.prepare.empty())
      throw Error(
          ExitCode::usage,
          fmt::format("{}: {} does not exist, and bench.prepare is not set to make it; pass --model (and --checkpoint)",
                      m.name, fmt::join(missing(), " and ")));
    run_step(ctx, m, "preparing the model", expand_all(spec.prepare, values, where + ".prepare"), env);
    if (auto still = missing(); !still.empty())
      throw Error(
          ExitCode::failed,
          fmt::format("{}: bench.prepare ran but {} still {} not exist; check bench.model against what it writes",
                      m.name, fmt::join(still, " and "), still.size() == 1 ? "does" : "do"));
  }

  std::string track = o.track.empty() ? expand(spec.track, values, where + ".track") : o.track;
  const bool synthetic = track.empty();
  if (!synthetic && !fs::is_regular_file(resolve(root, track), ec))
    throw Error(ExitCode::usage, fmt::format("{}: the track {} does not exist", m.name, track));
  std::vector<std::string> upstream_argv;
  const fs::path upstream_out = work / fmt::format("upstream-{}.json", ::getpid());
  const fs::path runtime_out = work / fmt::format("separate-{}.json", ::getpid());
  if (o.against_upstream) {
    if (spec.upstream.empty())
      throw Error(ExitCode::usage, fmt::format("{}: --against-upstream, but {} has no bench.upstream command", m.name,
                                               display_path(m.path, root)));
    if (synthetic) {
      if (spec.write_track.empty())
        throw Error(ExitCode::usage, fmt::format("{}: both sides need the same track, and bench.upstream cannot write "
                                                 "one (no bench.write_track); give --track FILE",
                                                 m.name));
      track = (work / fmt::format("track-{}s.wav", number_text(seconds))).string();
    }
    values["track"] = track;
    values["out"] = upstream_out.string();
    upstream_argv = expand_all(spec.upstream, values, where + ".upstream");
    if (synthetic) {
      auto extra = expand_all(spec.write_track, values, where + ".write_track");
      upstream_argv.insert(upstream_argv.end(), extra.begin(), extra.end());
    }
  }
  values["track"] = track;
  values["out"] = upstream_out.string();

  std::vector<std::string> separate_argv = {separate.string(), "--bench"};
  if (!track.empty()) separate_argv.push_back(track);
  separate_argv.insert(separate_argv.end(), {"--model", model});
  if (!checkpoint.empty()) separate_argv.insert(separate_argv.end(), {"--checkpoint", checkpoint});
  if (!precisions.empty()) separate_argv.insert(separate_argv.end(), {"--bench-precisions", values["precisions"]});
  if (!batches.empty()) separate_argv.insert(separate_argv.end(), {"--bench-batch-sizes", values["batch_sizes"]});
  if (!graphs.empty())
    separate_argv.insert(separate_argv.end(), {"--bench-graphs", fmt::format("{}", fmt::join(graphs, ","))});
  if (track.empty()) separate_argv.insert(separate_argv.end(), {"--bench-seconds", values["seconds"]});
  if (repeats > 1) separate_argv.insert(separate_argv.end(), {"--bench-repeats", values["repeats"]});
  auto extra = expand_all(spec.separate_args, values, where + ".separate_args");
  separate_argv.insert(separate_argv.end(), extra.begin(), extra.end());
  separate_argv.insert(separate_argv.end(), {"--json", runtime_out.string()});

  // The upstream first: it writes the synthetic track that separate then reads.
  json upstream;
  if (o.against_upstream) {
    fs::remove(upstream_out, ec);
    run_step(ctx, m, "upstream", upstream_argv, env);
    upstream = read_json(m.name, upstream_out, "the upstream benchmark");
    fs::remove(upstream_out, ec);
  }
  fs::remove(runtime_out, ec);
  run_step(ctx, m, "stemkit", separate_argv, env);
  json runtime = read_json(m.name, runtime_out, "separate --bench");
  fs::remove(runtime_out, ec);

  // What separate says it is (its --version text, in the JSON).
  std::string libtorch, patch_set;
  std::string version =
      runtime.contains("version") && runtime["version"].is_string() ? runtime["version"].get<std::string>() : "";
  for (const auto& line : split(version, '\n')) {
    if (line.rfind("libtorch ", 0) == 0) libtorch = line.substr(9);
    if (line.rfind("patch set ", 0) == 0) patch_set = line.substr(10, line.find_first_of(": ", 10) - 10);
  }
  std::vector<std::string> notes = o.notes;
  if (!patch_set.empty() && patch_set != fp.id) {
    std::string warning = fmt::format(
        "separate was built for patch set {}, the manifests give {}: rebuild it to measure the current patches",
        patch_set, fp.id);
    *ctx.err << fmt::format("patchmgr: {}: warning: {}\n", m.name, warning);
    notes.push_back(warning);
  }
  double track_seconds =
      runtime.contains("seconds") && runtime["seconds"].is_number() ? runtime["seconds"].get<double>() : seconds;
  if (upstream.is_object() && upstream.contains("seconds") && upstream["seconds"].is_number() &&
      std::abs(upstream["seconds"].get<double>() - track_seconds) > 0.01) {
    std::string warning = fmt::format("the upstream side measured {:g} s of audio, separate {:g} s: not the same track",
                                      upstream["seconds"].get<double>(), track_seconds);
    *ctx.err << fmt::format("patchmgr: {}: warning: {}\n", m.name, warning);
    notes.push_back(warning);
  }

  Machine machine = probe_machine(root, runtime);
  machine.label = !o.machine.empty() ? o.machine
                  : !machine.gpu.empty()
                      ? machine.gpu
                      : fmt::format("{}{} cores, no GPU", machine.cpu.empty() ? "" : machine.cpu + ", ", machine.cores);
  std::string slug = machine_slug(!o.machine.empty() ? o.machine : !machine.gpu.empty() ? machine.gpu : "cpu");

  ojson result;
  result["stemkit_bench"] = kResultSchema;
  result["component"] = m.name;
  result["date"] = utc_now("%Y-%m-%d");
  result["time"] = utc_now("%Y-%m-%dT%H:%M:%SZ");
  if (!notes.empty()) result["notes"] = notes;
  result["machine"] = {
      {"label", machine.label}, {"cpu", machine.cpu},       {"cores", machine.cores},          {"os", machine.os},
      {"gpu", machine.gpu},     {"driver", machine.driver}, {"gpu_memory", machine.gpu_memory}};
  result["libtorch"] = libtorch;
  result["fingerprint"] = {{"id", fp.id}, {"summary", fp.summary}, {"component", component_fingerprint(m)}};
  result["runtime_patch_set"] = patch_set;
  result["track"] = {{"path", track.empty() ? std::string("(synthetic, made by separate)") : track},
                     {"seconds", track_seconds},
                     {"synthetic", synthetic}};
  result["repeats"] = repeats;
  std::vector<std::string> commands;
  if (o.against_upstream) commands.push_back(shell_join(upstream_argv));
  commands.push_back(shell_join(separate_argv));
  result["commands"] = commands;
  result["runtime"] = ojson::parse(runtime.dump());
  result["upstream"] = o.against_upstream ? ojson::parse(upstream.dump()) : ojson(nullptr);
  std::string content = result.dump(1) + "\n";
  // Never store what `patchmgr docs` could not read.
  try {
    parse_result(json::parse(content), fs::path("(the new result)"), root);
  } catch (const Error& e) {
    throw Error(ExitCode::failed,
                fmt::format("{}: the benchmark's output is not usable, nothing was recorded: {}", m.name, e.what()));
  }
  fs::path file = write_result_file(root / "docs" / "benchmarks",
                                    fmt::format("{}-{}-{}", result["date"].get<std::string>(), slug, m.name), content);
  size_t upstream_rows = upstream.is_object() && upstream.contains("rows") ? upstream["rows"].size() : 0;
  *ctx.out << fmt::format(
      "{}: wrote {} ({} stemkit row{}{}); `patchmgr docs` renders it into PATCHES.md\n", m.name,
      display_path(file, root), runtime["rows"].size(), runtime["rows"].size() == 1 ? "" : "s",
      o.against_upstream ? fmt::format(", {} upstream row{}", upstream_rows, upstream_rows == 1 ? "" : "s") : "");
  return file;
}

}  // namespace patchmgr::bench
