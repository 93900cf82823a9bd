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
#include "runtime/error.h"
#include "runtime/separate/download.h"
#include "runtime/separate/model_cache.h"
#include "runtime/separate/model_catalog.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/progress.h"
#include "runtime/version.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

bool is_out_of_memory(const std::exception& e) {
  std::string m = e.what();
  return m.find("out of memory") != std::string::npos || m.find("OutOfMemory") != std::string::npos;
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
        throw Error(
            "out of GPU memory at --batch-size 1: try --precision fp16 or bf16, a shorter "
            "--segment, or --device cpu ({})",
            std::string(e.what()).substr(0, 200));
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
  const OtherMethod method = o.other_method;
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

}  // namespace

at::Device parse_device(const std::string& text) {
  if (text == "auto") return at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const std::exception&) {
    throw Error("--device {}: expected cpu, cuda, cuda:N or auto", text);
  }
  if (device.is_cuda() && !at::hasCUDA())
    throw Error(
        "--device {}: this libtorch ({}) sees no CUDA or ROCm GPU; "
        "use --device cpu, or build against a GPU libtorch (docs/runtime.md)",
        text, version_text().substr(0, version_text().find('\n')));
  if (!device.is_cpu() && !device.is_cuda()) throw Error("--device {}: expected cpu, cuda, cuda:N or auto", text);
  if (device.is_cuda() && !device.has_index()) device = at::Device(at::kCUDA, 0);
  if (device.is_cuda()) {
    const int gpus = at::detail::getCUDAHooks().getNumGPUs();
    if (device.index() >= gpus)
      throw Error("--device {}: this machine has {} GPU{} (cuda:0{})", text, gpus, gpus == 1 ? "" : "s",
                  gpus > 1 ? fmt::format(" to cuda:{}", gpus - 1) : "");
  }
  return device;
}

at::ScalarType parse_precision(const std::string& text, const at::Device& device) {
  if (text == "fp32") return at::kFloat;
  if (text == "bf16") {
#if !STEMKIT_TORCH_AT_LEAST(2, 0)
    if (device.is_cpu())
      throw Error(
          "--precision bf16 on the CPU needs libtorch 2.x (1.13's oneDNN transposed convolutions reject "
          "bf16); use fp32");
#endif
    return at::kBFloat16;
  }
  if (text == "fp16") {
    if (!device.is_cuda()) throw Error("--precision fp16 needs a GPU (--device cuda); on the CPU use fp32 or bf16");
    return at::kHalf;
  }
  throw Error("--precision {}: expected auto, fp32, fp16 or bf16", text);
}

at::Tensor to_tensor(audio::Audio&& a) {  // the samples become the storage: no copy of a whole track
  auto* samples = new std::vector<float>(std::move(a.data));
  return at::from_blob(
      samples->data(), {a.channels, a.frames}, [samples](void*) { delete samples; },
      at::TensorOptions().dtype(at::kFloat));
}

// At the model's rate it is written straight from the tensor's memory (a
// view of the separation's result: no copy), the clip mode applied while the
// samples are converted; resampled, from a copy.
void write_stem(const std::string& path, const at::Tensor& stem, int samplerate, int out_rate, audio::Clip clip,
                const audio::OutputFormat& format) {
  if (out_rate != samplerate) {
    audio::Audio a = audio::resample(to_audio(stem, samplerate), out_rate);
    audio::prevent_clip(a, clip);
    audio::write_audio(path, a, format);
    return;
  }
  const at::Tensor c = stem.to(at::kCPU, at::kFloat).contiguous();
  audio::write_audio(path, audio::AudioView{samplerate, static_cast<int>(c.size(0)), c.size(1), c.data_ptr<float>()},
                     format, clip);
}

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
  const at::Tensor silence =
      at::zeros({model.model->audio_channels(), model.model->segment_samples() * sep.batch_size});
  model.model->separate(silence, sep);
}

LoadedModel load_model(const RunnerOptions& o) {
  LoadedModel m;
  m.device = o.device;
  // An explicit precision was checked against the device when parsed; auto is decided once the model's kind is known.
  std::optional<at::ScalarType> precision = o.precision;
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
  std::string precision_reason = o.precision ? std::string("--precision ") + precision_name(*o.precision) : "";
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (ends_with(o.model, ".yaml") || ends_with(o.model, ".yml")) {
    // A RoFormer: its MSST configuration and its weights.
    if (!o.checkpoint)
      throw Error("{} is an MSST model configuration: give its weights with --checkpoint FILE.ckpt", o.model);
    if (!fs::exists(o.model)) throw Error("{}: no such configuration file", o.model);
    if (!fs::exists(*o.checkpoint)) throw Error("{}: no such checkpoint file", *o.checkpoint);
    const models::MsstConfig config = models::load_msst_config(o.model);
    m.model = models::make_roformer_separator(config, *o.checkpoint, &m.warnings);
    m.name = output_model_name(*o.checkpoint);
    config_batch_size = config.batch_size;
    // MSST's demix: fp16 autocast on a GPU when the config's training.use_amp is set (its default).
    if (!precision) {
      precision = m.device.is_cuda() && config.use_amp ? at::kHalf : at::kFloat;
      precision_reason = m.device.is_cuda() ? config.use_amp
                                                  ? "auto: the config's training.use_amp, MSST's fp16 autocast"
                                                  : "auto: the config has training.use_amp off"
                                            : "auto: fp32 on the CPU";
    }
  } else if (o.separation.tta) {
    throw Error(
        "--tta is MSST's test-time augmentation, for RoFormer configurations (-n config.yaml); "
        "demucs models average random shifts instead: --shifts N");
  } else if (o.checkpoint) {
    throw Error(
        "--checkpoint goes with an MSST .yaml configuration (-n config.yaml); demucs models carry "
        "their configuration in the .th file");
  } else if (looks_like_model_path(o.model)) {
    if (!fs::exists(o.model)) throw Error("{}: no such model file", o.model);
    paths = {o.model};
    m.name = output_model_name(o.model);
  } else {
    const CatalogModel& cm = require_model(o.model);
    if (cm.architecture != Architecture::htdemucs)
      throw Error(
          "model {} is an HDemucs (demucs v3) model; "
          "this runner runs HTDemucs: htdemucs, htdemucs_ft, htdemucs_6s",
          cm.name);
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
  if (!precision) {
    precision = at::kFloat;
    precision_reason = "auto: demucs models run fp32 upstream";
  }
  m.dtype = *precision;
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
  p.graphs_reason = !m.device.is_cuda()             ? "the CPU runs eagerly"
                    : !capture::capture_supported() ? "this build has no CUDA/HIP graph support"
                    : o.low_memory                  ? "--low-memory: a captured graph keeps its own memory pool"
                    : !o.separation.graphs          ? "--no-graphs"
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

nlohmann::json separate_files(LoadedModel& model, const std::vector<fs::path>& inputs, const RunnerOptions& o,
                              int& failed, ReadAhead* first) {
  failed = 0;
  const auto& sources = model.model->stems();
  const int sr = static_cast<int>(model.model->samplerate());
  const int channels = static_cast<int>(model.model->audio_channels());
  std::vector<std::string> stem_names;
  if (o.two_stems) {
    check_two_stems(*o.two_stems, sources, model.name);
    stem_names = two_stem_names(*o.two_stems, o.other_method);
  } else {
    stem_names = sources;
  }
  audio::check_output_format(o.format, o.output);  // parse_command_line checked it too, before the model loaded
  const audio::OutputFormat& output = o.output;
  if (o.format == "opus" && !o.quiet)
    std::fprintf(stderr, "separate: Opus holds 48 kHz only: the stems are resampled to 48000 Hz (soxr)\n");
  const audio::Clip clip = o.clip;
  // Every output path is known, and checked for collisions, before any work.
  const auto plan =
      plan_outputs(inputs, stem_names, FilenameTemplate(o.filename), output_root(o.out, model.name), o.format);
  // ...and the directories they go to found writable before the first
  // separation, without making them: a file that fails leaves no empty folder.
  std::set<fs::path> dirs;
  for (const auto& p : plan) dirs.insert(p.path.parent_path().empty() ? fs::path(".") : p.path.parent_path());
  for (const auto& dir : dirs) {
    fs::path existing = fs::absolute(dir);  // the nearest folder that exists: the stems' folders are made in it
    while (!fs::exists(existing) && existing.has_parent_path() && existing != existing.parent_path())
      existing = existing.parent_path();
    std::string problem;
    if (!fs::is_directory(existing))
      problem = fmt::format("{} is not a folder", existing.string());
    else if (::access(existing.c_str(), W_OK | X_OK) != 0)
      problem = fmt::format("{}: {}", existing.string(), std::strerror(errno));
    if (!problem.empty())
      throw Error("cannot write stems into {} ({}); choose another output root with -o DIR, or another --filename",
                  dir.string(), problem);
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
    if (o.skip_existing &&
        std::all_of(outs[k].begin(), outs[k].end(), [](const PlannedOutput* p) { return fs::exists(p->path); })) {
      entries[k]["status"] = "skipped";
      if (!o.quiet)
        std::fprintf(stderr, "separate: %s: every stem exists, skipped (--skip-existing)\n", inputs[k].c_str());
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
    std::string decoder, codec;  // the library that read the file, and its name for the codec (--json)
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
      d.decoder = in.decoder;
      d.codec = in.codec;
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
        est = separate_with_retry(
            model, d.wav, sep, [&](double f) { bar.update(f * seconds, seconds); }, &report, o.quiet);
      }
      const double separate_s = now_s() - t0;
      entries[k].update({{"seconds", seconds},
                         {"decode_s", d.decode_s},
                         {"decoder", d.decoder},
                         {"codec", d.codec},
                         {"separate_s", separate_s},
                         {"realtime", seconds / separate_s},
                         {"batch_size", sep.batch_size},
                         {"graphs", report.graphs}});
      run_seconds += seconds;
      // The stems as tensors on the CPU (views of est, or made from it here); the
      // encoder's threads clip, convert and write them (resampled when asked),
      // so that the next file's separation need not wait for that.
      std::vector<std::pair<const PlannedOutput*, at::Tensor>> stems;
      for (const auto& [stem, tensor] : stems_of(est, d.wav, sources, o)) {
        const auto* p =
            *std::find_if(outs[k].begin(), outs[k].end(), [&](const PlannedOutput* q) { return q->stem == stem; });
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
            write_stem(p->path.string(), tensor, sr, o.keep_samplerate ? in_rate : sr, clip, output);
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

}  // namespace stemkit::separate
