// separate: songs in, stems out, with HTDemucs running natively (libtorch, no
// Python). The options are demucs' own where demucs has one.
//
//   separate song.wav                         # htdemucs, four stems under separated/htdemucs/song/
//   separate -n htdemucs_ft --download *.flac # fetch the model once, then many files in one run
//   separate --bench --bench-batch-sizes 1,4 --bench-precisions fp32,fp16
#include <CLI/CLI.hpp>

#include <ATen/Parallel.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <execinfo.h>
#include <fstream>
#include <unistd.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runtime/attention/attention.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/separate/error.h"
#include "runtime/separate/model_catalog.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/runner.h"
#include "runtime/version.h"

namespace {

namespace fs = std::filesystem;

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
using namespace stemkit::separate;

template <class T>
std::vector<T> split_list(const std::string& text, const char* what) {
  std::vector<T> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if constexpr (std::is_same_v<T, std::string>) {
      out.push_back(item);
    } else {
      try {
        size_t used = 0;
        long long v = std::stoll(item, &used);
        if (used != item.size() || v <= 0) throw std::invalid_argument(item);
        out.push_back(static_cast<T>(v));
      } catch (const std::exception&) {
        throw SeparateError(std::string(what) + ": '" + item + "' is not a positive whole number");
      }
    }
  }
  if (out.empty()) throw SeparateError(std::string(what) + ": empty list");
  return out;
}

// Writes `text` to `path` ("-": stdout) through a temporary file, so a
// crash never leaves half a summary.
void write_json(const std::string& path, const nlohmann::json& j) {
  if (path == "-") {
    std::cout << j.dump(1) << "\n";
    return;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(1) << "\n";
    if (!out) throw SeparateError(path + ": cannot write the JSON summary");
  }
  fs::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"separate: split songs into stems with HTDemucs, natively (stemkit)"};
  app.set_version_flag("--version", stemkit::version_text());
  RunnerOptions o;
  std::vector<std::string> files;
  std::optional<std::string> inputs_from, json_path, model_dir, out;
  double segment = 0;
  bool flac = false, int24 = false, float32 = false, no_graphs = false, list_models = false, low_memory = false;

  app.add_option("files", files, "Audio files (WAV, FLAC, OGG, MP3)");
  app.add_option("--inputs-from", inputs_from, "A file listing inputs, one per line ('#' comments)");
  auto* model_group = "Model";
  app.add_option("-n,--name,--model", o.model,
                 "htdemucs, htdemucs_ft, htdemucs_6s, a member signature, a .th file, or an MSST .yaml (BS-RoFormer)")
      ->capture_default_str()->group(model_group);
  app.add_option("--checkpoint", o.checkpoint, "The weights (.ckpt, .pt, .safetensors) of an MSST config given with -n config.yaml")
      ->group(model_group);
  app.add_option("--model-dir", model_dir, "Model cache (default $STEMKIT_MODEL_DIR, else $XDG_CACHE_HOME/stemkit/models)")
      ->group(model_group);
  app.add_flag("--download", o.download, "Fetch missing model files (checked against their sha256)")->group(model_group);
  app.add_flag("--list-models", list_models, "List the models this runner knows and exit")->group(model_group);

  auto* run_group = "Separation";
  app.add_option("-d,--device", o.device, "cpu, cuda, cuda:N or auto")->capture_default_str()->group(run_group);
  app.add_option("--precision", o.precision,
                 "fp32, fp16 (GPU), bf16, or auto: fp16 on a GPU for an MSST config with training.use_amp (MSST's "
                 "autocast), else fp32")
      ->capture_default_str()
      ->group(run_group);
  app.add_option("-b,--batch-size", o.separation.batch_size,
                 "Segments per forward (default 1; an MSST config's inference.batch_size)")
      ->check(CLI::PositiveNumber)->group(run_group);
  app.add_option("--segment", segment, "Seconds per segment (at most the model's; default the model's)")
      ->check(CLI::PositiveNumber)->group(run_group);
  app.add_option("--overlap", o.separation.overlap, "Overlap between segments")->capture_default_str()
      ->check(CLI::Range(0.0, 0.99))->group(run_group);
  app.add_option("--shifts", o.separation.shifts, "Random shifts averaged (demucs' default 1)")->capture_default_str()
      ->check(CLI::NonNegativeNumber)->group(run_group);
  app.add_option("--seed", o.separation.seed, "Seed of the shift offsets")->capture_default_str()->group(run_group);
  app.add_flag("--tta", o.separation.tta,
               "MSST configs: test-time augmentation as MSST's --use_tta (channels swapped, polarity inverted; 3x the time)")
      ->group(run_group);
  app.add_flag("--no-graphs", no_graphs, "Run eagerly: no CUDA/HIP graph capture")->group(run_group);
  app.add_flag("--low-memory", low_memory,
               "Least GPU memory: batch 1, no graph capture (its memory pool), 60 s streaming windows")
      ->group(run_group);
  app.add_flag("--cudnn-benchmark", o.cudnn_benchmark,
               "Let cuDNN time its algorithms for the static shape (seconds at the first file; no gain measured on the H100)")
      ->group(run_group);
  app.add_option("--attention", o.attention, "Force an attention backend: flash, efficient, cudnn, math")->group(run_group);
  app.add_option("-j,--jobs", o.jobs, "CPU threads (default: libtorch's)")->check(CLI::NonNegativeNumber)->group(run_group);

  auto* out_group = "Output";
  app.add_option("-o,--out", out, "Output root; stems go to OUT/<model>/ (default separated)")->group(out_group);
  app.add_option("--filename", o.filename, "Stem path template: {track} {trackext} {stem} {ext}")->capture_default_str()
      ->group(out_group);
  app.add_option("--two-stems", o.two_stems, "Only STEM and the rest (no_STEM)")->group(out_group);
  app.add_option("--other-method", o.other_method, "With --two-stems: add (sum of the others), minus (mix - STEM), none")
      ->capture_default_str()->group(out_group);
  app.add_option("--format", o.format, "wav or flac")->capture_default_str()->group(out_group);
  app.add_flag("--flac", flac, "Same as --format flac")->group(out_group);
  app.add_flag("--int24", int24, "24-bit samples")->group(out_group);
  app.add_flag("--float32", float32, "32-bit float samples (WAV)")->group(out_group);
  app.add_option("--clip-mode", o.clip_mode, "rescale, clamp, tanh or none")->capture_default_str()->group(out_group);
  app.add_flag("--keep-samplerate", o.keep_samplerate, "Write stems at the input's sample rate, not the model's")
      ->group(out_group);
  app.add_flag("--skip-existing", o.skip_existing, "Skip inputs whose stems all exist (resume a batch)")->group(out_group);
  app.add_option("--json", json_path, "Write a JSON summary to FILE ('-': stdout)")->group(out_group);
  app.add_flag("-q,--quiet", o.quiet, "No progress bars or per-file lines")->group(out_group);

  BenchOptions bench;
  bool bench_mode = false;
  std::string bench_batches = "1", bench_precisions, bench_graphs = "on";
  auto* bench_group = "Benchmark";
  app.add_flag("--bench", bench_mode, "Measure speed and GPU memory instead of writing stems")->group(bench_group);
  app.add_option("--bench-seconds", bench.seconds, "Length of the synthetic track (no FILE given)")
      ->capture_default_str()->group(bench_group);
  app.add_option("--bench-batch-sizes", bench_batches, "Comma-separated batch sizes")->capture_default_str()->group(bench_group);
  app.add_option("--bench-precisions", bench_precisions, "Comma-separated precisions (default --precision)")->group(bench_group);
  app.add_option("--bench-graphs", bench_graphs, "on, off or on,off")->capture_default_str()->group(bench_group);
  app.add_option("--bench-repeats", bench.repeats, "Timed runs per row (the median is shown)")->capture_default_str()
      ->group(bench_group);
  app.add_flag("--bench-low-memory", bench.low_memory,
               "Also a row per precision as --low-memory runs (batch 1, no graphs, stems back every 60 s)")
      ->group(bench_group);
  app.add_option("--bench-trace", bench.trace,
                 "Also trace each row's GPU kernels (CUDA/ROCm builds) into PREFIX-<row>.json; "
                 "tools/bench/trace_summary.py sums them up")
      ->type_name("PREFIX")->group(bench_group);

  CLI11_PARSE(app, argc, argv);
  std::signal(SIGSEGV, on_crash);
  std::signal(SIGABRT, on_crash);
  try {
    if (list_models) {
      for (const auto& m : catalog())
        std::printf("%-12s %s\n", m.name.c_str(), m.description.c_str());
      return 0;
    }
    if (model_dir) o.model_dir = *model_dir;
    if (out) o.out = *out;
    if (segment > 0) o.separation.segment = segment;
    if (flac) o.format = "flac";
    if (int24 && float32) throw SeparateError("--int24 and --float32 exclude each other");
    o.encoding = int24 ? "pcm24" : float32 ? "float32" : "pcm16";
    o.separation.graphs = !no_graphs;
    if (low_memory) {
      if (app.count("--batch-size") && o.separation.batch_size != 1)
        throw SeparateError("--low-memory runs batch 1; drop --batch-size or --low-memory");
      apply_low_memory(o.separation);
    }
    if (o.jobs > 0) at::set_num_threads(o.jobs);
    if (o.attention) {
      auto backend = stemkit::attention::parse_backend(*o.attention);
      if (!backend) throw SeparateError("--attention " + *o.attention + ": expected auto, flash, efficient, cudnn or math");
      stemkit::attention::set_override(*backend);
    }

    std::vector<fs::path> inputs(files.begin(), files.end());
    if (inputs_from)
      for (auto& p : read_input_list(*inputs_from)) inputs.push_back(p);
    if (bench_mode) {
      if (inputs.size() > 1) throw SeparateError("--bench takes at most one FILE");
      if (!inputs.empty()) bench.input = inputs.front();
      if (!bench.trace.empty() && !stemkit::bench::kernel_trace_supported())
        throw SeparateError("--bench-trace: this build of separate has no GPU support (build it against a CUDA or ROCm libtorch)");
      bench.batch_sizes = split_list<int64_t>(bench_batches, "--bench-batch-sizes");
      bench.precisions = split_list<std::string>(bench_precisions.empty() ? o.precision : bench_precisions, "--bench-precisions");
      std::set<std::string> seen;
      for (const auto& p : bench.precisions) {
        if (p == "auto" && !bench_precisions.empty())
          throw SeparateError("--bench-precisions: name the precisions (fp32, fp16, bf16); auto is --precision's");
        if (!seen.insert(p).second) throw SeparateError("--bench-precisions: " + p + " twice");
      }
      bench.graphs.clear();
      for (const auto& g : split_list<std::string>(bench_graphs, "--bench-graphs")) {
        if (g != "on" && g != "off") throw SeparateError("--bench-graphs: expected on, off or on,off");
        bench.graphs.push_back(g == "on");
      }
      o.precision = bench.precisions.front();
    } else if (inputs.empty()) {
      throw SeparateError("no input files: give audio files, or --inputs-from LIST (see --help)");
    }
    for (const auto& p : inputs)
      if (!fs::is_regular_file(p)) throw SeparateError(p.string() + ": no such file");

    if (bench_mode && o.separation.tta) throw SeparateError("--tta with --bench: measure without it (it runs the model three times)");
    // The first song is read while the model loads.
    std::optional<ReadAhead> first;
    if (!bench_mode) first = read_ahead(inputs.front());
    LoadedModel model = load_model(o);
    // MSST runs a config at its inference.batch_size; -b (or --low-memory) says otherwise.
    if (!bench_mode && model.config_batch_size > 0 && !app.count("--batch-size") && !low_memory)
      o.separation.batch_size = model.config_batch_size;
    if (bench_mode) {
      nlohmann::json result = run_bench(model, o, bench);
      if (json_path) write_json(*json_path, result);
      return 0;
    }
    if (!o.quiet)
      std::fprintf(stderr, "separate: %s on %s in %s%s, loaded in %.1f s\n", model.name.c_str(), model.device.str().c_str(),
                   precision_name(model.dtype), o.precision == "auto" ? " (--precision auto)" : "", model.load_s);
    int failed = 0;
    nlohmann::json summary = {{"model", model.name},
                              {"load_s", model.load_s},
                              {"to_device_s", model.to_device_s},
                              {"device", model.device.str()},
                              {"precision", precision_name(model.dtype)},
                              {"version", stemkit::version_text()}};
    summary["files"] = separate_files(model, inputs, o, failed, first ? &*first : nullptr);
    if (json_path) write_json(*json_path, summary);
    if (failed) std::fprintf(stderr, "separate: %d of %zu files failed\n", failed, inputs.size());
    return failed ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "separate: %s\n", error_text(e).c_str());
    return 2;
  }
}
