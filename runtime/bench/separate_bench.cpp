#include "runtime/bench/separate_bench.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>

#include "runtime/attention/attention.h"
#include "runtime/audio/audio.h"
#include "runtime/bench/gpu_memory.h"
#include "runtime/bench/kernel_trace.h"
#include "runtime/error.h"
#include "runtime/version.h"

namespace stemkit::bench {
namespace {

namespace fs = std::filesystem;
using separate::LoadedModel;
using separate::RunnerOptions;

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string gb(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", static_cast<double>(bytes) / 1e9);
  return b;
}

// File by file: std::filesystem::remove_all called a null function on the
// GPU machine (Ubuntu 24.04 with PyTorch's libraries; seen under cuda-gdb).
void remove_tree(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec) || fs::is_symlink(dir, ec)) {
    fs::remove(dir, ec);
    return;
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) remove_tree(entry.path());
  fs::remove(dir, ec);
}

}  // namespace

nlohmann::json run_bench(LoadedModel& loaded, const RunnerOptions& options, const BenchOptions& requested) {
  // The rows' precisions: the loaded model's (auto resolved) when none are named.
  BenchOptions b = requested;
  if (b.precisions.empty()) b.precisions = {loaded.dtype};
  const int sr = static_cast<int>(loaded.model->samplerate());
  const int channels = static_cast<int>(loaded.model->audio_channels());
  // The track: a song (decode timed) or synthetic audio, never silence:
  // a few sine partials with moving amplitudes and some noise.
  double decode_s = 0;
  at::Tensor wav;
  std::string track, decoder, codec;  // the song's decoder (libsndfile or ffmpeg) and its codec
  if (b.input) {
    const double t0 = now_s();
    audio::Audio song = audio::read_audio(b.input->string());
    decoder = song.decoder;
    codec = song.codec;
    wav = separate::to_tensor(audio::to_channels(audio::resample(std::move(song), sr), channels));
    decode_s = now_s() - t0;
    track = b.input->string();
    std::printf("%s: decoded by %s (%s) and resampled in %.3f s\n", track.c_str(), decoder.c_str(), codec.c_str(),
                decode_s);
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
  // The files the with-I/O column separates: copies of the song (its own
  // format, so its decoder's cost counts), or of the synthetic track as a
  // 16-bit WAV; the stems are written as 16-bit WAVs, the runner's default.
  std::vector<fs::path> io_inputs;
  if (b.io_files > 0) {
    fs::create_directories(scratch / "tracks");
    const fs::path first = scratch / "tracks" / ("track-0" + (b.input ? b.input->extension().string() : ".wav"));
    if (b.input)
      fs::copy_file(*b.input, first);
    else
      separate::write_stem(first.string(), wav, sr, sr, audio::Clip::rescale, audio::Encoding::pcm16);
    io_inputs.push_back(first);
    for (int k = 1; k < b.io_files; ++k) {
      io_inputs.push_back(scratch / "tracks" / ("track-" + std::to_string(k) + first.extension().string()));
      fs::copy_file(first, io_inputs.back());
    }
  }

  nlohmann::json rows = nlohmann::json::array();
  std::printf("%-9s %5s %6s %-34s %10s %10s %10s %10s\n", "precision", "batch", "graphs", "attention", "x realtime",
              "x with I/O", "peak GB", "reserved");
  // Each precision's rows run with only that precision's model on the device:
  // another model's weights, folded weights and workspaces would count in their
  // peak memory, which a run of that precision
  // alone never has. So the model loaded for --precision is freed when no row
  // uses it, and each model once its rows are done.
  const at::ScalarType loaded_precision = loaded.dtype;
  if (std::find(b.precisions.begin(), b.precisions.end(), loaded_precision) == b.precisions.end()) {
    loaded.model.reset();
    release_gpu_cache();
  }
  for (const at::ScalarType precision : b.precisions) {
    const char* precision_text = separate::precision_name(precision);
    RunnerOptions o = options;
    o.precision = precision;
    o.quiet = true;
    LoadedModel m = precision == loaded_precision ? std::move(loaded) : separate::load_model(o);
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
      if (setting.low_memory) separate::apply_low_memory(sep);
      const int64_t batch = sep.batch_size;
      const bool graphs = sep.graphs;
      nlohmann::json row = {{"precision", precision_text},
                            {"batch_size", batch},
                            {"graphs", graphs},
                            {"window_seconds", sep.window_seconds}};
      if (setting.low_memory) row["mode"] = "low-memory";
      // Each row from a clean slate: no graphs or cached blocks of the rows before.
      m.model->release_graphs();
      release_gpu_cache();
      try {
        // Warm-up: the same call shape, so plans, kernels and graphs are ready.
        // Its time is what a run's first file pays once on top (cuBLASLt's
        // algorithm timing, graph capture) plus the warm-up audio's separation.
        // Enough audio for one full batch: segments (chunks) overlap, so batch + 1
        // segments of audio cut into more than `batch` windows. (Two segments, as
        // before, gave a batch of 2 or 3: at batch 4 and 8 the first timed run
        // captured the graph and timed the GEMMs of the real shape.)
        const int64_t warm = std::min<int64_t>(wav.size(1), (batch + 1) * m.model->segment_samples());
        const double warm_t0 = now_s();
        m.model->separate(wav.slice(1, 0, warm), sep);
        if (dev >= 0) gpu_synchronize(dev);
        const double warmup_s = now_s() - warm_t0;
        std::vector<double> walls;
        models::SeparationReport report;
        GpuMemory mem;
        at::Tensor est;
        for (int r = 0; r < std::max(1, b.repeats); ++r) {
          if (dev >= 0) reset_gpu_peak(dev), gpu_synchronize(dev);
          const double t0 = now_s();
          est = m.model->separate(wav, sep, {}, &report);
          if (dev >= 0) gpu_synchronize(dev);
          walls.push_back(now_s() - t0);
          if (dev >= 0) mem = gpu_peak(dev);
        }
        if (!b.trace.empty()) {  // one more run, traced (not timed: the profiler slows it)
          const std::string path = b.trace + "-" + std::to_string(rows.size()) + ".json";
          start_kernel_trace();
          m.model->separate(wav, sep, {}, nullptr);
          if (dev >= 0) gpu_synchronize(dev);
          stop_kernel_trace(path);
          row["trace"] = path;
        }
        std::sort(walls.begin(), walls.end());
        const double wall = walls[walls.size() / 2];
        est = at::Tensor();
        // With I/O: the runner itself (separate_files: decoding the next file and
        // encoding the last one's stems while this one separates) on io_files
        // copies of the track, the model warm; audio seconds over the wall time.
        std::optional<double> io_wall;
        if (!io_inputs.empty()) {
          m.plan.batch_size = sep.batch_size;
          m.plan.graphs = sep.graphs;
          m.plan.window_seconds = sep.window_seconds;
          m.plan.device_assembly = sep.device_assembly;
          RunnerOptions io = options;
          io.separation = sep;
          io.quiet = true;
          io.out = scratch / "stems";
          int failed = 0;
          const double t0 = now_s();
          const nlohmann::json files = separate::separate_files(m, io_inputs, io, failed, nullptr, {});
          io_wall = now_s() - t0;
          for (const auto& f : files)
            if (f.value("status", "") == "failed") throw Error("with I/O: {}", f.value("error", ""));
        }
        std::string attention;  // this precision's model's own decisions
        for (const auto& d : m.plan.kernels.attention.log->entries())
          attention += (attention.empty() ? "" : "; ") + d.shape + ": " + d.backend + " (" + d.reason + ")";
        row.update({{"seconds", seconds},
                    {"wall_s", wall},
                    {"realtime", seconds / wall},
                    {"warmup_s", warmup_s},
                    {"warmup_seconds", static_cast<double>(warm) / sr},
                    {"peak_allocated_bytes", mem.peak_allocated},
                    {"peak_reserved_bytes", mem.peak_reserved},
                    {"graphs_status", report.graphs},
                    {"attention", attention},
                    {"forward_calls", report.forward_calls},
                    {"walls_s", walls}});
        const std::optional<double> with_io =
            io_wall ? std::optional<double>(static_cast<double>(io_inputs.size()) * seconds / *io_wall) : std::nullopt;
        if (io_wall)
          row.update({{"io_files", io_inputs.size()}, {"io_wall_s", *io_wall}, {"realtime_with_io", *with_io}});
        const std::string with_io_text = with_io ? fmt::format("{:.1f}", *with_io) : "-";
        std::string attention_short =
            attention.substr(attention.find(": ") == std::string::npos ? 0 : attention.find(": ") + 2, 34);
        std::printf("%-9s %5lld %6s %-34s %10.1f %10s %10s %10s\n", precision_text, static_cast<long long>(batch),
                    setting.low_memory                         ? "lowmem"
                    : !graphs                                  ? "off"
                    : report.graphs.rfind("replaying", 0) == 0 ? "on"
                                                               : "eager",
                    attention_short.c_str(), seconds / wall, with_io_text.c_str(), gb(mem.peak_allocated).c_str(),
                    gb(mem.peak_reserved).c_str());
      } catch (const std::exception& e) {
        row["error"] = separate::error_text(e);
        std::printf("%-9s %5lld %6s failed: %s\n", precision_text, static_cast<long long>(batch), graphs ? "on" : "off",
                    separate::error_text(e).substr(0, 160).c_str());
        m.model->release_graphs();
        release_gpu_cache();
      }
      std::fflush(stdout);
      rows.push_back(row);
    }
    m.model.reset();
    release_gpu_cache();
    if (precision == loaded_precision) loaded = std::move(m);  // its name, device and load time, for the result
  }
  remove_tree(scratch);
  std::string gpu_name = "none";
#if defined(STEMKIT_ROCM)
  if (loaded.device.is_cuda()) gpu_name = attention::query_gpu(loaded.device.index(), true).describe();
#else
  if (loaded.device.is_cuda()) gpu_name = attention::query_gpu(loaded.device.index(), false).describe();
#endif
  return {{"track", track},
          {"decoder", decoder},
          {"codec", codec},
          {"decode_s", decode_s},
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

}  // namespace stemkit::bench
