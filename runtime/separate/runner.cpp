#include "runtime/separate/runner.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unistd.h>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/audio/audio.h"
#include "runtime/bench/gpu_memory.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/capture/graph_runner.h"
#include "runtime/error.h"
#include "runtime/memory/host_block_cache.h"
#include "runtime/separate/download.h"
#include "runtime/separate/model_cache.h"
#include "runtime/separate/model_catalog.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/progress.h"
#include "runtime/separate/sample_check.h"
#include "runtime/separate/stem_set.h"
#include "runtime/timeline.h"
#include "runtime/version.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The GPU's "CUDA out of memory", the CPU allocator's "can't allocate memory"
// (an absurd size asked of it), or std::bad_alloc.
bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
  std::string m = e.what();
  return m.find("out of memory") != std::string::npos || m.find("OutOfMemory") != std::string::npos ||
         m.find("can't allocate memory") != std::string::npos;
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
// files keep the smaller batch. `say`: where its line goes (above a run's progress).
at::Tensor separate_with_retry(LoadedModel& model, const at::Tensor& wav, models::SeparationOptions& o,
                               const models::ProgressFn& progress, models::SeparationReport* report, bool quiet,
                               const std::function<void(const std::string&)>& say) {
  for (;;) {
    try {
      return model.model->separate(wav, o, progress, report);
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
      model.model->release_graphs();
      bench::release_gpu_cache();
      if (o.batch_size <= 1) {
        if (!model.device.is_cuda()) throw;  // error_text gives the advice
        throw Error(
            "out of GPU memory at --batch-size 1: try --precision fp16 or bf16, a shorter "
            "--segment, or --device cpu ({})",
            std::string(e.what()).substr(0, 200));
      }
      const int64_t smaller = o.batch_size / 2;
      if (!quiet)
        say(fmt::format("separate: out of {} memory at --batch-size {}; retrying with {}",
                        model.device.is_cuda() ? "GPU" : "CPU", o.batch_size, smaller));
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

// The command line's chunking over an MSST configuration's (docs/cli.md,
// "Options per model"): --overlap (as num_overlap) or --num-overlap, and the
// chunk in seconds (--segment, rounded down to whole STFT hops, as MSST's
// configurations have it), samples (--chunk-size) or, as audio-separator
// counts it, STFT frames (--mdxc_segment_size: hop x (frames - 1)). Returns
// the plan's `cutting` lines: the values and where they came from.
std::vector<std::pair<std::string, plan::Reasoned>> apply_msst_chunking(models::MsstConfig& config,
                                                                        const MsstChunkOptions& o) {
  if (o.num_overlap) config.num_overlap = *o.num_overlap;
  std::string chunk_reason = "the config's";
  if (o.chunk) {
    int64_t hop = 512;  // the RoFormers' default stft_hop_length; a bad value is the model's to refuse
    if (auto it = config.model.find("stft_hop_length"); it != config.model.end() && it->is_number_integer())
      hop = std::max<int64_t>(1, it->get<int64_t>());
    switch (o.chunk_unit) {
      case MsstChunkOptions::Unit::seconds:
        config.chunk_size =
            static_cast<int64_t>(std::floor(*o.chunk * static_cast<double>(config.sample_rate) / hop + 1e-9)) * hop;
        if (config.chunk_size <= 0)
          throw Error("{}: shorter than one STFT hop of {} ({} samples at {} Hz)", o.chunk_from, config.path, hop,
                      config.sample_rate);
        chunk_reason =
            fmt::format("{}: seconds x {} Hz, in whole STFT hops of {}", o.chunk_from, config.sample_rate, hop);
        break;
      case MsstChunkOptions::Unit::samples:
        config.chunk_size = static_cast<int64_t>(*o.chunk);
        chunk_reason = o.chunk_from;
        break;
      case MsstChunkOptions::Unit::frames:
        config.chunk_size = hop * (static_cast<int64_t>(*o.chunk) - 1);
        chunk_reason = fmt::format("{}: STFT hop {} x (frames - 1)", o.chunk_from, hop);
        break;
    }
  }
  if (config.chunk_size < config.num_overlap) {
    std::string what = o.chunk_from;
    if (!o.num_overlap_from.empty()) what += (what.empty() ? "" : " with ") + o.num_overlap_from;
    throw Error("{}: a chunk of {} samples cannot start a new chunk every chunk_size / num_overlap = {} / {} samples",
                what.empty() ? config.path : what, config.chunk_size, config.chunk_size, config.num_overlap);
  }
  return {{"chunk_size",
           {fmt::format("{} samples ({:.2f} s)", config.chunk_size,
                        static_cast<double>(config.chunk_size) / static_cast<double>(config.sample_rate)),
            chunk_reason}},
          {"num_overlap",
           {fmt::format("{} (a chunk every {} samples)", config.num_overlap, config.chunk_size / config.num_overlap),
            o.num_overlap_from.empty() ? "the config's inference.num_overlap" : o.num_overlap_from}}};
}

ProgressBar::Options bar_options(const std::string& label, const ProgressUnit& unit, bool quiet) {
  ProgressBar::Options b;
  b.label = label;
  b.unit = unit;
  b.quiet = quiet;
  return b;
}

}  // namespace

// What a set's marker records of the settings that made it: --skip-existing
// redoes a set made otherwise (another precision, encoding, clip mode...).
nlohmann::json stem_set_settings(const LoadedModel& model, const RunnerOptions& o) {
  const auto& s = o.separation;
  nlohmann::json cutting = nlohmann::json::object();
  for (const auto& [name, value] : model.plan.cutting) cutting[name] = value.value;
  return {{"model", model.name},
          {"precision", precision_name(model.dtype)},
          {"format", o.format},
          {"bitrate_kbps", o.output.bitrate_kbps},
          {"mp3_preset", o.output.mp3_preset},
          {"encoding", o.output.encoding == audio::Encoding::pcm16   ? "pcm16"
                       : o.output.encoding == audio::Encoding::pcm24 ? "pcm24"
                                                                     : "float32"},
          {"clip", o.clip == audio::Clip::rescale ? "rescale"
                   : o.clip == audio::Clip::clamp ? "clamp"
                   : o.clip == audio::Clip::tanh  ? "tanh"
                                                  : "none"},
          {"keep_samplerate", o.keep_samplerate},
          {"cutting", cutting},  // demucs' segment, overlap and shifts, or MSST's chunk_size and num_overlap
          {"seed", s.seed},
          {"tta", s.tta}};  // not --sanitize: adding it to resume a batch must not redo the files it did not change
}

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
  timeline::mark("stem on the CPU");
  audio::write_audio(path, audio::AudioView{samplerate, static_cast<int>(c.size(0)), c.size(1), c.data_ptr<float>()},
                     format, clip);
}

std::string error_text(const std::exception& e) {
  std::string m = e.what();
  // libtorch appends its C++ backtrace: "Exception raised from ..." and/or
  // "frame #0: ..." lines (its allocator's enforce failures have only the latter).
  for (const char* tail : {"\nException raised from", "\nframe #"})
    if (const size_t cut = m.find(tail); cut != std::string::npos) m.resize(cut);
  // An allocation on the CPU that failed: how much was asked, and what to
  // change. A model package with absurd sizes (channels, segment) fails here
  // while loading. (The GPU's out-of-memory message says this already.)
  if (!dynamic_cast<const std::bad_alloc*>(&e) && m.find("can't allocate memory") == std::string::npos) return m;
  std::string asked;
  if (const size_t at = m.find("you tried to allocate "); at != std::string::npos) {
    const double bytes = std::strtod(m.c_str() + at + 22, nullptr);
    asked = fmt::format(" ({:.1f} GB asked for at once)", bytes / 1e9);
  }
  return fmt::format(
      "out of memory{}: use a smaller --batch-size, --segment or --low-memory, fewer --jobs, or a machine with more "
      "memory; a model package that asks for this much while loading is damaged or not meant for this runner",
      asked);
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
  // A demucs model's first forward also loads cuDNN's libraries and makes
  // its handle (a tenth of a second; docs/benchmarks.md, "The whole song"):
  // done here by one small convolution of each kind, in each precision the
  // run may take, which leaves only the plans of the model's own shapes to
  // its first batch. The RoFormers make no convolutions.
  const ModelKind kind = model_kind(o.model);
  const CatalogModel* listed =
      kind == ModelKind::demucs_file || kind == ModelKind::msst_config ? nullptr : find_model(o.model);
  const bool convolutions = kind == ModelKind::demucs_file || (listed && !is_roformer(*listed));
  std::future<void> gpu_started;
  if (m.device.is_cuda())
    gpu_started = std::async(std::launch::async, [device = m.device, convolutions, precision] {
      const at::Tensor t = at::ones({8, 8}, at::TensorOptions().device(device));
      t.sum().item<float>();
      timeline::mark("GPU context");
      at::mm(t, t).sum().item<float>();
      timeline::mark("cuBLAS handle");
      if (!convolutions) return;
      std::vector<at::ScalarType> dtypes = {at::kFloat};
      if (precision && *precision != at::kFloat) dtypes.push_back(*precision);
      try {
        for (const at::ScalarType dtype : dtypes) {
          const auto on = at::TensorOptions().device(device).dtype(dtype);
          const at::Tensor x = at::ones({1, 4, 64}, on), w = at::ones({4, 4, 8}, on);
          (at::conv1d(x, w, {}, 4).sum() + at::conv_transpose1d(x, w, {}, 4).sum()).item<float>();
        }
        timeline::mark("cuDNN handle");
      } catch (const std::exception&) {
        // Only a head start (a precision cuDNN cannot convolve, say): the
        // model's own first convolution says what is wrong, in context.
      }
    });
  std::vector<std::string> paths;
  std::vector<std::vector<double>> weights;
  std::optional<double> segment;
  int64_t config_batch_size = 0;  // an MSST configuration's inference.batch_size; 0: none
  std::vector<std::pair<std::string, plan::Reasoned>> cutting;
  std::string precision_reason = o.precision ? std::string("--precision ") + precision_name(*o.precision) : "";
  // Which options a kind of model takes was checked when they were parsed (options.cpp).
  // A RoFormer: its MSST configuration and its weights, from the command line or the catalog.
  auto load_msst = [&](const std::string& config_path, const std::string& checkpoint) {
    models::MsstConfig config = models::load_msst_config(config_path);
    m.files = {config_path, checkpoint};
    cutting = apply_msst_chunking(config, o.msst);
    m.model = models::make_roformer_separator(config, checkpoint, &m.warnings);
    config_batch_size = config.batch_size;
    // MSST's demix: fp16 autocast on a GPU when the config's training.use_amp is set (its default).
    if (!precision) {
      precision = m.device.is_cuda() && config.use_amp ? at::kHalf : at::kFloat;
      precision_reason = m.device.is_cuda() ? config.use_amp
                                                  ? "auto: the config's training.use_amp, MSST's fp16 autocast"
                                                  : "auto: the config has training.use_amp off"
                                            : "auto: fp32 on the CPU";
    }
  };
  if (kind == ModelKind::msst_config) {
    if (!o.checkpoint)
      throw Error("{} is an MSST model configuration: give its weights with --checkpoint FILE.ckpt", o.model);
    if (!fs::exists(o.model)) throw Error("{}: no such configuration file", o.model);
    if (!fs::exists(*o.checkpoint)) throw Error("{}: no such checkpoint file", *o.checkpoint);
    load_msst(o.model, *o.checkpoint);
    m.name = output_model_name(*o.checkpoint);
  } else if (kind == ModelKind::demucs_file) {
    if (!fs::exists(o.model)) throw Error("{}: no such model file", o.model);
    paths = {o.model};
    m.name = output_model_name(o.model);
  } else {                                             // a name in the catalog: a demucs model or a RoFormer
    const CatalogModel* cm = &require_model(o.model);  // throws, naming the closest model
    if (!runnable(*cm))
      throw Error(
          "model {} is an HDemucs (demucs v3) model; "
          "this runner runs HTDemucs (htdemucs, htdemucs_ft, htdemucs_6s) and the RoFormers of --list-models",
          cm->name);
    ModelCache cache = ModelCache::from_option(o.model_dir, o.env);
    std::unique_ptr<ProgressBar> bar;
    auto progress = [&](const CatalogMember& member, int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>(bar_options(member.file_name, ProgressUnit::megabytes(), o.quiet));
      bar->update(static_cast<double>(done), static_cast<double>(total));
      if (total > 0 && done >= total) bar.reset();
    };
    for (const auto& p : ensure_model_files(with_mirror(*cm, o.model_mirror), cache, o.download, progress))
      paths.push_back(p.string());
    t0 = now_s();
    m.name = cm->name;
    if (is_roformer(*cm)) {
      load_msst(paths.at(0), paths.at(1));
    } else {
      weights = cm->weights;
      segment = cm->segment;
    }
  }
  if (!m.model) {
    m.files = paths;
    m.model = models::make_separator(models::load_demucs_bag(m.name, paths, weights, segment));
    const auto& sep = o.separation;
    const double seconds =
        sep.segment ? *sep.segment
        : segment   ? *segment
                    : static_cast<double>(m.model->segment_samples()) / static_cast<double>(m.model->samplerate());
    cutting = {{"segment", {fmt::format("{:.2f} s", seconds), sep.segment ? "--segment" : "the model's"}},
               {"overlap",
                {fmt::format("{}", sep.overlap),
                 "--overlap (default 0.25): a segment every (1 - overlap) x "
                 "segment"}},
               {"shifts", {std::to_string(sep.shifts), "--shifts (default 1)"}}};
  }
  if (!precision) {
    precision = at::kFloat;
    precision_reason = "auto: demucs models run fp32 upstream";
  }
  m.dtype = *precision;
  timeline::mark("model read");
  const double t_move = now_s();
  if (gpu_started.valid()) {
    gpu_started.get();  // its error, if the GPU could not start, is the user's answer
    timeline::mark("GPU started (waited for)");
  }
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
  p.cutting = std::move(cutting);
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
  p.host_block_cache = !m.device.is_cuda();
  p.host_block_cache_reason =
      m.device.is_cuda() ? "the network's activations live on the GPU"
                         : "the CPU runs the network: large blocks kept for reuse, 2 MiB pages, instead of a fresh "
                           "mmap (faulted in and zeroed again) for every activation";
  if (p.host_block_cache) memory::install_host_block_cache();
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
  timeline::mark("weights on the device");
  return m;
}

ReadAhead read_ahead(const fs::path& input) {
  ReadAhead r;
  r.input = input;
  r.samples = std::async(std::launch::async, [input] {
    const double t0 = now_s();
    audio::Audio a = audio::read_audio(input.string());
    timeline::mark("first file read");
    return std::make_pair(std::move(a), now_s() - t0);
  });
  return r;
}

PreparedFiles prepare_files(const LoadedModel& model, const std::vector<fs::path>& inputs, const RunnerOptions& o,
                            const TrackDone& on_track) {
  PreparedFiles files;
  files.inputs = inputs;
  const auto& sources = model.model->stems();
  std::vector<std::string> stem_names;
  if (o.two_stems) {
    check_two_stems(*o.two_stems, sources, model.name);
    stem_names = two_stem_names(*o.two_stems, o.other_method);
  } else {
    stem_names = sources;
  }
  audio::check_output_format(o.format, o.output);  // parse_command_line checked it too, before the model loaded
  if (o.format == "opus" && !o.quiet)
    std::fprintf(stderr, "separate: Opus holds 48 kHz only: the stems are resampled to 48000 Hz (soxr)\n");
  // Every output path is known, and checked for collisions, before any work.
  const auto& plan = files.plan =
      plan_outputs(inputs, stem_names, FilenameTemplate(o.filename), output_root(o.out, model.name), o.format);
  // ...and found writable before the first separation, without making the
  // folders: a file that fails leaves no empty folder.
  check_outputs_writable(plan);
  // What killed runs left in those folders (docs/cli.md, "Stems as a set").
  const auto removed = remove_stale_temporaries(plan);
  if (!removed.empty() && !o.quiet)
    std::fprintf(stderr, "separate: removed %zu temporary file%s left by an interrupted run (%s%s)\n", removed.size(),
                 removed.size() == 1 ? "" : "s", removed.front().c_str(), removed.size() > 1 ? ", ..." : "");
  const nlohmann::json& settings = files.settings = stem_set_settings(model, o);

  std::vector<nlohmann::json>& entries = files.entries;
  entries.resize(inputs.size());
  std::vector<std::vector<const PlannedOutput*>>& outs = files.outs;
  outs.resize(inputs.size());
  std::vector<size_t>& work = files.work;  // the inputs to separate, in order
  for (size_t k = 0; k < inputs.size(); ++k) {
    for (const auto& p : plan)
      if (p.input == inputs[k]) outs[k].push_back(&p);
    entries[k] = {{"input", inputs[k].string()}};
    for (const auto* p : outs[k]) entries[k]["outputs"][p->stem] = p->path.string();
    std::string why;
    if (o.skip_existing && stem_set_complete(stem_set_marker(inputs[k], outs[k]), outs[k], settings, &why)) {
      entries[k]["status"] = "skipped";
      if (on_track) on_track(entries[k]);
      if (!o.quiet)
        std::fprintf(stderr, "separate: %s: its set of stems is complete, skipped (--skip-existing)\n",
                     inputs[k].c_str());
    } else {
      if (o.skip_existing && !o.quiet &&
          std::any_of(outs[k].begin(), outs[k].end(), [](const PlannedOutput* p) { return fs::exists(p->path); }))
        std::fprintf(stderr, "separate: %s: stems exist but not as a complete set (%s); separating it again\n",
                     inputs[k].c_str(), why.c_str());
      work.push_back(k);
    }
  }
  return files;
}

RunProgress::Options run_progress_options(const RunnerOptions& o, size_t files, std::vector<std::string> slots) {
  RunProgress::Options p;
  p.files = files;
  p.slots = std::move(slots);
  p.quiet = o.quiet;
  p.log_interval_s = o.progress_interval_s;
  return p;
}

int decode_ahead_files(unsigned cpu_threads, size_t devices) {
  const unsigned per_device = cpu_threads / static_cast<unsigned>(std::max<size_t>(1, devices));
  return static_cast<int>(std::min(3u, 1 + per_device / 8));
}

void file_outcome(RunProgress& progress, const nlohmann::json& entry) {
  progress.file_done(entry.value("status", "") == "ok", entry.value("seconds", 0.0), entry.contains("separate_s"));
}

TrackSequence::TrackSequence(const PreparedFiles& files, TrackDone on_track)
    : files_(files), on_track_(std::move(on_track)), finished_(files.inputs.size(), 0) {}

void TrackSequence::done(size_t k) {
  std::lock_guard<std::mutex> lock(mutex_);
  finished_.at(k) = 1;
  for (; emitted_ < files_.work.size() && finished_[files_.work[emitted_]]; ++emitted_)
    if (on_track_) on_track_(files_.entries[files_.work[emitted_]]);
}

void separate_work(LoadedModel& model, PreparedFiles& files, const RunnerOptions& o, FileWorker& worker,
                   ReadAhead* first) {
  const std::vector<fs::path>& inputs = files.inputs;
  std::vector<nlohmann::json>& entries = files.entries;
  const std::vector<std::vector<const PlannedOutput*>>& outs = files.outs;
  const nlohmann::json& settings = files.settings;
  const auto& sources = model.model->stems();
  const int sr = static_cast<int>(model.model->samplerate());
  const int channels = static_cast<int>(model.model->audio_channels());
  const audio::OutputFormat& output = o.output;
  const audio::Clip clip = o.clip;
  models::SeparationOptions sep = separation_options(model, o);
  auto say = [&](const std::string& line) {  // above the run's progress, where it is drawn
    if (worker.progress)
      worker.progress->message(line);
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  };
  auto fail = [&](size_t k, const std::exception& e) {
    ++worker.failed;
    entries[k]["status"] = "failed";
    entries[k]["error"] = error_text(e);
    say(fmt::format("separate: {}: {}", inputs[k].string(), error_text(e)));
    worker.done(k);
  };

  // A pipeline over the files: the next files are decoded (--decode-ahead of
  // them at once, each on its own thread) and the previous one's stems are
  // encoded while the current one is separated, so the GPU does not wait for
  // the decoders (at several hundred times realtime, decoding and encoding
  // take as long as the separation, an MP3's decoding longer). At most
  // decode-ahead + 2 tracks are in memory: those ahead, the current, and the
  // previous one's stems.
  struct Decoded {
    at::Tensor wav;
    int in_rate = 0;
    std::string decoder, codec;  // the library that read the file, and its name for the codec (--json)
    double decode_s = 0;
    int64_t sanitized = 0;  // NaN or infinite samples replaced with 0 (--sanitize)
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
      d.sanitized =
          check_samples(inputs[k].string(), in.data.data(), in.channels, in.frames, in.samplerate, o.sanitize);
      d.in_rate = in.samplerate;
      d.decoder = in.decoder;
      d.codec = in.codec;
      d.wav = to_tensor(audio::to_channels(audio::resample(std::move(in), sr), channels));
      d.decode_s = read_s + now_s() - t0;
      timeline::mark("decoded: " + inputs[k].filename().string());
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
        say(fmt::format("separate: {}: {:.1f} s of audio, separated in {:.1f} s ({:.1f}x realtime) -> {}",
                        inputs[encoding_index].string(), seconds, separate_s, seconds / separate_s,
                        outs[encoding_index].front()->path.parent_path().string()));
      worker.done(encoding_index);
    } catch (const std::exception& e) {
      fail(encoding_index, e);
    }
  };

  // The files being decoded, in the order they are separated.
  const size_t depth = static_cast<size_t>(
      o.decode_ahead > 0 ? o.decode_ahead : decode_ahead_files(std::thread::hardware_concurrency(), worker.devices));
  std::deque<std::pair<size_t, std::future<Decoded>>> decoding;
  auto decode_more = [&] {
    while (decoding.size() < depth)
      if (const std::optional<size_t> next = worker.next())
        decoding.emplace_back(*next, start_decode(*next));
      else
        break;
  };
  decode_more();
  while (!decoding.empty()) {
    const size_t k = decoding.front().first;
    std::future<Decoded> decoded = std::move(decoding.front().second);
    decoding.pop_front();
    entries[k]["device"] = model.device.str();
    entries[k]["worker"] = worker.index;
    Decoded d;
    try {
      d = decoded.get();
    } catch (const std::exception& e) {
      fail(k, e);
      decode_more();
      continue;
    }
    decode_more();
    if (d.sanitized > 0) {  // said with --quiet too: the stems are not what the file says
      entries[k]["sanitized_samples"] = d.sanitized;
      say(fmt::format("separate: {}: {} NaN or infinite sample{} replaced with 0 (--sanitize)", inputs[k].string(),
                      d.sanitized, d.sanitized == 1 ? "" : "s"));
    }
    try {
      const double seconds = static_cast<double>(d.wav.size(1)) / sr;
      models::SeparationReport report;
      const double t0 = now_s();
      at::Tensor est;
      {
        const std::string track = split_track_name(inputs[k]).track;
        std::optional<ProgressBar> bar;
        if (!worker.progress) bar.emplace(bar_options(track, ProgressUnit::audio_seconds(), o.quiet));
        struct Slot {  // the file's bar in the run's block, for as long as it is separated
          RunProgress* run;
          size_t slot;
          bool separated = false;
          ~Slot() {
            if (run) run->end_file(slot, separated);
          }
        } slot{worker.progress, worker.slot};
        if (worker.progress) worker.progress->start_file(worker.slot, track, seconds);
        bool first_window = true;
        est = separate_with_retry(
            model, d.wav, sep,
            [&](double f) {
              if (first_window && f > 0) {
                timeline::mark("first batch queued: " + inputs[k].filename().string());
                first_window = false;
              }
              if (bar)
                bar->update(f * seconds, seconds);
              else
                worker.progress->update(worker.slot, f * seconds);
            },
            &report, o.quiet, say);
        slot.separated = true;
      }
      const double separate_s = now_s() - t0;
      timeline::mark("separated: " + inputs[k].filename().string());
      entries[k].update({{"seconds", seconds},
                         {"decode_s", d.decode_s},
                         {"decoder", d.decoder},
                         {"codec", d.codec},
                         {"separate_s", separate_s},
                         {"realtime", seconds / separate_s},
                         {"batch_size", sep.batch_size},
                         {"graphs", report.graphs}});
      worker.seconds += seconds;
      // The stems as tensors on the CPU (views of est, or made from it here); the
      // encoder's threads clip, convert and write them (resampled when asked),
      // so that the next file's separation need not wait for that.
      std::vector<std::pair<size_t, at::Tensor>> stems;  // index in outs[k], samples
      for (const auto& [stem, tensor] : stems_of(est, d.wav, sources, o)) {
        const size_t i =
            std::find_if(outs[k].begin(), outs[k].end(), [&](const PlannedOutput* q) { return q->stem == stem; }) -
            outs[k].begin();
        stems.emplace_back(i, tensor);
      }
      join_encoding();  // the previous file's stems are on disk before this file's start
      encoding_index = k;
      encoder = std::async(std::launch::async, [&, k, stems = std::move(stems), in_rate = d.in_rate]() mutable {
        const double t1 = now_s();
        // The stems under temporary names, renamed into place together once all
        // are written; an error on the way removes them (stem_set.h).
        StemSetWriter set(inputs[k], outs[k], settings);
        set.make_folders();
        std::vector<std::future<void>> writes;  // each stem is its own file: in parallel
        for (auto& [i, tensor] : stems)
          writes.push_back(std::async(std::launch::async, [&, i = i, &tensor = tensor] {
            try {
              write_stem(set.temporary(i).string(), tensor, sr, o.keep_samplerate ? in_rate : sr, clip, output);
            } catch (const std::exception& e) {
              throw Error("writing {} failed: {}", outs[k][i]->path.filename().string(), error_text(e));
            }
          }));
        for (auto& f : writes) f.wait();
        timeline::mark("stems written: " + inputs[k].filename().string());
        try {
          for (auto& f : writes) f.get();  // the first error, once every write has finished
        } catch (const std::exception& e) {
          set.abandon();
          throw Error("{}; the track's earlier stems, if any, are as they were", error_text(e));
        }
        set.commit();
        timeline::mark("stems renamed into place: " + inputs[k].filename().string());
        return now_s() - t1;
      });
    } catch (const std::exception& e) {
      fail(k, e);
    }
  }
  join_encoding();
}

nlohmann::json separate_files(LoadedModel& model, const std::vector<fs::path>& inputs, const RunnerOptions& o,
                              int& failed, ReadAhead* first, const TrackDone& on_track) {
  PreparedFiles files = prepare_files(model, inputs, o, on_track);
  const std::vector<size_t>& work = files.work;
  TrackSequence sequence(files, on_track);
  FileWorker worker;
  size_t w = 0;
  worker.next = [&]() -> std::optional<size_t> {
    if (w < work.size()) return work[w++];
    return std::nullopt;
  };
  // A run of several files: its progress above the file's bar.
  std::optional<RunProgress> progress;
  if (work.size() > 1) progress.emplace(run_progress_options(o, work.size(), {""}));
  worker.progress = progress ? &*progress : nullptr;
  worker.done = [&](size_t k) {
    if (progress) file_outcome(*progress, files.entries[k]);
    sequence.done(k);
  };
  const double run_start = now_s();
  separate_work(model, files, o, worker, first);
  if (progress) progress->finish();
  failed = worker.failed;
  const double run_wall = now_s() - run_start;
  if (!o.quiet && work.size() > 1)
    std::fprintf(stderr, "separate: %zu files, %.1f s of audio in %.1f s (%.1fx realtime with decoding and encoding)\n",
                 work.size(), worker.seconds, run_wall, worker.seconds / run_wall);
  nlohmann::json summary = nlohmann::json::array();
  for (auto& e : files.entries) summary.push_back(std::move(e));
  return summary;
}

}  // namespace stemkit::separate
