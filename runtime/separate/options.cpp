#include "runtime/separate/options.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "patchmgr/cli/completions_cli11.h"
#include "runtime/audio/audio.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/error.h"
#include "runtime/separate/naming.h"
#include "runtime/version.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

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
        throw Error("{}: '{}' is not a positive whole number", what, item);
      }
    }
  }
  if (out.empty()) throw Error("{}: empty list", what);
  return out;
}

const std::map<std::string, OtherMethod> kOtherMethods{
    {"add", OtherMethod::add}, {"minus", OtherMethod::minus}, {"none", OtherMethod::none}};
const std::map<std::string, audio::Clip> kClipModes{{"rescale", audio::Clip::rescale},
                                                    {"clamp", audio::Clip::clamp},
                                                    {"tanh", audio::Clip::tanh},
                                                    {"none", audio::Clip::none}};

// What the table's options write before they become a CommandLine.
struct Raw {
  std::vector<std::string> files;
  std::optional<std::string> inputs_from, model_dir, out, attention;
  double segment = 0;
  bool flac = false, int24 = false, float32 = false, no_graphs = false;
  std::string device = "auto", precision = "auto";
  std::string fused_kernels = "on", gemm = "auto";
  std::string bench_batches = "1", bench_precisions, bench_graphs = "on";
};

// The table: every option, its flags, help, environment variable and group.
void add_options(CLI::App& app, CommandLine& c, Raw& r) {
  RunnerOptions& o = c.run;
  app.add_option("files", r.files, "Audio files (WAV, FLAC, OGG, MP3)");
  app.add_option("--inputs-from", r.inputs_from, "A file listing inputs, one per line ('#' comments)");

  const char* model = "Model";
  app.add_option("-n,--name,--model", o.model,
                 "htdemucs, htdemucs_ft, htdemucs_6s, a member signature, a .th file, or an MSST .yaml (BS-RoFormer)")
      ->capture_default_str()
      ->group(model);
  app.add_option("--checkpoint", o.checkpoint,
                 "The weights (.ckpt, .pt, .safetensors) of an MSST config given with -n config.yaml")
      ->group(model);
  app.add_option("--model-dir", r.model_dir,
                 "Model cache (default $STEMKIT_MODEL_DIR, else $XDG_CACHE_HOME/stemkit/models)")
      ->group(model);
  app.add_flag("--download", o.download, "Fetch missing model files (checked against their sha256)")->group(model);
  app.add_flag("--list-models", c.list_models, "List the models this runner knows and exit")->group(model);

  const char* run = "Separation";
  app.add_option("-d,--device", r.device, "cpu, cuda, cuda:N or auto")->capture_default_str()->group(run);
  app.add_option("--precision", r.precision,
                 "fp32, fp16 (GPU), bf16, or auto: fp16 on a GPU for an MSST config with training.use_amp (MSST's "
                 "autocast), else fp32")
      ->capture_default_str()
      ->group(run);  // parse_precision says what it expects
  app.add_option("-b,--batch-size", o.separation.batch_size,
                 "Segments per forward (default 1; an MSST config's inference.batch_size)")
      ->check(CLI::PositiveNumber)
      ->group(run);
  app.add_option("--segment", r.segment, "Seconds per segment (at most the model's; default the model's)")
      ->check(CLI::PositiveNumber)
      ->group(run);
  app.add_option("--overlap", o.separation.overlap, "Overlap between segments")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99))
      ->group(run);
  app.add_option("--shifts", o.separation.shifts, "Random shifts averaged (demucs' default 1)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber)
      ->group(run);
  app.add_option("--seed", o.separation.seed, "Seed of the shift offsets")->capture_default_str()->group(run);
  app.add_flag(
         "--tta", o.separation.tta,
         "MSST configs: test-time augmentation as MSST's --use_tta (channels swapped, polarity inverted; 3x the time)")
      ->group(run);
  app.add_flag("--no-graphs", r.no_graphs, "Run eagerly: no CUDA/HIP graph capture")->group(run);
  app.add_flag("--low-memory", o.low_memory,
               "Least GPU memory: batch 1, no graph capture (its memory pool), 60 s streaming windows")
      ->group(run);
  app.add_flag(
         "--cudnn-benchmark", o.cudnn_benchmark,
         "Let cuDNN time its algorithms for the static shape (seconds at the first file; no gain measured on the H100)")
      ->group(run);
  app.add_option("-j,--jobs", o.jobs, "CPU threads (default: libtorch's)")->check(CLI::NonNegativeNumber)->group(run);

  const char* exec = "Execution (what --explain shows; docs/benchmarks.md measures each choice)";
  app.add_flag("--explain", c.explain, "Print the execution plan (with --json FILE: as JSON) and exit")->group(exec);
  app.add_option("--attention", r.attention, "Force an attention backend: auto, flash, efficient, cudnn, math")
      ->envname("STEMKIT_ATTENTION")
      ->check(CLI::IsMember({"auto", "flash", "efficient", "cudnn", "math"}))
      ->group(exec);
  app.add_option("--fused-kernels", r.fused_kernels, "on: stemkit's RoFormer kernels where they run; off: ATen's")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}))
      ->group(exec);
  app.add_flag("--seq-kernel", o.kernels.seq_kernel,
               "The fused attention kernel for long axes too (RoFormer time axis: less memory, same speed on the H100)")
      ->group(exec);
  app.add_option("--gemm", r.gemm, "auto: cuBLASLt where it runs (CUDA fp16/bf16); aten: ATen's GEMMs")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "aten"}))
      ->group(exec);
  app.add_flag("--exact-gelu", o.kernels.exact_gelu,
               "erf GELU in fp16/bf16 on a GPU too (default there: tanh GELU in the GEMM, within 4.7e-4)")
      ->group(exec);
  app.add_flag("--reference-forward", o.kernels.reference_forward,
               "Every block's forward as upstream writes it (RoFormer blocks; HTDemucs' DConv, norms, LayerScale), "
               "none of the fast paths (slower; for checking them)")
      ->group(exec);

  const char* out = "Output";
  app.add_option("-o,--out", r.out, "Output root; stems go to OUT/<model>/ (default separated)")->group(out);
  app.add_option("--filename", o.filename, "Stem path template: {track} {trackext} {stem} {ext}")
      ->capture_default_str()
      ->group(out);
  app.add_option("--two-stems", o.two_stems, "Only STEM and the rest (no_STEM)")->group(out);
  app.add_option("--other-method", o.other_method,
                 "With --two-stems: add (sum of the others), minus (mix - STEM), none")
      ->transform(CLI::CheckedTransformer(kOtherMethods))
      ->default_str("add")
      ->group(out);
  app.add_option("--format", o.format, "wav or flac")
      ->capture_default_str()
      ->check(CLI::IsMember({"wav", "flac"}))
      ->group(out);
  app.add_flag("--flac", r.flac, "Same as --format flac")->group(out);
  app.add_flag("--int24", r.int24, "24-bit samples")->group(out);
  app.add_flag("--float32", r.float32, "32-bit float samples (WAV)")->group(out);
  app.add_option("--clip-mode", o.clip, "rescale, clamp, tanh or none")
      ->transform(CLI::CheckedTransformer(kClipModes))
      ->default_str("rescale")
      ->group(out);
  app.add_flag("--keep-samplerate", o.keep_samplerate, "Write stems at the input's sample rate, not the model's")
      ->group(out);
  app.add_flag("--skip-existing", o.skip_existing, "Skip inputs whose stems all exist (resume a batch)")->group(out);
  app.add_option("--json", c.json_path, "Write a JSON summary to FILE ('-': stdout)")->group(out);
  app.add_flag("-q,--quiet", o.quiet, "No progress bars or per-file lines")->group(out);

  bench::BenchOptions& bench = c.bench;
  const char* b = "Benchmark";
  app.add_flag("--bench", c.bench_mode, "Measure speed and GPU memory instead of writing stems")->group(b);
  app.add_option("--bench-seconds", bench.seconds, "Length of the synthetic track (no FILE given)")
      ->capture_default_str()
      ->group(b);
  app.add_option("--bench-batch-sizes", r.bench_batches, "Comma-separated batch sizes")
      ->capture_default_str()
      ->group(b);
  app.add_option("--bench-precisions", r.bench_precisions, "Comma-separated precisions (default --precision)")
      ->group(b);
  app.add_option("--bench-graphs", r.bench_graphs, "on, off or on,off")->capture_default_str()->group(b);
  app.add_option("--bench-repeats", bench.repeats, "Timed runs per row (the median is shown)")
      ->capture_default_str()
      ->group(b);
  app.add_flag("--bench-low-memory", bench.low_memory,
               "Also a row per precision as --low-memory runs (batch 1, no graphs, stems back every 60 s)")
      ->group(b);
  app.add_option("--bench-trace", bench.trace,
                 "Also trace each row's GPU kernels (CUDA/ROCm builds) into PREFIX-<row>.json; "
                 "tools/bench/trace_summary.py sums them up")
      ->type_name("PREFIX")
      ->group(b);
}

// What the options mean together; throws stemkit::Error for a usage error.
void finish(const CLI::App& app, CommandLine& c, Raw& r) {
  RunnerOptions& o = c.run;
  o.env = read_environment();
  o.device = parse_device(r.device);
  if (r.precision != "auto") o.precision = parse_precision(r.precision, o.device);
  if (r.model_dir) o.model_dir = *r.model_dir;
  if (r.out) o.out = *r.out;
  if (r.segment > 0) o.separation.segment = r.segment;
  if (r.flac) o.format = "flac";
  if (r.int24 && r.float32) throw Error("--int24 and --float32 exclude each other");
  o.encoding = r.int24 ? audio::Encoding::pcm24 : r.float32 ? audio::Encoding::float32 : audio::Encoding::pcm16;
  if (o.format == "flac" && r.float32)
    throw Error("FLAC holds 16- or 24-bit samples: drop --float32, or write --format wav");
  o.separation.graphs = !r.no_graphs;
  o.batch_size_given = app.count("--batch-size") > 0;
  if (o.low_memory) {
    if (o.batch_size_given && o.separation.batch_size != 1)
      throw Error("--low-memory runs batch 1; drop --batch-size or --low-memory");
    apply_low_memory(o.separation);
  }
  if (r.attention && *r.attention != "auto") o.kernels.attention = attention::parse_backend(*r.attention);
  o.kernels.fused_kernels = r.fused_kernels == "on";
  o.kernels.aten_gemm = r.gemm == "aten";

  c.inputs.assign(r.files.begin(), r.files.end());
  if (r.inputs_from)
    for (auto& p : read_input_list(*r.inputs_from)) c.inputs.push_back(p);
  if (c.list_models) return;
  if (c.bench_mode) {
    bench::BenchOptions& bench = c.bench;
    if (c.inputs.size() > 1) throw Error("--bench takes at most one FILE");
    if (!c.inputs.empty()) bench.input = c.inputs.front();
    if (!bench.trace.empty() && !bench::kernel_trace_supported())
      throw Error(
          "--bench-trace: this build of separate has no GPU support (build it against a CUDA or ROCm libtorch)");
    bench.batch_sizes = split_list<int64_t>(r.bench_batches, "--bench-batch-sizes");
    // Every precision this device cannot run is a usage error before any row is measured.
    bench.precisions.clear();
    if (!r.bench_precisions.empty()) {
      for (const auto& p : split_list<std::string>(r.bench_precisions, "--bench-precisions")) {
        if (p == "auto")
          throw Error("--bench-precisions: name the precisions (fp32, fp16, bf16); auto is --precision's");
        if (p != "fp32" && p != "fp16" && p != "bf16")
          throw Error("--bench-precisions: {}: expected fp32, fp16 or bf16", p);
        const at::ScalarType dtype = parse_precision(p, o.device);
        if (std::find(bench.precisions.begin(), bench.precisions.end(), dtype) != bench.precisions.end())
          throw Error("--bench-precisions: {} twice", p);
        bench.precisions.push_back(dtype);
      }
    } else if (o.precision) {
      bench.precisions = {*o.precision};
    }  // else the loaded model's (auto)
    bench.graphs.clear();
    for (const auto& g : split_list<std::string>(r.bench_graphs, "--bench-graphs")) {
      if (g != "on" && g != "off") throw Error("--bench-graphs: expected on, off or on,off");
      bench.graphs.push_back(g == "on");
    }
    if (!bench.precisions.empty()) o.precision = bench.precisions.front();
    if (o.separation.tta) throw Error("--tta with --bench: measure without it (it runs the model three times)");
  } else if (c.inputs.empty() && !c.explain) {
    throw Error("no input files: give audio files, or --inputs-from LIST (see --help)");
  }
  for (const auto& p : c.inputs)
    if (!fs::is_regular_file(p)) throw Error("{}: no such file", p.string());
}

}  // namespace

Environment read_environment() {
  auto get = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  return {get("STEMKIT_MODEL_DIR"), get("XDG_CACHE_HOME"), get("HOME")};
}

ParsedCommandLine parse_command_line(int argc, char** argv) {
  CLI::App app{"separate: split songs into stems with HTDemucs, natively (stemkit)"};
  app.set_version_flag("--version", version_text());
  CommandLine c;
  Raw r;
  add_options(app, c, r);
  // Hidden: --completions bash|zsh prints shell completions made from the table (cmake/install.cmake installs them).
  cli::add_completions_option(app, "separate");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return {std::nullopt, app.exit(e)};
    std::fprintf(stderr, "separate: %s (see --help)\n", e.what());
    return {std::nullopt, 2};
  }
  try {
    finish(app, c, r);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "separate: %s\n", e.what());
    return {std::nullopt, 2};
  }
  return {std::move(c), 0};
}

}  // namespace stemkit::separate
