// separate: songs in, stems out, with HTDemucs running natively (libtorch, no
// Python). The options are demucs' own where demucs has one.
//
//   separate song.wav                         # htdemucs, four stems under separated/htdemucs/song/
//   separate -n htdemucs_ft --download *.flac # fetch the model once, then many files in one run
//   separate --bench --bench-batch-sizes 1,4 --bench-precisions fp32,fp16
#include <ATen/Parallel.h>

#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <execinfo.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "runtime/bench/separate_bench.h"
#include "runtime/error.h"
#include "runtime/separate/catalog_run.h"
#include "runtime/separate/device_pool.h"
#include "runtime/separate/ensemble_runner.h"
#include "runtime/separate/model_catalog.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/openmp_wait.h"
#include "runtime/separate/options.h"
#include "runtime/separate/runner.h"
#include "runtime/timeline.h"
#include "runtime/version.h"

namespace {

namespace fs = std::filesystem;
using namespace stemkit::separate;
namespace timeline = stemkit::timeline;

// A crash prints where it happened (function names: the binary exports its
// symbols) instead of a bare "Segmentation fault".
void on_crash(int signal) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  const char* head = "separate: crashed; backtrace follows (please report it)\n";
  (void)!write(2, head, std::strlen(head));
  backtrace_symbols_fd(frames, n, 2);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

// Writes `j` to `path` ("-": stdout) through a temporary file, so a crash
// never leaves half a summary.
void write_json(const std::string& path, const nlohmann::json& j) {
  if (path == "-") {
    std::cout << j.dump(1) << "\n";
    return;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
    if (!out) throw stemkit::Error("{}: cannot write the JSON summary", path);
  }
  fs::rename(tmp, path);
}

// --json FILE is checked before any work: a run of hours must not end unable
// to write its summary. The check writes and removes FILE.tmp, the file
// write_json writes first.
void check_json_writable(const std::optional<std::string>& path) {
  if (!path || *path == "-") return;
  const std::string tmp = *path + ".tmp";
  {
    std::ofstream probe(tmp);
    if (!probe)
      throw stemkit::Error(
          "--json {}: cannot write there ({}); "
          "give a file in a directory that exists and is writable, or '-' for stdout",
          *path, std::strerror(errno));
  }
  fs::remove(tmp);
}

// The model's name in output paths, as load_model will name it, known before
// it loads: the catalog's records are opened before any work.
std::string model_output_name(const RunnerOptions& o) {
  switch (model_kind(o.model)) {
    case ModelKind::msst_config: return output_model_name(o.checkpoint ? *o.checkpoint : o.model);
    case ModelKind::demucs_file: return output_model_name(o.model);
    default: return require_model(o.model).name;
  }
}

// --summarize DIR: the report on stdout (--quiet: only what failed or is
// missing, on stderr), --json FILE as JSON; exit 0 when the catalog is complete.
int summarize(const CommandLine& c) {
  std::vector<std::string> warnings;
  const CatalogReport report = summarize_catalog(*c.summarize, &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "separate: %s\n", w.c_str());
  if (c.json_path) write_json(*c.json_path, report.json);
  const std::string text = catalog_report_text(report);
  if (!c.run.quiet) {
    if (c.json_path != "-") std::fputs(text.c_str(), stdout);
  } else {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("failed: ", 0) == 0 || line.rfind("missing: ", 0) == 0)
        std::fprintf(stderr, "separate: %s\n", line.c_str());
  }
  return report.complete ? 0 : 1;
}

int run(int argc, char** argv) {
  ParsedCommandLine parsed = parse_command_line(argc, argv);
  if (!parsed.line) return parsed.exit_code;
  timeline::mark("command line parsed");
  CommandLine& c = *parsed.line;
  RunnerOptions& o = c.run;
  std::signal(SIGSEGV, on_crash);
  std::signal(SIGABRT, on_crash);
  try {
    if (c.list_models) {
      std::fputs(model_list_text().c_str(), stdout);
      return 0;
    }
    if (c.summarize) return summarize(c);
    // What the inputs came to, before the model loads: the count, and any file given twice.
    for (const auto& d : c.input_duplicates) std::fprintf(stderr, "separate: %s\n", d.c_str());
    if (!o.quiet && !c.bench_mode && !c.explain) {
      for (const auto& f : c.input_folders) std::fprintf(stderr, "separate: %s\n", f.c_str());
      if (c.shard)
        std::fprintf(stderr, "separate: shard %d/%d: %zu of the %zu files (by their paths under %s)\n", c.shard->index,
                     c.shard->count, c.inputs.size(), c.listed, c.shard_root.c_str());
      else if (!c.input_folders.empty() || c.inputs.size() > 1)
        std::fprintf(stderr, "separate: %zu file%s to separate\n", c.inputs.size(), c.inputs.size() == 1 ? "" : "s");
    }
    // The catalog's record file is opened, and the run's line written, before any work.
    std::optional<CatalogRecorder> recorder;
    try {
      check_json_writable(c.json_path);
      if (c.record && !c.bench_mode && !c.explain)
        recorder.emplace(
            catalog_record_path(output_root(o.out, model_output_name(o)), c.shard),
            CatalogRecorder::Run{c.shard, c.shard_root, c.inputs, c.listed, std::vector<std::string>(argv, argv + argc),
                                 stemkit::version_text(), stemkit::patchset_id()});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "separate: %s\n", error_text(e).c_str());
      return 2;
    }
    if (c.inputs.empty() && !c.bench_mode && !c.explain) return 0;  // a shard with no file of the catalog
    if (o.jobs > 0) at::set_num_threads(o.jobs);
    // The first song is read while the model loads.
    std::optional<ReadAhead> first;
    if (!c.bench_mode && !c.explain) first = read_ahead(c.inputs.front());
    // One model per device of --device (--explain: the first's plan, with the list).
    std::vector<LoadedModel> models = load_on_devices(c.devices, o, c.ensemble, c.explain);
    LoadedModel& model = models.front();
    if (c.devices.size() > 1) model.plan.devices = devices_reason(c.devices, c.devices_given, o.jobs);
    if (model.device.is_cpu())
      model.plan.cpu_threads = cpu_threads_reason(o.env, cpu_threads_per_model(o.jobs, models.size()));
    // Said even with --quiet, which silences progress, not what the user must know.
    for (const auto& w : model.warnings) std::fprintf(stderr, "separate: %s\n", w.c_str());
    if (c.explain) {
      probe_call_shapes(model, o);
      if (c.json_path)
        write_json(*c.json_path, model.plan.to_json());
      else
        std::printf("%s", model.plan.explain().c_str());
      return 0;
    }
    if (c.bench_mode) {
      nlohmann::json result = stemkit::bench::run_bench(model, o, c.bench);
      if (c.json_path) write_json(*c.json_path, result);
      return 0;
    }
    std::string devices;                 // "cuda:0", "cuda:0,cuda:1"
    double load_s = 0, to_device_s = 0;  // the slowest device's (they load at the same time)
    nlohmann::json per_device = nlohmann::json::array();
    for (const auto& m : models) {
      devices += (devices.empty() ? "" : ",") + m.device.str();
      load_s = std::max(load_s, m.load_s);
      to_device_s = std::max(to_device_s, m.to_device_s);
      per_device.push_back({{"device", m.device.str()}, {"load_s", m.load_s}, {"to_device_s", m.to_device_s}});
    }
    if (!o.quiet)
      std::fprintf(stderr, "separate: %s on %s in %s%s, loaded in %.1f s\n", model.name.c_str(), devices.c_str(),
                   precision_name(model.dtype), o.precision ? "" : " (--precision auto)", load_s);
    int failed = 0;
    nlohmann::json summary = {{"model", model.name},
                              {"load_s", load_s},
                              {"to_device_s", to_device_s},
                              {"device", devices},
                              {"precision", precision_name(model.dtype)},
                              {"version", stemkit::version_text()}};
    if (models.size() > 1) summary["devices"] = per_device;
    TrackDone on_track;
    if (recorder) {
      recorder->set_model(model.name, model.files, precision_name(model.dtype), devices, stem_set_settings(model, o));
      on_track = [&](const nlohmann::json& entry) { recorder->track(entry); };
    }
    summary["files"] = separate_on_devices(models, c.inputs, o, failed, first ? &*first : nullptr, on_track);
    summary["plan"] = model.plan.to_json();
    if (!c.ensemble.members.empty()) summary["ensemble"] = ensemble_summary(model);
    summary["timeline"] = timeline::to_json();
    if (c.json_path) write_json(*c.json_path, summary);
    if (failed) std::fprintf(stderr, "separate: %d of %zu files failed\n", failed, c.inputs.size());
    return failed || (recorder && !recorder->error().empty()) ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "separate: %s\n", error_text(e).c_str());
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_passive_openmp(read_environment(), argv);
  timeline::start();
  const int code = run(argc, argv);
  // Every file the run wrote is closed and renamed into place by now (run's
  // objects are gone). What is left to tear down is libtorch's and the GPU
  // driver's process state, which the kernel frees anyway: the user does not
  // wait for it (docs/benchmarks.md, "The whole song").
  std::fflush(nullptr);
  std::_Exit(code);
}
