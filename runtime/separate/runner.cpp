#include "runtime/separate/runner.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <tuple>
#include <unistd.h>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/audio/audio.h"
#include "runtime/bench/gpu_memory.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/capture/graph_runner.h"
#include "runtime/separate/download.h"
#include "runtime/separate/error.h"
#include "runtime/separate/model_cache.h"
#include "runtime/separate/model_catalog.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/progress.h"
#include "runtime/version.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

at::Device parse_device(const std::string& text) {
  if (text == "auto") return at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const std::exception&) {
    throw SeparateError("--device " + text + ": expected cpu, cuda, cuda:N or auto");
  }
  if (device.is_cuda() && !at::hasCUDA())
    throw SeparateError("--device " + text + ": this libtorch (" + version_text().substr(0, version_text().find('\n')) +
                        ") sees no CUDA or ROCm GPU; use --device cpu, or build against a GPU libtorch (docs/runtime.md)");
  if (!device.is_cpu() && !device.is_cuda()) throw SeparateError("--device " + text + ": expected cpu, cuda, cuda:N or auto");
  if (device.is_cuda() && !device.has_index()) device = at::Device(at::kCUDA, 0);
  if (device.is_cuda()) {
    const int gpus = at::detail::getCUDAHooks().getNumGPUs();
    if (device.index() >= gpus)
      throw SeparateError("--device " + text + ": this machine has " + std::to_string(gpus) + " GPU" + (gpus == 1 ? "" : "s") +
                          " (cuda:0" + (gpus > 1 ? " to cuda:" + std::to_string(gpus - 1) : std::string()) + ")");
  }
  return device;
}

at::ScalarType parse_precision(const std::string& text, const at::Device& device) {
  if (text == "fp32") return at::kFloat;
  if (text == "bf16") {
#if !STEMKIT_TORCH_AT_LEAST(2, 0)
    if (device.is_cpu())
      throw SeparateError("--precision bf16 on the CPU needs libtorch 2.x (1.13's oneDNN transposed convolutions reject "
                          "bf16); use fp32");
#endif
    return at::kBFloat16;
  }
  if (text == "fp16") {
    if (!device.is_cuda()) throw SeparateError("--precision fp16 needs a GPU (--device cuda); on the CPU use fp32 or bf16");
    return at::kHalf;
  }
  throw SeparateError("--precision " + text + ": expected auto, fp32, fp16 or bf16");
}

audio::Encoding parse_encoding(const std::string& text) {
  if (text == "pcm16") return audio::Encoding::pcm16;
  if (text == "pcm24") return audio::Encoding::pcm24;
  if (text == "float32") return audio::Encoding::float32;
  throw SeparateError("encoding " + text + ": expected pcm16, pcm24 or float32");
}

bool is_out_of_memory(const std::exception& e) {
  std::string m = e.what();
  return m.find("out of memory") != std::string::npos || m.find("OutOfMemory") != std::string::npos;
}

// The samples become the tensor's storage (no copy of a whole track).
at::Tensor to_tensor(audio::Audio&& a) {
  auto* samples = new std::vector<float>(std::move(a.data));
  return at::from_blob(samples->data(), {a.channels, a.frames}, [samples](void*) { delete samples; },
                       at::TensorOptions().dtype(at::kFloat));
}

audio::Audio to_audio(const at::Tensor& t, int samplerate) {
  at::Tensor c = t.to(at::kCPU, at::kFloat).contiguous();
  audio::Audio a;
  a.samplerate = samplerate;
  a.channels = static_cast<int>(c.size(0));
  a.frames = c.size(1);
  a.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return a;
}

// One stem, (channels, frames) at `samplerate`, to its file at `out_rate`.
// At the model's rate it is written straight from the tensor's memory (a
// view of the separation's result: no copy), the clip mode applied while the
// samples are converted; resampled, from a copy.
void write_stem(const std::string& path, const at::Tensor& stem, int samplerate, int out_rate, audio::Clip clip,
                audio::Encoding encoding) {
  if (out_rate != samplerate) {
    audio::Audio a = audio::resample(to_audio(stem, samplerate), out_rate);
    audio::prevent_clip(a, clip);
    audio::write_audio(path, a, encoding);
    return;
  }
  const at::Tensor c = stem.to(at::kCPU, at::kFloat).contiguous();
  audio::write_audio(path, audio::AudioView{samplerate, static_cast<int>(c.size(0)), c.size(1), c.data_ptr<float>()},
                     encoding, clip);
}

// separate() with the batch halved after running out of GPU memory; later
// files keep the smaller batch.
at::Tensor separate_with_retry(LoadedModel& model, const at::Tensor& wav, models::SeparationOptions& o,
                               const models::ProgressFn& progress, models::SeparationReport* report, bool quiet) {
  for (;;) {
    try {
      return model.model->separate(wav, o, progress, report);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      model.model->release_graphs();
      bench::release_gpu_cache();
      if (o.batch_size <= 1)
        throw SeparateError(std::string("out of GPU memory at --batch-size 1: try --precision fp16 or bf16, a shorter "
                                        "--segment, or --device cpu (") + std::string(e.what()).substr(0, 200) + ")");
      const int64_t smaller = o.batch_size / 2;
      if (!quiet)
        std::fprintf(stderr, "separate: out of GPU memory at --batch-size %lld; retrying with %lld\n",
                     static_cast<long long>(o.batch_size), static_cast<long long>(smaller));
      o.batch_size = smaller;
    }
  }
}

// The stems to write for one track: the model's sources, or --two-stems'.
std::vector<std::pair<std::string, at::Tensor>> stems_of(const at::Tensor& est, const at::Tensor& mix,
                                                         const std::vector<std::string>& sources,
                                                         const RunnerOptions& o) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!o.two_stems) {
    for (size_t s = 0; s < sources.size(); ++s) out.emplace_back(sources[s], est[static_cast<int64_t>(s)]);
    return out;
  }
  const int64_t k = std::find(sources.begin(), sources.end(), *o.two_stems) - sources.begin();
  const OtherMethod method = parse_other_method(o.other_method);
  const auto names = two_stem_names(*o.two_stems, method);
  out.emplace_back(names[0], est[k]);
  if (method == OtherMethod::add) out.emplace_back(names[1], est.sum(0) - est[k]);  // the other stems summed
  if (method == OtherMethod::minus) out.emplace_back(names[1], mix - est[k]);
  return out;
}

ProgressBar::Options bar_options(const std::string& label, const ProgressUnit& unit, bool quiet) {
  ProgressBar::Options b;
  b.label = label;
  b.unit = unit;
  b.quiet = quiet;
  return b;
}

std::string gb(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", static_cast<double>(bytes) / 1e9);
  return b;
}

}  // namespace

std::string error_text(const std::exception& e) {
  std::string m = e.what();
  const size_t cut = m.find("\nException raised from");
  return cut == std::string::npos ? m : m.substr(0, cut);
}

const char* precision_name(at::ScalarType dtype) {
  return dtype == at::kHalf ? "fp16" : dtype == at::kBFloat16 ? "bf16" : "fp32";
}

models::SeparationOptions separation_options(const LoadedModel& model, const RunnerOptions& o) {
  models::SeparationOptions sep = o.separation;
  sep.batch_size = model.plan.batch_size;
  sep.graphs = model.plan.graphs;
  sep.window_seconds = model.plan.window_seconds;
  sep.device_assembly = model.plan.device_assembly;
  return sep;
}

void probe_call_shapes(LoadedModel& model, const RunnerOptions& o) {
  models::SeparationOptions sep = separation_options(model, o);
  sep.graphs = false;  // the same kernels, without a capture's memory pool
  sep.shifts = 1;
  const at::Tensor silence = at::zeros({model.model->audio_channels(), model.model->segment_samples() * sep.batch_size});
  model.model->separate(silence, sep);
}

LoadedModel load_model(const RunnerOptions& o) {
  LoadedModel m;
  m.device = parse_device(o.device);
  // An explicit precision is checked before anything is read; auto once the model's kind is known.
  std::string precision = o.precision;
  if (precision != "auto") parse_precision(precision, m.device);
  double t0 = now_s();  // from after any download
  // The GPU's start (driver context, caching allocator, cuBLAS handle: 0.3 s
  // and more) on a thread, while the checkpoint is read and the model built on
  // the CPU; joined before the weights move.
  std::future<void> gpu_started;
  if (m.device.is_cuda())
    gpu_started = std::async(std::launch::async, [device = m.device] {
      const at::Tensor t = at::ones({8, 8}, at::TensorOptions().device(device));
      at::mm(t, t).sum().item<float>();
    });
  std::vector<std::string> paths;
  std::vector<std::vector<double>> weights;
  std::optional<double> segment;
  int64_t config_batch_size = 0;  // an MSST configuration's inference.batch_size; 0: none
  std::string precision_reason = "--precision " + o.precision;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (ends_with(o.model, ".yaml") || ends_with(o.model, ".yml")) {
    // A RoFormer: its MSST configuration and its weights.
    if (!o.checkpoint)
      throw SeparateError(o.model + " is an MSST model configuration: give its weights with --checkpoint FILE.ckpt");
    if (!fs::exists(o.model)) throw SeparateError(o.model + ": no such configuration file");
    if (!fs::exists(*o.checkpoint)) throw SeparateError(*o.checkpoint + ": no such checkpoint file");
    const models::MsstConfig config = models::load_msst_config(o.model);
    m.model = models::make_roformer_separator(config, *o.checkpoint, &m.warnings);
    m.name = output_model_name(*o.checkpoint);
    config_batch_size = config.batch_size;
    // MSST's demix: fp16 autocast on a GPU when the config's training.use_amp is set (its default).
    if (precision == "auto") {
      precision = m.device.is_cuda() && config.use_amp ? "fp16" : "fp32";
      precision_reason = m.device.is_cuda() ? config.use_amp ? "auto: the config's training.use_amp, MSST's fp16 autocast"
                                                             : "auto: the config has training.use_amp off"
                                            : "auto: fp32 on the CPU";
    }
  } else if (o.separation.tta) {
    throw SeparateError("--tta is MSST's test-time augmentation, for RoFormer configurations (-n config.yaml); "
                        "demucs models average random shifts instead: --shifts N");
  } else if (o.checkpoint) {
    throw SeparateError("--checkpoint goes with an MSST .yaml configuration (-n config.yaml); demucs models carry "
                        "their configuration in the .th file");
  } else if (looks_like_model_path(o.model)) {
    if (!fs::exists(o.model)) throw SeparateError(o.model + ": no such model file");
    paths = {o.model};
    m.name = output_model_name(o.model);
  } else {
    const CatalogModel& cm = require_model(o.model);
    if (cm.architecture != Architecture::htdemucs)
      throw SeparateError("model " + cm.name + " is an HDemucs (demucs v3) model; this runner runs HTDemucs: htdemucs, "
                          "htdemucs_ft, htdemucs_6s");
    ModelCache cache = ModelCache::from_option(o.model_dir, o.env);
    std::unique_ptr<ProgressBar> bar;
    auto progress = [&](const CatalogMember& member, int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>(bar_options(member.file_name, ProgressUnit::megabytes(), o.quiet));
      bar->update(static_cast<double>(done), static_cast<double>(total));
      if (total > 0 && done >= total) bar.reset();
    };
    for (const auto& p : ensure_model_files(cm, cache, o.download, progress)) paths.push_back(p.string());
    t0 = now_s();
    weights = cm.weights;
    segment = cm.segment;
    m.name = cm.name;
  }
  if (!m.model) m.model = models::make_separator(models::load_demucs_bag(m.name, paths, weights, segment));
  if (precision == "auto") {
    precision = "fp32";
    precision_reason = "auto: demucs models run fp32 upstream";
  }
  m.dtype = parse_precision(precision, m.device);
  const double t_move = now_s();
  if (gpu_started.valid()) gpu_started.get();  // its error, if the GPU could not start, is the user's answer
  plan::ExecutionPlan& p = m.plan;
  p.model = m.name;
  p.device = m.device;
  p.device_name = m.device.is_cuda() ?
#if defined(STEMKIT_ROCM)
      attention::query_gpu(m.device.index(), true).describe()
#else
      attention::query_gpu(m.device.index(), false).describe()
#endif
      : "CPU";
  p.dtype = m.dtype;
  p.precision_reason = precision_reason;
  p.kernels = plan::decide_kernels(m.device, m.dtype, o.kernels, &p.kernel_reasons);
  if (o.low_memory) {
    p.batch_size = o.separation.batch_size;
    p.batch_reason = "--low-memory: the least activation memory";
  } else if (o.batch_size_given || config_batch_size <= 0) {
    p.batch_size = o.separation.batch_size;
    p.batch_reason = o.batch_size_given ? "-b" : "the default";
  } else {
    p.batch_size = config_batch_size;
    p.batch_reason = "the MSST config's inference.batch_size, as MSST runs it (-b says otherwise)";
  }
  p.graphs = o.separation.graphs && m.device.is_cuda() && capture::capture_supported();
  p.graphs_reason = !m.device.is_cuda()                 ? "the CPU runs eagerly"
                    : !capture::capture_supported()     ? "this build has no CUDA/HIP graph support"
                    : o.low_memory                      ? "--low-memory: a captured graph keeps its own memory pool"
                    : !o.separation.graphs              ? "--no-graphs"
                                                        : "one capture per call shape, replayed; eager if a capture fails";
  p.window_seconds = o.separation.window_seconds;
  p.window_reason = o.low_memory ? "--low-memory: stems back to the CPU every 60 s of audio"
                                 : "device memory for stems bounded by this much audio";
  p.device_assembly = o.separation.device_assembly;
  m.model->to(m.device, m.dtype, p.kernels);
  if (m.device.is_cuda()) {
    // The weights' float32 copies, freed by their conversion on the device, would
    // stay reserved by the caching allocator in blocks the activations cannot use.
    bench::release_gpu_cache();
    // Every forward has one shape, so cuDNN's autotuning pays once per run.
    at::globalContext().setBenchmarkCuDNN(o.cudnn_benchmark);
  }
  m.load_s = now_s() - t0;
  m.to_device_s = now_s() - t_move;
  return m;
}

ReadAhead read_ahead(const fs::path& input) {
  ReadAhead r;
  r.input = input;
  r.samples = std::async(std::launch::async, [input] {
    const double t0 = now_s();
    audio::Audio a = audio::read_audio(input.string());
    return std::make_pair(std::move(a), now_s() - t0);
  });
  return r;
}

nlohmann::json separate_files(LoadedModel& model, const std::vector<fs::path>& inputs, const RunnerOptions& o, int& failed,
                              ReadAhead* first) {
  failed = 0;
  const auto& sources = model.model->stems();
  const int sr = static_cast<int>(model.model->samplerate());
  const int channels = static_cast<int>(model.model->audio_channels());
  std::vector<std::string> stem_names;
  if (o.two_stems) {
    check_two_stems(*o.two_stems, sources, model.name);
    stem_names = two_stem_names(*o.two_stems, parse_other_method(o.other_method));
  } else {
    stem_names = sources;
  }
  if (o.format != "wav" && o.format != "flac") throw SeparateError("--format " + o.format + ": expected wav or flac");
  const audio::Encoding encoding = parse_encoding(o.encoding);
  if (o.format == "flac" && encoding == audio::Encoding::float32)
    throw SeparateError("FLAC holds 16- or 24-bit samples: drop --float32, or write --format wav");
  const audio::Clip clip = audio::parse_clip(o.clip_mode);
  // Every output path is known, and checked for collisions, before any work.
  const auto plan = plan_outputs(inputs, stem_names, FilenameTemplate(o.filename), output_root(o.out, model.name), o.format);
  // ...and the directories they go to made, and found writable, before the first separation.
  std::set<fs::path> dirs;
  for (const auto& p : plan) dirs.insert(p.path.parent_path().empty() ? fs::path(".") : p.path.parent_path());
  for (const auto& dir : dirs) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK) != 0)
      throw SeparateError("cannot write stems into " + dir.string() + " (" +
                          (ec ? ec.message() : std::string(std::strerror(errno))) +
                          "); choose another output root with -o DIR, or another --filename");
  }

  models::SeparationOptions sep = separation_options(model, o);
  std::vector<nlohmann::json> entries(inputs.size());
  std::vector<std::vector<const PlannedOutput*>> outs(inputs.size());
  std::vector<size_t> work;  // the inputs to separate, in order
  for (size_t k = 0; k < inputs.size(); ++k) {
    for (const auto& p : plan)
      if (p.input == inputs[k]) outs[k].push_back(&p);
    entries[k] = {{"input", inputs[k].string()}};
    for (const auto* p : outs[k]) entries[k]["outputs"][p->stem] = p->path.string();
    if (o.skip_existing && std::all_of(outs[k].begin(), outs[k].end(), [](const PlannedOutput* p) { return fs::exists(p->path); })) {
      entries[k]["status"] = "skipped";
      if (!o.quiet) std::fprintf(stderr, "separate: %s: every stem exists, skipped (--skip-existing)\n", inputs[k].c_str());
    } else {
      work.push_back(k);
    }
  }
  auto fail = [&](size_t k, const std::exception& e) {
    ++failed;
    entries[k]["status"] = "failed";
    entries[k]["error"] = error_text(e);
    std::fprintf(stderr, "separate: %s: %s\n", inputs[k].c_str(), error_text(e).c_str());
  };

  // A pipeline over the files: the next file is decoded and the previous
  // one's stems are encoded while the current one is separated, so the GPU
  // does not wait for libsndfile and soxr (at several hundred times realtime,
  // decoding and encoding take as long as the separation). At most three
  // tracks are in memory: the next, the current, and the previous one's stems.
  struct Decoded {
    at::Tensor wav;
    int in_rate = 0;
    double decode_s = 0;
  };
  auto start_decode = [&](size_t k) {
    std::future<std::pair<audio::Audio, double>> ahead;  // the samples read while the model loaded
    if (first && first->samples.valid() && first->input == inputs[k]) ahead = std::move(first->samples);
    return std::async(std::launch::async, [&, k, ahead = std::move(ahead)]() mutable {
      double read_s = 0;
      audio::Audio in;
      if (ahead.valid()) {
        std::tie(in, read_s) = ahead.get();  // decode_s: its reading, not the wait for it
      } else {
        const double t0 = now_s();
        in = audio::read_audio(inputs[k].string());
        read_s = now_s() - t0;
      }
      const double t0 = now_s();
      Decoded d;
      d.in_rate = in.samplerate;
      d.wav = to_tensor(audio::to_channels(audio::resample(std::move(in), sr), channels));
      d.decode_s = read_s + now_s() - t0;
      return d;
    });
  };
  std::future<double> encoder;  // seconds spent encoding the stems of file `encoding_index`
  size_t encoding_index = 0;
  auto join_encoding = [&] {
    if (!encoder.valid()) return;
    nlohmann::json& entry = entries[encoding_index];
    try {
      const double encode_s = encoder.get();
      const double seconds = entry["seconds"], decode_s = entry["decode_s"], separate_s = entry["separate_s"];
      entry["status"] = "ok";
      entry["encode_s"] = encode_s;
      entry["realtime_with_io"] = seconds / (decode_s + separate_s + encode_s);
      if (!o.quiet)
        std::fprintf(stderr, "separate: %s: %.1f s of audio, separated in %.1f s (%.1fx realtime) -> %s\n",
                     inputs[encoding_index].c_str(), seconds, separate_s, seconds / separate_s,
                     outs[encoding_index].front()->path.parent_path().c_str());
    } catch (const std::exception& e) {
      fail(encoding_index, e);
    }
  };

  const double run_start = now_s();
  double run_seconds = 0;
  std::future<Decoded> decoding;
  if (!work.empty()) decoding = start_decode(work.front());
  for (size_t w = 0; w < work.size(); ++w) {
    const size_t k = work[w];
    Decoded d;
    try {
      d = decoding.get();
    } catch (const std::exception& e) {
      fail(k, e);
      if (w + 1 < work.size()) decoding = start_decode(work[w + 1]);
      continue;
    }
    if (w + 1 < work.size()) decoding = start_decode(work[w + 1]);
    try {
      const double seconds = static_cast<double>(d.wav.size(1)) / sr;
      models::SeparationReport report;
      const double t0 = now_s();
      at::Tensor est;
      {
        ProgressBar bar(bar_options(split_track_name(inputs[k]).track, ProgressUnit::audio_seconds(), o.quiet));
        est = separate_with_retry(model, d.wav, sep, [&](double f) { bar.update(f * seconds, seconds); }, &report, o.quiet);
      }
      const double separate_s = now_s() - t0;
      entries[k].update({{"seconds", seconds}, {"decode_s", d.decode_s}, {"separate_s", separate_s},
                         {"realtime", seconds / separate_s}, {"batch_size", sep.batch_size}, {"graphs", report.graphs}});
      run_seconds += seconds;
      // The stems as tensors on the CPU (views of est, or made from it here); the
      // encoder's threads clip, convert and write them (resampled when asked),
      // so that the next file's separation need not wait for that.
      std::vector<std::pair<const PlannedOutput*, at::Tensor>> stems;
      for (const auto& [stem, tensor] : stems_of(est, d.wav, sources, o)) {
        const auto* p = *std::find_if(outs[k].begin(), outs[k].end(), [&](const PlannedOutput* q) { return q->stem == stem; });
        stems.emplace_back(p, tensor);
      }
      join_encoding();  // the previous file's stems are on disk before this file's start
      encoding_index = k;
      encoder = std::async(std::launch::async, [&, stems = std::move(stems), in_rate = d.in_rate]() mutable {
        const double t1 = now_s();
        std::vector<std::future<void>> writes;  // each stem is its own file: in parallel
        for (auto& [p, tensor] : stems) {
          fs::create_directories(p->path.parent_path());
          writes.push_back(std::async(std::launch::async, [&, p = p, &tensor = tensor] {
            write_stem(p->path.string(), tensor, sr, o.keep_samplerate ? in_rate : sr, clip, encoding);
          }));
        }
        for (auto& f : writes) f.wait();
        for (auto& f : writes) f.get();  // the first error, once every write has finished
        return now_s() - t1;
      });
    } catch (const std::exception& e) {
      fail(k, e);
    }
  }
  join_encoding();
  const double run_wall = now_s() - run_start;
  if (!o.quiet && work.size() > 1)
    std::fprintf(stderr, "separate: %zu files, %.1f s of audio in %.1f s (%.1fx realtime with decoding and encoding)\n",
                 work.size(), run_seconds, run_wall, run_seconds / run_wall);
  nlohmann::json files = nlohmann::json::array();
  for (auto& e : entries) files.push_back(std::move(e));
  return files;
}

nlohmann::json run_bench(LoadedModel& loaded, const RunnerOptions& options, const BenchOptions& requested) {
  // The rows' precisions: the loaded model's (auto resolved) when none are named.
  BenchOptions b = requested;
  if (b.precisions.empty() || b.precisions == std::vector<std::string>{"auto"}) b.precisions = {precision_name(loaded.dtype)};
  // Every precision this device cannot run is a usage error before any row is measured.
  for (const auto& precision : b.precisions) parse_precision(precision, loaded.device);
  const int sr = static_cast<int>(loaded.model->samplerate());
  const int channels = static_cast<int>(loaded.model->audio_channels());
  // The track: a song (decode timed) or synthetic audio, never silence:
  // a few sine partials with moving amplitudes and some noise.
  double decode_s = 0;
  at::Tensor wav;
  std::string track;
  if (b.input) {
    const double t0 = now_s();
    wav = to_tensor(audio::to_channels(audio::resample(audio::read_audio(b.input->string()), sr), channels));
    decode_s = now_s() - t0;
    track = b.input->string();
  } else {
    const int64_t n = static_cast<int64_t>(b.seconds * sr);
    at::Tensor t = at::arange(n, at::kDouble) / sr;
    at::Tensor x = at::zeros({channels, n}, at::kDouble);
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> freq(40, 4000), phase(0, 6.28), rate(0.1, 2);
    for (int c = 0; c < channels; ++c)
      for (int k = 0; k < 12; ++k)
        x[c] += 0.05 * at::sin(2 * M_PI * freq(rng) * t + phase(rng)) * (1 + at::sin(2 * M_PI * rate(rng) * t)) / 2;
    x += 0.02 * at::randn({channels, n}, at::TensorOptions().dtype(at::kDouble));
    wav = x.to(at::kFloat);
    track = "synthetic";
  }
  const double seconds = static_cast<double>(wav.size(1)) / sr;
  const fs::path scratch = fs::temp_directory_path() / ("stemkit-bench-" + std::to_string(::getpid()));

  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-9s %5s %6s %-34s %10s %10s %10s %10s\n", "precision", "batch", "graphs", "attention", "x realtime",
              "x with I/O", "peak GB", "reserved");
  // Each precision's rows run with only that precision's model on the device:
  // another model's weights, folded weights and workspaces would count in their
  // peak memory, which a run of that precision
  // alone never has. So the model loaded for --precision is freed when no row
  // uses it, and each model once its rows are done.
  const std::string loaded_precision = precision_name(loaded.dtype);
  if (std::find(b.precisions.begin(), b.precisions.end(), loaded_precision) == b.precisions.end()) {
    loaded.model.reset();
    bench::release_gpu_cache();
  }
  for (const auto& precision : b.precisions) {
    RunnerOptions o = options;
    o.precision = precision;
    o.quiet = true;
    LoadedModel m = precision == loaded_precision ? std::move(loaded) : load_model(o);
    const int dev = m.device.is_cuda() ? m.device.index() : -1;
    struct RowSetting {
      int64_t batch;
      bool graphs, low_memory;
    };
    std::vector<RowSetting> settings;
    for (int64_t batch : b.batch_sizes)
      for (bool graphs : b.graphs) settings.push_back({batch, graphs, false});
    if (b.low_memory) settings.push_back({1, false, true});
    for (const RowSetting& setting : settings) {
      models::SeparationOptions sep = options.separation;
      sep.batch_size = setting.batch;
      sep.graphs = setting.graphs;
      if (setting.low_memory) apply_low_memory(sep);
      const int64_t batch = sep.batch_size;
      const bool graphs = sep.graphs;
      nlohmann::json row = {{"precision", precision}, {"batch_size", batch}, {"graphs", graphs},
                            {"window_seconds", sep.window_seconds}};
      if (setting.low_memory) row["mode"] = "low-memory";
      // Each row from a clean slate: no graphs or cached blocks of the rows before.
      m.model->release_graphs();
      bench::release_gpu_cache();
      try {
        // Warm-up: the same call shape, so plans, kernels and graphs are ready.
        // Its time is what a run's first file pays once on top (cuBLASLt's
        // algorithm timing, graph capture) plus the warm-up audio's separation.
        const int64_t warm = std::min<int64_t>(wav.size(1), 2 * m.model->segment_samples());
        const double warm_t0 = now_s();
        m.model->separate(wav.slice(1, 0, warm), sep);
        if (dev >= 0) bench::gpu_synchronize(dev);
        const double warmup_s = now_s() - warm_t0;
        std::vector<double> walls;
        models::SeparationReport report;
        bench::GpuMemory mem;
        at::Tensor est;
        for (int r = 0; r < std::max(1, b.repeats); ++r) {
          if (dev >= 0) bench::reset_gpu_peak(dev), bench::gpu_synchronize(dev);
          const double t0 = now_s();
          est = m.model->separate(wav, sep, {}, &report);
          if (dev >= 0) bench::gpu_synchronize(dev);
          walls.push_back(now_s() - t0);
          if (dev >= 0) mem = bench::gpu_peak(dev);
        }
        if (!b.trace.empty()) {  // one more run, traced (not timed: the profiler slows it)
          const std::string path = b.trace + "-" + std::to_string(rows.size()) + ".json";
          bench::start_kernel_trace();
          m.model->separate(wav, sep, {}, nullptr);
          if (dev >= 0) bench::gpu_synchronize(dev);
          bench::stop_kernel_trace(path);
          row["trace"] = path;
        }
        std::sort(walls.begin(), walls.end());
        const double wall = walls[walls.size() / 2];
        // Encoding: the stems as 16-bit WAV, as the runner writes them by default.
        const double t0 = now_s();
        fs::create_directories(scratch);
        std::vector<std::future<void>> writes;
        for (int64_t s = 0; s < est.size(0); ++s)
          writes.push_back(std::async(std::launch::async, [&, s] {
            write_stem((scratch / ("stem" + std::to_string(s) + ".wav")).string(), est[s], sr, sr, audio::Clip::rescale,
                       audio::Encoding::pcm16);
          }));
        for (auto& w : writes) w.get();
        const double encode_s = now_s() - t0;
        std::string attention;  // this precision's model's own decisions
        for (const auto& d : m.plan.kernels.attention.log->entries())
          attention += (attention.empty() ? "" : "; ") + d.shape + ": " + d.backend + " (" + d.reason + ")";
        row.update({{"seconds", seconds}, {"wall_s", wall}, {"realtime", seconds / wall}, {"decode_s", decode_s},
                    {"warmup_s", warmup_s}, {"warmup_seconds", static_cast<double>(warm) / sr},
                    {"encode_s", encode_s}, {"realtime_with_io", seconds / (decode_s + wall + encode_s)},
                    {"peak_allocated_bytes", mem.peak_allocated}, {"peak_reserved_bytes", mem.peak_reserved},
                    {"graphs_status", report.graphs}, {"attention", attention}, {"forward_calls", report.forward_calls},
                    {"walls_s", walls}});
        std::string attention_short = attention.substr(attention.find(": ") == std::string::npos ? 0 : attention.find(": ") + 2, 34);
        std::printf("%-9s %5lld %6s %-34s %10.1f %10.1f %10s %10s\n", precision.c_str(), static_cast<long long>(batch),
                    setting.low_memory ? "lowmem"
                    : !graphs          ? "off"
                    : report.graphs.rfind("replaying", 0) == 0 ? "on"
                                                                : "eager",
                    attention_short.c_str(),
                    seconds / wall, seconds / (decode_s + wall + encode_s), gb(mem.peak_allocated).c_str(),
                    gb(mem.peak_reserved).c_str());
      } catch (const std::exception& e) {
        row["error"] = error_text(e);
        std::printf("%-9s %5lld %6s failed: %s\n", precision.c_str(), static_cast<long long>(batch), graphs ? "on" : "off",
                    error_text(e).substr(0, 160).c_str());
        m.model->release_graphs();
        bench::release_gpu_cache();
      }
      std::fflush(stdout);
      rows.push_back(row);
    }
    m.model.reset();
    bench::release_gpu_cache();
    if (precision == loaded_precision) loaded = std::move(m);  // its name, device and load time, for the result
  }
  // File by file: std::filesystem::remove_all called a null function on the
  // GPU machine (Ubuntu 24.04 with PyTorch's libraries; seen under cuda-gdb).
  for (const auto& entry : fs::directory_iterator(scratch)) fs::remove(entry.path());
  fs::remove(scratch);
  std::string gpu_name = "none";
#if defined(STEMKIT_ROCM)
  if (loaded.device.is_cuda()) gpu_name = attention::query_gpu(loaded.device.index(), true).describe();
#else
  if (loaded.device.is_cuda()) gpu_name = attention::query_gpu(loaded.device.index(), false).describe();
#endif
  return {{"track", track},
          {"seconds", seconds},
          {"model", loaded.name},
          {"load_s", loaded.load_s},
          {"to_device_s", loaded.to_device_s},
          {"device", loaded.device.str()},
          {"gpu", gpu_name},
          {"shifts", options.separation.shifts},
          {"overlap", options.separation.overlap},
          {"version", version_text()},
          {"rows", rows}};
}

}  // namespace stemkit::separate
