#include "runtime/separate/options.h"
#include "runtime/separate/model_cache.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "patchmgr/cli/completions_cli11.h"
#include "runtime/audio/audio.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/error.h"
#include "runtime/separate/device_pool.h"
#include "runtime/separate/ensemble.h"
#include "runtime/separate/inputs.h"
#include "runtime/separate/model_catalog.h"
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

// Which models an option means something for (docs/cli.md, "Options per
// model"): given for another, it is a usage error naming the option and the
// model. Declared with the option, in the table.
struct Scope {
  const CLI::Option* option;
  const char* not_demucs = nullptr;     // why it means nothing for a demucs model; null: it means something
  const char* not_msst = nullptr;       // the same for an MSST configuration
  bool needs_name = false;              // only for a model named from the catalog (not given as a file)
  const char* not_msst_name = nullptr;  // besides not_msst, why it means nothing for a RoFormer of the catalog
};

// What the table's options write before they become a CommandLine.
struct Raw {
  std::vector<std::string> files;
  std::vector<std::string> models, checkpoints;  // -n and --checkpoint, each repeatable (ensembles)
  std::optional<std::string> ensemble, weights;
  std::optional<std::string> inputs_from, model_dir, out, attention;
  std::optional<double> segment, overlap;
  std::optional<int64_t> chunk_size, mdxc_segment_size, num_overlap;
  std::vector<Scope> scopes;
  bool flac = false, mp3 = false, int24 = false, float32 = false, no_graphs = false;
  int bitrate = 0, mp3_bitrate = 0;
  std::string device = "auto", precision = "auto";
  std::string fused_kernels = "on", gemm = "auto";
  std::string bench_batches = "1", bench_precisions, bench_graphs = "on";
  std::optional<std::string> shard, shard_root, summarize;
};

// The table: every option, its flags, help, environment variable and group.
void add_options(CLI::App& app, CommandLine& c, Raw& r) {
  RunnerOptions& o = c.run;
  auto only_msst = [&](CLI::Option* option, const char* why) { r.scopes.push_back({option, why, nullptr, false}); };
  auto only_demucs = [&](CLI::Option* option, const char* why) { r.scopes.push_back({option, nullptr, why, false}); };
  const char* roformer_kernels =
      "it chooses the RoFormer layers' kernels; HTDemucs has none of them (--reference-forward switches off its fast "
      "paths)";
  app.add_option(
      "files", r.files,
      "Audio or video files (WAV, FLAC, MP3, M4A, Opus, ...: what FFmpeg reads), folders (their audio files, "
      "recursively), or - for a list of them on stdin");
  app.add_option("--inputs-from", r.inputs_from,
                 "A file listing inputs (files or folders), one per line ('#' comments; '-': stdin)");

  const char* model = "Model";
  app.add_option("-n,--name,--model", r.models,
                 "A model of --list-models (htdemucs, model_bs_roformer_ep_317_sdr_12.9755, ...), a member signature, "
                 "a .th file, or an MSST .yaml (BS-RoFormer, Mel-Band RoFormer); given more than once: an ensemble")
      ->default_str(o.model)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1)
      ->allow_extra_args(false)
      ->group(model);
  r.scopes.push_back(
      {app.add_option("--checkpoint", r.checkpoints,
                      "The weights (.ckpt, .pt, .safetensors) of an MSST config given with -n config.yaml (one per "
                      ".yaml, in their order)")
           ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
           ->expected(1)
           ->allow_extra_args(false)
           ->group(model),
       "demucs models carry their weights in the .th file; --checkpoint goes with an MSST .yaml configuration", nullptr,
       false, "a model of the catalog brings its own checkpoint; --checkpoint goes with an MSST .yaml configuration"});
  r.scopes.push_back({app.add_option("--model-dir", r.model_dir,
                                     "Model cache (default $STEMKIT_MODEL_DIR, else $XDG_CACHE_HOME/stemkit/models)")
                          ->group(model),
                      nullptr, nullptr, true});
  r.scopes.push_back({app.add_flag("--download", o.download,
                                   "Fetch missing model files (checked against their published sha256, else the one "
                                   "recorded at their first download)")
                          ->group(model),
                      nullptr, nullptr, true});
  r.scopes.push_back({app.add_option("--model-mirror", o.model_mirror,
                                     "Fetch catalog files from URL/<host>/<path> instead of https://<host>/<path> (a "
                                     "mirror)")
                          ->envname("STEMKIT_MODEL_MIRROR")
                          ->type_name("URL")
                          ->group(model),
                      nullptr, nullptr, true});
  app.add_flag("--list-models", c.list_models, "List the models this runner runs and exit")->group(model);

  const char* ensemble = "Ensemble (two or more -n; docs/cli.md, \"Ensembles\")";
  app.add_option("--ensemble", r.ensemble,
                 "How each stem of the models is combined, as MSST's ensemble.py: avg_wave (default), median_wave, "
                 "min_wave, max_wave, avg_fft, median_fft, min_fft, max_fft")
      ->type_name("ALGO")
      ->group(ensemble);
  app.add_option("--weights", r.weights, "Weights of the models for avg_wave and avg_fft, in -n order (default 1 each)")
      ->type_name("W,W,...")
      ->group(ensemble);
  app.add_flag("--ensemble-one-at-a-time", c.ensemble.one_at_a_time,
               "One model's weights in memory at a time: each model loaded for each track and freed after it (the "
               "default keeps them all loaded)")
      ->group(ensemble);
  app.add_option("--ensemble-map", c.ensemble.map_given,
                 "MODEL:STEM=NAME: combine model MODEL's (place in -n order, or name) STEM as NAME; NAME - leaves it "
                 "out")
      ->type_name("MODEL:STEM=NAME")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1)
      ->allow_extra_args(false)
      ->group(ensemble);

  const char* run = "Separation";
  app.add_option("-d,--device", r.device,
                 "cpu, cuda, cuda:N or auto; or several, the files shared between them: cuda:0,cuda:1, cuda:all, "
                 "cpu,cpu")
      ->capture_default_str()
      ->group(run);
  app.add_option("--precision", r.precision,
                 "fp32, fp16 (GPU), bf16, or auto: fp16 on a GPU for an MSST config with training.use_amp (MSST's "
                 "autocast), else fp32")
      ->capture_default_str()
      ->group(run);  // parse_precision says what it expects
  app.add_option("-b,--batch-size,--batch_size,--mdxc_batch_size", o.separation.batch_size,
                 "Segments per forward (default 1; an MSST config's inference.batch_size)")
      ->check(CLI::PositiveNumber)
      ->group(run);
  CLI::Option* segment =
      app.add_option("--segment", r.segment,
                     "Seconds per segment (demucs: at most the model's, default the model's; MSST configs: the "
                     "chunk_size, in whole STFT hops)")
          ->check(CLI::PositiveNumber)
          ->group(run);
  CLI::Option* chunk_size = app.add_option("--chunk-size,--chunk_size", r.chunk_size,
                                           "MSST configs: samples per chunk (its audio.chunk_size)")
                                ->check(CLI::PositiveNumber)
                                ->excludes(segment)
                                ->group(run);
  only_msst(chunk_size, "demucs cuts segments of --segment SECONDS");
  only_msst(app.add_option("--mdxc_segment_size", r.mdxc_segment_size,
                           "MSST configs: STFT frames per chunk, as audio-separator (chunk_size = stft_hop_length x "
                           "(N - 1))")
                ->check(CLI::Range(2, 1 << 20))
                ->excludes(segment)
                ->excludes(chunk_size)
                ->group(run),
            "demucs cuts segments of --segment SECONDS");
  CLI::Option* overlap = app.add_option("--overlap", r.overlap,
                                        "Overlap of neighbouring segments, a fraction (demucs: default 0.25; MSST "
                                        "configs: 1 - 1/num_overlap, default the config's)")
                             ->check(CLI::Range(0.0, 0.99))
                             ->group(run);
  only_msst(app.add_option("--num-overlap,--num_overlap,--mdxc_overlap", r.num_overlap,
                           "MSST configs: how many chunks cover each sample (its inference.num_overlap)")
                ->check(CLI::Range(1, 1000))
                ->excludes(overlap)
                ->group(run),
            "demucs' overlap is a fraction of the segment: --overlap X (N chunks over each sample is --overlap "
            "1-1/N)");
  only_demucs(app.add_option("--shifts", o.separation.shifts, "Random shifts averaged (demucs' default 1)")
                  ->capture_default_str()
                  ->check(CLI::NonNegativeNumber)
                  ->group(run),
              "MSST's demix has no random shifts; --tta averages its test-time augmentations");
  only_demucs(
      app.add_option("--seed", o.separation.seed, "Seed of the shift offsets")->capture_default_str()->group(run),
      "it seeds demucs' --shifts, which MSST's demix does not have");
  only_msst(
      app.add_flag(
             "--tta", o.separation.tta,
             "MSST configs: test-time augmentation as MSST's --use_tta (channels swapped, polarity inverted; 3x the "
             "time)")
          ->group(run),
      "--tta is MSST's test-time augmentation, for RoFormer configurations (-n config.yaml); demucs models average "
      "random shifts instead: --shifts N");
  app.add_flag("--no-graphs", r.no_graphs, "Run eagerly: no CUDA/HIP graph capture")->group(run);
  app.add_flag("--low-memory", o.low_memory,
               "Least GPU memory: batch 1, no graph capture (its memory pool), 60 s streaming windows")
      ->group(run);
  app.add_flag(
         "--cudnn-benchmark", o.cudnn_benchmark,
         "Let cuDNN time its algorithms for the static shape (seconds at the first file; no gain measured on the H100)")
      ->group(run);
  app.add_option("-j,--jobs", o.jobs, "CPU threads (default: libtorch's)")->check(CLI::NonNegativeNumber)->group(run);
  app.add_flag("--sanitize", o.sanitize,
               "Replace NaN and infinite input samples with 0 (counted in a warning) instead of failing the file")
      ->group(run);

  const char* exec = "Execution (what --explain shows; docs/benchmarks.md measures each choice)";
  app.add_flag("--explain", c.explain, "Print the execution plan (with --json FILE: as JSON) and exit")->group(exec);
  app.add_option("--attention", r.attention, "Force an attention backend: auto, flash, efficient, cudnn, math")
      ->envname("STEMKIT_ATTENTION")
      ->check(CLI::IsMember({"auto", "flash", "efficient", "cudnn", "math"}))
      ->group(exec);
  only_msst(
      app.add_option("--fused-kernels", r.fused_kernels, "on: stemkit's RoFormer kernels where they run; off: ATen's")
          ->capture_default_str()
          ->check(CLI::IsMember({"on", "off"}))
          ->group(exec),
      roformer_kernels);
  only_msst(
      app.add_flag(
             "--seq-kernel", o.kernels.seq_kernel,
             "The fused attention kernel for long axes too (RoFormer time axis: less memory, same speed on the H100)")
          ->group(exec),
      roformer_kernels);
  only_msst(app.add_option("--gemm", r.gemm, "auto: cuBLASLt where it runs (CUDA fp16/bf16); aten: ATen's GEMMs")
                ->capture_default_str()
                ->check(CLI::IsMember({"auto", "aten"}))
                ->group(exec),
            roformer_kernels);
  only_msst(app.add_flag("--exact-gelu", o.kernels.exact_gelu,
                         "RoFormer: erf GELU in fp16/bf16 on a GPU too (default there: tanh GELU in the GEMM, within "
                         "4.7e-4)")
                ->group(exec),
            "HTDemucs' GELUs are always the exact (erf) form");
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
  app.add_option("--format", o.format, "wav, flac, mp3, ogg (Vorbis), opus (48 kHz) or m4a (AAC)")
      ->capture_default_str()
      ->check(CLI::IsMember(audio::output_formats()))
      ->group(out);
  app.add_flag("--flac", r.flac, "Same as --format flac")->group(out);
  app.add_flag("--mp3", r.mp3, "Same as --format mp3 (demucs)")->group(out);
  app.add_option("--mp3-bitrate", r.mp3_bitrate, "MP3 bitrate in kbit/s, constant (demucs'; default 320)")
      ->check(CLI::Range(8, 320))
      ->group(out);
  app.add_option("--mp3-preset", o.output.mp3_preset, "LAME's quality: 2 (best) to 7 (fastest), as demucs")
      ->capture_default_str()
      ->check(CLI::Range(2, 7))
      ->group(out);
  app.add_option("--bitrate", r.bitrate,
                 "kbit/s of a lossy format (default mp3 320, ogg 256, m4a 256, opus 192; --mp3-bitrate for mp3 too)")
      ->check(CLI::PositiveNumber)
      ->group(out);
  app.add_flag("--int24", r.int24, "24-bit samples")->group(out);
  app.add_flag("--float32", r.float32, "32-bit float samples (WAV)")->group(out);
  app.add_option("--clip-mode", o.clip, "rescale, clamp, tanh or none")
      ->transform(CLI::CheckedTransformer(kClipModes))
      ->default_str("rescale")
      ->group(out);
  app.add_flag("--keep-samplerate", o.keep_samplerate, "Write stems at the input's sample rate, not the model's")
      ->group(out);
  app.add_flag("--skip-existing", o.skip_existing,
               "Skip inputs whose set of stems is complete, as recorded by the run that wrote it (resume a batch)")
      ->group(out);
  app.add_option("--json", c.json_path, "Write a JSON summary to FILE ('-': stdout)")->group(out);
  app.add_flag("-q,--quiet", o.quiet, "No progress bars or per-file lines")->group(out);
  app.add_option("--progress-interval", o.progress_interval_s,
                 "When stderr is not a terminal (a log, a Slurm job): a line of the run's progress at most every "
                 "SECONDS (0: after each file)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber)
      ->group(out);

  app.add_option("--decode-ahead", o.decode_ahead,
                 "Files each device's pipeline decodes ahead of the one it separates, at the same time (each a "
                 "track in memory); default: 1 plus 1 per 8 CPU threads per device, at most 3")
      ->type_name("N")
      ->check(CLI::Range(1, 64))
      ->group(run);

  const char* catalog = "A whole catalog (docs/cli.md: many machines, Slurm job arrays)";
  app.add_option("--shard", r.shard,
                 "Separate only share I of N of the inputs (0 <= I < N), chosen by a hash of each input's path under "
                 "--shard-root; records each track (implies --record)")
      ->type_name("I/N")
      ->group(catalog);
  app.add_option("--shard-root", r.shard_root,
                 "The folder --shard hashes paths relative to (default: the folder given, when FILE is one folder; "
                 "else the current one)")
      ->type_name("DIR")
      ->group(catalog);
  app.add_flag("--record", c.record,
               "Append a record of each track (JSON Lines) to OUT/<model>/catalog.jsonl (with --shard: "
               "catalog-I-of-N.jsonl)")
      ->group(catalog);
  app.add_option("--summarize", r.summarize,
                 "Merge the records in DIR (an output root, OUT/<model>) into one report: done, failed with the "
                 "reason, missing; exit 1 unless complete")
      ->type_name("DIR")
      ->group(catalog);

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
  app.add_option("--bench-io-files", bench.io_files,
                 "The x with I/O column: separate this many copies of the track as files, decoding and encoding "
                 "overlapped as in a real run (0: skip it)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000))
      ->group(b);
  app.add_flag("--bench-low-memory", bench.low_memory,
               "Also a row per precision as --low-memory runs (batch 1, no graphs, stems back every 60 s)")
      ->group(b);
  app.add_option("--bench-trace", bench.trace,
                 "Also trace each row's ATen ops and GPU kernels into PREFIX-<row>.json; "
                 "tools/bench/trace_summary.py sums them up (--cpu: the ops' own CPU time)")
      ->type_name("PREFIX")
      ->group(b);
}

const char* kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::demucs_name: return "a demucs model";
    case ModelKind::demucs_file: return "a demucs model file";
    case ModelKind::msst_config: return "an MSST configuration";
    case ModelKind::msst_name: return "a RoFormer of the catalog";
  }
  return "";
}

// Why `scope`'s option means nothing for a model of `kind`; null: it means something.
const char* meaningless(const Scope& scope, ModelKind kind) {
  const char* why = !is_msst(kind)                 ? scope.not_demucs
                    : scope.not_msst               ? scope.not_msst
                    : kind == ModelKind::msst_name ? scope.not_msst_name
                                                   : nullptr;
  if (!why && scope.needs_name && kind != ModelKind::demucs_name && kind != ModelKind::msst_name)
    why = "the model is given as a file, so nothing is downloaded or looked up in the model cache";
  return why;
}

// Every option given is one that means something for the model -n names; in
// an ensemble, for at least one of its models (the others ignore it).
void check_scopes(const Raw& r, const std::vector<std::string>& models) {
  for (const Scope& scope : r.scopes) {
    if (scope.option->count() == 0) continue;
    const bool somewhere = std::any_of(models.begin(), models.end(),
                                       [&](const std::string& m) { return !meaningless(scope, model_kind(m)); });
    if (somewhere) continue;
    const ModelKind kind = model_kind(models.front());
    if (models.size() == 1)
      throw Error("{} has no meaning for {} ({}): {}", scope.option->get_name(), models.front(), kind_name(kind),
                  meaningless(scope, kind));
    throw Error("{} has no meaning for any model of the ensemble; for {} ({}): {}", scope.option->get_name(),
                models.front(), kind_name(kind), meaningless(scope, kind));
  }
}

void map_chunking(const Raw& r, RunnerOptions& o);

// Two or more -n: the ensemble's options, each model's own RunnerOptions (its
// --checkpoint, in the order of the .yaml models, and its chunking).
void finish_ensemble(const Raw& r, CommandLine& c) {
  const RunnerOptions& o = c.run;
  EnsembleOptions& e = c.ensemble;
  const size_t n = r.models.size();
  if (n < 2) {
    for (const auto& [given, option] : {std::pair{r.ensemble.has_value(), "--ensemble"},
                                        {r.weights.has_value(), "--weights"},
                                        {!e.map_given.empty(), "--ensemble-map"},
                                        {e.one_at_a_time, "--ensemble-one-at-a-time"}})
      if (given) throw Error("{} combines two or more models: give -n MODEL more than once", option);
    return;
  }
  if (c.explain || c.bench_mode)
    throw Error("--{} looks at one model: give -n once (each model of an ensemble on its own)",
                c.explain ? "explain" : "bench");
  if (r.ensemble) {
    const auto algorithm = parse_ensemble_algorithm(*r.ensemble);
    if (!algorithm) {
      std::string names;
      for (const auto& name : ensemble_algorithm_names()) names += (names.empty() ? "" : ", ") + name;
      throw Error("--ensemble {}: expected one of {}", *r.ensemble, names);
    }
    e.algorithm = *algorithm;
  }
  e.weights.assign(n, 1.0);
  if (r.weights) {
    if (!ensemble_uses_weights(e.algorithm))
      throw Error("--weights: {} does not use weights (avg_wave and avg_fft do, as in ensemble.py); drop --weights",
                  ensemble_algorithm_name(e.algorithm));
    std::vector<double> w;
    std::stringstream ss(*r.weights);
    std::string item;
    while (std::getline(ss, item, ',')) {
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || !std::isfinite(v) || v <= 0)
        throw Error("--weights {}: '{}' is not a positive number", *r.weights, item);
      w.push_back(v);
    }
    if (w.size() != n)
      throw Error("--weights {}: {} weights for {} models; give one per -n, in their order", *r.weights, w.size(), n);
    e.weights = std::move(w);
  }
  size_t configs = 0;
  for (const auto& m : r.models) configs += model_kind(m) == ModelKind::msst_config;
  if (r.checkpoints.size() != configs)
    throw Error(
        "--checkpoint: {} given for {} MSST configuration{} (-n config.yaml) among the models; give one per .yaml, in "
        "their order",
        r.checkpoints.size(), configs, configs == 1 ? "" : "s");
  size_t next_checkpoint = 0;
  for (const auto& model : r.models) {
    RunnerOptions m = o;
    m.model = model;
    m.checkpoint.reset();
    if (model_kind(model) == ModelKind::msst_config) m.checkpoint = r.checkpoints[next_checkpoint++];
    m.msst = MsstChunkOptions{};
    m.separation.segment.reset();
    m.separation.overlap = models::SeparationOptions{}.overlap;
    map_chunking(r, m);
    e.members.push_back(std::move(m));
  }
}

// --overlap X for an MSST configuration: its chunks start chunk_size /
// num_overlap apart, so it overlaps them by 1 - 1/num_overlap; X must be one of
// those (to 3 decimals: 0.667 is 3).
int64_t msst_num_overlap(double overlap, const std::string& model) {
  const double n = 1.0 / (1.0 - overlap);
  const int64_t whole = std::max<int64_t>(1, std::llround(n));
  if (std::abs(overlap - (1.0 - 1.0 / static_cast<double>(whole))) < 5e-4) return whole;
  const auto below = static_cast<int64_t>(std::floor(n)), above = below + 1;
  throw Error(
      "--overlap {}: {} (an MSST configuration) starts a chunk every chunk_size / num_overlap samples, an overlap "
      "of 1 - 1/num_overlap; {} lies between num_overlap {} (--overlap {:.4g}) and {} (--overlap {:.4g}): give one of "
      "those, or --num-overlap N",
      overlap, model, overlap, below, 1.0 - 1.0 / static_cast<double>(below), above,
      1.0 - 1.0 / static_cast<double>(above));
}

// --segment, --overlap and their MSST spellings onto the model's own settings
// (docs/cli.md, "Options per model").
void map_chunking(const Raw& r, RunnerOptions& o) {
  if (!is_msst(model_kind(o.model))) {
    if (r.segment) o.separation.segment = *r.segment;
    if (r.overlap) o.separation.overlap = *r.overlap;
    return;
  }
  MsstChunkOptions& m = o.msst;
  if (r.overlap) {
    m.num_overlap = msst_num_overlap(*r.overlap, o.model);
    m.num_overlap_from = fmt::format("--overlap {}", *r.overlap);
  } else if (r.num_overlap) {
    m.num_overlap = *r.num_overlap;
    m.num_overlap_from = fmt::format("--num-overlap {}", *r.num_overlap);
  }
  using Unit = MsstChunkOptions::Unit;
  if (r.segment) {
    m.chunk = *r.segment;
    m.chunk_unit = Unit::seconds;
    m.chunk_from = fmt::format("--segment {}", *r.segment);
  } else if (r.chunk_size) {
    m.chunk = static_cast<double>(*r.chunk_size);
    m.chunk_unit = Unit::samples;
    m.chunk_from = fmt::format("--chunk-size {}", *r.chunk_size);
  } else if (r.mdxc_segment_size) {
    m.chunk = static_cast<double>(*r.mdxc_segment_size);
    m.chunk_unit = Unit::frames;
    m.chunk_from = fmt::format("--mdxc_segment_size {}", *r.mdxc_segment_size);
  }
}

// What the options mean together; throws stemkit::Error for a usage error.
void finish(const CLI::App& app, CommandLine& c, Raw& r) {
  RunnerOptions& o = c.run;
  o.env = read_environment();
  o.kernels.gemm_algorithm_dir = gemm_algorithm_dir(o.env).string();
  c.devices = parse_devices(r.device);
  c.devices_given = r.device;
  o.device = c.devices.front();
  if (r.precision != "auto") o.precision = parse_precision(r.precision, o.device);
  if (r.model_dir) o.model_dir = *r.model_dir;
  if (!o.model_mirror.empty() && o.model_mirror.rfind("http://", 0) != 0 && o.model_mirror.rfind("https://", 0) != 0)
    throw Error("--model-mirror (or STEMKIT_MODEL_MIRROR) {}: expected an http:// or https:// URL", o.model_mirror);
  if (r.out) o.out = *r.out;
  if (!r.models.empty()) o.model = r.models.front();
  if (r.models.size() <= 1 && r.checkpoints.size() > 1)
    throw Error("--checkpoint given {} times for one model; give it once", r.checkpoints.size());
  if (r.models.size() <= 1 && !r.checkpoints.empty()) o.checkpoint = r.checkpoints.front();
  check_scopes(r, r.models.empty() ? std::vector<std::string>{o.model} : r.models);
  map_chunking(r, o);
  if (r.flac && r.mp3) throw Error("--flac and --mp3 exclude each other");
  for (const auto& [given, name] : {std::pair{r.flac, "flac"}, {r.mp3, "mp3"}}) {
    if (!given) continue;
    if (app.count("--format") && o.format != name)
      throw Error("--{} and --format {} exclude each other", name, o.format);
    o.format = name;
  }
  if (r.int24 && r.float32) throw Error("--int24 and --float32 exclude each other");
  o.output.encoding = r.int24 ? audio::Encoding::pcm24 : r.float32 ? audio::Encoding::float32 : audio::Encoding::pcm16;
  if (o.format == "flac" && r.float32)
    throw Error("FLAC holds 16- or 24-bit samples: drop --float32, or write --format wav");
  if (audio::is_lossy(o.format) && (r.int24 || r.float32))
    throw Error("--{} is for wav and flac; {} has a bitrate instead (--bitrate)", r.int24 ? "int24" : "float32",
                o.format);
  if (o.format != "mp3")
    for (const char* option : {"--mp3-bitrate", "--mp3-preset"})
      if (app.count(option))
        throw Error("{} is for --format mp3 (--mp3); this run writes {}{}", option, o.format,
                    audio::is_lossy(o.format) ? ": give its bitrate with --bitrate" : "");
  if (r.bitrate > 0 && !audio::is_lossy(o.format))
    throw Error("--bitrate is for mp3, ogg, opus and m4a; {} is lossless", o.format);
  if (r.bitrate > 0 && r.mp3_bitrate > 0 && r.bitrate != r.mp3_bitrate)
    throw Error("--bitrate {} and --mp3-bitrate {}: give one", r.bitrate, r.mp3_bitrate);
  o.output.bitrate_kbps = r.mp3_bitrate > 0 ? r.mp3_bitrate : r.bitrate;
  audio::check_output_format(o.format, o.output);  // an encoder this FFmpeg lacks: said before any model loads
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
  finish_ensemble(r, c);

  if (c.list_models) return;
  if (r.summarize) {
    if (!r.files.empty() || r.inputs_from || r.shard)
      throw Error("--summarize DIR reads the records a catalog's runs wrote; it takes no inputs and no --shard");
    c.summarize = *r.summarize;
    return;
  }
  if (r.shard_root && !r.shard) throw Error("--shard-root goes with --shard I/N");
  if (c.record && (c.bench_mode || c.explain))
    throw Error("--record is for separating a catalog, not --bench or --explain");
  InputSet inputs = collect_inputs(r.files, r.inputs_from, std::cin);
  c.inputs = std::move(inputs.files);
  c.input_folders = std::move(inputs.folders);
  c.input_duplicates = std::move(inputs.duplicates);
  c.listed = c.inputs.size();
  // The one folder given is the natural root: its files keep their shards wherever it is mounted.
  c.shard_root = r.shard_root ? fs::path(*r.shard_root)
                 : r.files.size() == 1 && !r.inputs_from && fs::is_directory(r.files.front())
                     ? fs::path(r.files.front())
                     : fs::path(".");
  if (r.shard) {
    if (c.bench_mode || c.explain) throw Error("--shard is for separating a catalog, not --bench or --explain");
    c.shard = parse_shard(*r.shard);
    c.record = true;
    if (!fs::is_directory(c.shard_root))
      throw Error("--shard-root {}: not a folder; give the folder that holds the catalog", c.shard_root.string());
    c.inputs = select_shard(c.inputs, c.shard_root, *c.shard).files;  // throws for an input outside the root
    if (c.listed > 0) return;  // a shard may get none of a small catalog's files: it records that it ran
  }
  if (c.bench_mode) {
    if (c.devices.size() > 1)
      throw Error("--bench measures one device; give one (--device {} names {} devices)", r.device, c.devices.size());
    bench::BenchOptions& bench = c.bench;
    if (c.inputs.size() > 1) throw Error("--bench takes at most one FILE");
    if (!c.inputs.empty()) bench.input = c.inputs.front();
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
    throw Error(
        "no input files: give audio files or folders, --inputs-from LIST, or - for a list on stdin (see --help)");
  }
}

}  // namespace

Environment read_environment() {
  auto get = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  return {get("STEMKIT_MODEL_DIR"), get("XDG_CACHE_HOME"), get("HOME"), get("OMP_WAIT_POLICY")};
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
