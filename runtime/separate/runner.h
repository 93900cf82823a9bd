// The `separate` runner's pieces that need libtorch: the options users know
// from demucs as types, loading the model they name and deciding its plan,
// and separating files into stems. options.cpp parses the command line into
// these; runtime/bench/separate_bench.h measures them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/audio/audio.h"
#include "runtime/models/separator.h"
#include "runtime/plan/execution_plan.h"
#include "runtime/separate/environment.h"
#include "runtime/separate/naming.h"
#include "runtime/separate/progress.h"

namespace stemkit::separate {

// An MSST configuration's chunking as the command line sets it (docs/cli.md,
// "Options per model"); what is not set stays the configuration's.
struct MsstChunkOptions {
  std::optional<int64_t> num_overlap;  // inference.num_overlap: --overlap X as 1 / (1 - X), or --num-overlap N
  std::string num_overlap_from;        // the option as given, for messages: "--overlap 0.75"
  enum class Unit { seconds, samples, frames };
  std::optional<double> chunk;  // the chunk_size in `chunk_unit`: --segment, --chunk-size, --mdxc_segment_size
  Unit chunk_unit = Unit::seconds;
  std::string chunk_from;
};

struct RunnerOptions {
  // Model
  std::string model = "htdemucs";         // catalog name, member signature, a .th path, or an MSST .yaml config
  std::optional<std::string> checkpoint;  // the weights of an MSST config (.ckpt, .pt, .safetensors)
  std::optional<std::filesystem::path> model_dir;
  Environment env;  // the variables read once (options.cpp); the cache's default place
  bool download = false;
  std::string model_mirror;  // --model-mirror: catalog files fetched from here (mirrored_url); empty: their origin
  // Where and how
  at::Device device = at::kCPU;             // --device, auto resolved when parsed (parse_device)
  std::optional<at::ScalarType> precision;  // --precision: float32, float16, bfloat16; none: auto (load_model decides)
  models::SeparationOptions separation;
  bool batch_size_given = false;  // -b was given (else an MSST config's inference.batch_size applies)
  MsstChunkOptions msst;          // an MSST config's chunk_size and num_overlap from the command line
  bool low_memory = false;        // --low-memory (apply_low_memory has been applied to `separation`)
  plan::KernelOptions kernels;  // --attention, --fused-kernels, --seq-kernel, --gemm, --exact-gelu, --reference-forward
  int jobs = 0;                 // CPU threads (0: libtorch's default)
  bool cudnn_benchmark = false;  // let cuDNN time its algorithms once per shape (--cudnn-benchmark)
  // Output
  std::optional<std::filesystem::path> out;
  std::string filename = "{track}/{stem}.{ext}";
  std::optional<std::string> two_stems;
  OtherMethod other_method = OtherMethod::add;
  std::string format = "wav";  // audio::output_formats(): the stems' file extension
  audio::OutputFormat output;  // --int24, --float32; --bitrate, --mp3-bitrate, --mp3-preset
  audio::Clip clip = audio::Clip::rescale;
  bool keep_samplerate = false;  // write at the input's rate instead of the model's
  bool skip_existing = false;    // skip inputs whose set of stems is complete (stem_set.h)
  bool sanitize = false;         // replace NaN and infinite input samples with 0 instead of failing the file
  bool quiet = false;
  double progress_interval_s = 60;  // not on a terminal: a line of a run's progress at most this often (RunProgress)
  int decode_ahead = 0;             // files decoded ahead of the one separated, per device; 0: decode_ahead_files()
};

// How many files a device's pipeline decodes ahead of the one it separates
// when --decode-ahead is not given: one, plus one more per 8 CPU threads each
// of `devices` devices can have (at most 3). A 180 s MP3 takes one core 0.4 s
// to decode, while the GPU separates it in 0.2 s: one decoder at a time would
// starve the GPU (docs/benchmarks.md, "The first batch's setup, and MP3 with I/O").
int decode_ahead_files(unsigned cpu_threads, size_t devices);

// An exception's message for users: libtorch's errors without the C++
// backtrace they carry ("Exception raised from ... frame #0 ...").
std::string error_text(const std::exception& e);

// The command line's device and precision as types (options.cpp calls these
// while parsing, so a bad value is a usage error before any work). Throw
// stemkit::Error with the fix.
// "cpu", "cuda", "cuda:N" (N < the GPUs present) or "auto" (cuda:0 if there is a GPU, else the CPU).
at::Device parse_device(const std::string& text);
// "fp32", "fp16", "bf16" ("auto" is the caller's); fp16 only on a GPU.
at::ScalarType parse_precision(const std::string& text, const at::Device& device);

// The model named by options.model, on the chosen device and precision, and
// the plan it runs by.
struct LoadedModel {
  std::unique_ptr<models::Separator> model;
  std::string name;  // for output paths and messages
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  plan::ExecutionPlan plan;           // decided here, once; the model holds its KernelPlan
  std::vector<std::string> warnings;  // said once before the first file (--quiet too)
  double load_s = 0;                  // reading the weights and moving them to the device (downloads not counted)
  double to_device_s = 0;             // of load_s, moving them (waiting for the GPU to start, if it was still starting)
  std::vector<std::string> files;     // the files it was read from (the catalog records their sha256)
};
LoadedModel load_model(const RunnerOptions& options);

// options.separation with the plan's batch, graphs, window and assembly.
models::SeparationOptions separation_options(const LoadedModel& model, const RunnerOptions& options);

// Runs one forward of a silent segment, so that the plan's attention entries
// name every call shape the model makes (separate --explain).
void probe_call_shapes(LoadedModel& model, const RunnerOptions& options);
// The --precision name of a model's dtype: "fp32", "fp16" or "bf16".
const char* precision_name(at::ScalarType dtype);

// A (channels, frames) float tensor of the samples, which become its storage.
at::Tensor to_tensor(audio::Audio&& audio);

// One stem, (channels, frames) at `samplerate`, to its file at `out_rate`
// (Opus: 48 kHz), the clip mode applied as the samples are converted.
void write_stem(const std::string& path, const at::Tensor& stem, int samplerate, int out_rate, audio::Clip clip,
                const audio::OutputFormat& format);

// The first input read on another thread while the model loads (a FLAC or
// MP3 takes a few hundred milliseconds to decode, loading a model about as
// long): main starts it before load_model and hands it to separate_files,
// which resamples it once the model's rate is known. A read error surfaces as
// that file's failure, as without it.
struct ReadAhead {
  std::filesystem::path input;
  std::future<std::pair<audio::Audio, double>> samples;  // and the seconds reading took
};
ReadAhead read_ahead(const std::filesystem::path& input);

// What a set's marker records of the settings that made it: --skip-existing
// redoes a set made otherwise (another precision, encoding, clip mode...).
nlohmann::json stem_set_settings(const LoadedModel& model, const RunnerOptions& options);

// Called on the calling thread once per input when its outcome is known
// (status "ok" once its stems are committed, "failed", "skipped"), with its
// entry of the summary: the catalog's records (catalog_run.h).
using TrackDone = std::function<void(const nlohmann::json& entry)>;

// Separates every input, writing each one's stems as a set (stem_set.h); one
// failing file does not stop the others. Returns the per-file summary (--json) and sets `failed`.
// `first`: inputs' first file, already being read (read_ahead), or null.
nlohmann::json separate_files(LoadedModel& model, const std::vector<std::filesystem::path>& inputs,
                              const RunnerOptions& options, int& failed, ReadAhead* first = nullptr,
                              const TrackDone& on_track = {});

// separate_files in two pieces, so that several devices can share one run
// (device_pool.h): what is decided once for all the inputs, then a worker
// that separates the inputs it is handed, one model's pipeline.

// Every input's outputs, checked, and which of them to separate. Made once
// per run, before any separation: the outputs planned and found writable,
// what killed runs left removed, --skip-existing's complete sets skipped
// (on_track called for each, in input order). `model`: any of the run's
// models (they write the same stems with the same settings).
struct PreparedFiles {
  std::vector<std::filesystem::path> inputs;
  std::vector<PlannedOutput> plan;
  std::vector<std::vector<const PlannedOutput*>> outs;  // per input, its stems' outputs (into `plan`)
  std::vector<nlohmann::json> entries;                  // per input, its entry of the summary
  std::vector<size_t> work;                             // the inputs to separate, in input order
  nlohmann::json settings;                              // stem_set_settings: what each set's marker records
};
PreparedFiles prepare_files(const LoadedModel& model, const std::vector<std::filesystem::path>& inputs,
                            const RunnerOptions& options, const TrackDone& on_track);

// One model's share of a run, on the calling thread.
struct FileWorker {
  size_t index = 0;  // its place in --device's list: the summary's "worker"
  // The next input to separate (an index of inputs), or none when none is left.
  // Called ahead: the next files are decoded while the current one is separated.
  std::function<std::optional<size_t>()> next;
  // Input k's entry has its outcome ("ok" or "failed"); from this thread.
  std::function<void(size_t k)> done;
  // Where its progress and its lines go: slot `slot` of a run's block, or,
  // when null, a bar per file and plain lines on stderr.
  RunProgress* progress = nullptr;
  size_t slot = 0;
  size_t devices = 1;  // the run's workers, sharing the CPU's threads (decode_ahead_files)
  // Filled in by separate_work:
  int failed = 0;
  double seconds = 0;  // of audio separated
};
// Separates the inputs worker.next hands out with `model`, through the
// pipeline of separate_files (the next file decoded and the previous one's
// stems encoded while one is separated). `first`: as separate_files'.
void separate_work(LoadedModel& model, PreparedFiles& files, const RunnerOptions& options, FileWorker& worker,
                   ReadAhead* first = nullptr);

// The block of a run of `files` files on `slots` devices ("" for one), with
// --quiet and --progress-interval.
RunProgress::Options run_progress_options(const RunnerOptions& options, size_t files, std::vector<std::string> slots);

// A file's outcome, from its entry (status, seconds, whether it was separated), to the run's progress.
void file_outcome(RunProgress& progress, const nlohmann::json& entry);

// Hands the separated inputs' entries to on_track in input order (the order
// of files.work), whatever order they finish in: a file that ends before an
// earlier one waits for it. Thread-safe.
class TrackSequence {
 public:
  TrackSequence(const PreparedFiles& files, TrackDone on_track);
  void done(size_t k);

 private:
  const PreparedFiles& files_;
  TrackDone on_track_;
  std::mutex mutex_;
  std::vector<char> finished_;  // per input
  size_t emitted_ = 0;          // files.work[..emitted_) were handed on
};

// --low-memory: the least GPU memory. Batch 1 (the least activation memory),
// no graph capture (a captured graph keeps its own memory pool), and the stems
// back to the CPU every 60 s of audio, so that their buffers on the GPU do not
// grow with the track.
constexpr double kLowMemoryWindowSeconds = 60;
inline void apply_low_memory(models::SeparationOptions& o) {
  o.batch_size = 1;
  o.graphs = false;
  o.window_seconds = std::min(o.window_seconds, kLowMemoryWindowSeconds);
}

}  // namespace stemkit::separate
