// Several devices in one run. See device_pool.h.
#include "runtime/separate/device_pool.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/DeviceGuard.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "runtime/capture/graph_runner.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/error.h"
#include "runtime/version.h"

namespace stemkit::separate {
namespace {

namespace fs = std::filesystem;

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::string join(const std::vector<at::Device>& devices, const char* sep) {
  std::string out;
  for (const auto& d : devices) out += (out.empty() ? "" : sep) + d.str();
  return out;
}

}  // namespace

std::vector<at::Device> parse_devices(const std::string& text) {
  if (text.find(',') == std::string::npos && text != "cuda:all") return {parse_device(text)};
  if (text.back() == ',') throw Error("--device {}: the list ends with a comma; name one more device or drop it", text);
  std::vector<at::Device> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty())
      throw Error("--device {}: an empty item in the list; name each device once per model (cuda:0,cuda:1)", text);
    if (item == "auto")
      throw Error("--device {}: auto picks one device; list the devices instead (cuda:0,cuda:1, cuda:all, cpu,cpu)",
                  text);
    if (item == "cuda:all") {
      const int gpus = at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
      if (gpus == 0)
        throw Error(
            "--device {}: cuda:all means every GPU, and this libtorch ({}) sees none; use --device cpu (or cpu,cpu "
            "for two models on the CPU), or build against a GPU libtorch (docs/runtime.md)",
            text, version_text().substr(0, version_text().find('\n')));
      for (int i = 0; i < gpus; ++i) out.emplace_back(at::kCUDA, static_cast<at::DeviceIndex>(i));
      continue;
    }
    try {
      out.push_back(parse_device(item));
    } catch (const Error& e) {  // "--device cuda:7: this machine has 2 GPUs ...": the item, within the list
      std::string why = e.what();
      if (why.rfind("--device ", 0) == 0) why.erase(0, 9);
      throw Error("--device {}: {}", text, why);
    }
  }
  for (const auto& d : out)
    if (d.type() != out.front().type())
      throw Error(
          "--device {}: one kind of device per run ({} and {}): a file's stems must not depend on the device that "
          "took it (the precision auto picks, and the arithmetic, differ between a GPU and the CPU); run the GPUs "
          "and the CPU as two runs (--shard)",
          text, out.front().str(), d.str());
  return out;
}

int cpu_threads_per_model(int jobs, size_t models) {
  const int total = jobs > 0 ? jobs : at::get_num_threads();
  return std::max(1, total / static_cast<int>(std::max<size_t>(1, models)));
}

std::vector<LoadedModel> load_on_devices(const std::vector<at::Device>& devices, const RunnerOptions& o,
                                         const EnsembleOptions& ensemble, bool first_only) {
  // Several GPUs in one process capture graphs only where a capture leaves
  // the other threads alone (libtorch 2.1+, capture/graph_runner.h); with
  // libtorch's global capture mode, one device's capture would fail the calls
  // another device's thread makes meanwhile (cudaMalloc, a copy to the CPU).
  const bool eager = devices.size() > 1 && devices.front().is_cuda() && !capture::captures_per_thread();
  auto load = [&](const at::Device& device) {
    RunnerOptions on = o;
    on.device = device;
    if (eager) on.separation.graphs = false;
    if (ensemble.members.empty()) return load_model(on);
    EnsembleOptions e = ensemble;
    for (auto& member : e.members) {
      member.device = device;
      if (eager) member.separation.graphs = false;
    }
    return load_ensemble(e, on);
  };
  const std::string reason =
      "several GPUs in one process with libtorch " + std::string(compat::torch_version()) +
      ": its captures (global mode) would forbid the other devices' threads their CUDA calls while they last; "
      "thread-local capture needs libtorch 2.1+";
  std::vector<LoadedModel> models;
  if (devices.size() == 1 || first_only) {  // its errors as they are
    models.push_back(load(devices.front()));
    if (eager) models.front().plan.graphs_reason = reason;
    return models;
  }
  // Each on its own thread: the devices start (and the checkpoints are read) at the same time.
  std::vector<std::future<LoadedModel>> loading;
  for (const auto& device : devices)
    loading.push_back(std::async(std::launch::async, [&, device] {
      std::optional<c10::DeviceGuard> guard;
      if (device.is_cuda()) guard.emplace(device);
      return load(device);
    }));
  std::string error;
  for (size_t i = 0; i < devices.size(); ++i) {
    try {
      models.push_back(loading[i].get());
    } catch (const std::exception& e) {
      if (error.empty())
        error = fmt::format("--device {}: the model could not start on {} (device {} of the list): {}",
                            join(devices, ","), devices[i].str(), i + 1, error_text(e));
    }
  }
  if (!error.empty()) throw Error("{}", error);
  if (eager)
    for (auto& m : models) m.plan.graphs_reason = reason;
  return models;
}

plan::Reasoned devices_reason(const std::vector<at::Device>& devices, const std::string& given, int jobs) {
  std::string reason = fmt::format(
      "--device {}: a model on each, each on its own thread taking the next file from one queue, the stems as one "
      "device makes them",
      given);
  if (devices.front().is_cpu()) {
    const int each = cpu_threads_per_model(jobs, devices.size());
    reason += fmt::format("; {} CPU thread{} each ({} shared between {} models)", each, each == 1 ? "" : "s",
                          jobs > 0 ? fmt::format("-j {}", jobs) : fmt::format("libtorch's {}", at::get_num_threads()),
                          devices.size());
  }
  return {join(devices, ", "), reason};
}

nlohmann::json separate_on_devices(std::vector<LoadedModel>& models, const std::vector<fs::path>& inputs,
                                   const RunnerOptions& o, int& failed, ReadAhead* first, const TrackDone& on_track) {
  if (models.size() == 1) return separate_files(models.front(), inputs, o, failed, first, on_track);
  const nlohmann::json settings = stem_set_settings(models.front(), o);
  for (const auto& m : models)
    if (stem_set_settings(m, o) != settings)  // parse_devices allows one kind of device: never
      throw Error("the models on {} and {} would make different stems ({} and {})", models.front().device.str(),
                  m.device.str(), settings.dump(), stem_set_settings(m, o).dump());
  PreparedFiles files = prepare_files(models.front(), inputs, o, on_track);
  TrackSequence sequence(files, on_track);
  const size_t n = models.size();
  const int cpu_threads = models.front().device.is_cpu() ? cpu_threads_per_model(o.jobs, n) : 0;
  // Worker i starts with the i-th file (worker 0 with the first, which may be
  // read ahead already), then each takes the next one from the queue.
  std::atomic<size_t> cursor{n};
  std::vector<FileWorker> workers(n);
  std::vector<std::exception_ptr> errors(n);
  std::vector<std::thread> threads;
  // One line for the run and a bar per device separating a file; the labels
  // tell a device named twice apart by its place in the list.
  std::vector<std::string> labels;
  for (size_t i = 0; i < n; ++i) {
    const auto& d = models[i].device;
    const bool twice =
        std::count_if(models.begin(), models.end(), [&](const LoadedModel& m) { return m.device == d; }) > 1;
    labels.push_back(twice ? fmt::format("{}#{}", d.str(), i) : d.str());
  }
  RunProgress progress(run_progress_options(o, files.work.size(), labels));
  const double run_start = now_s();
  for (size_t i = 0; i < n; ++i) {
    FileWorker& w = workers[i];
    w.devices = n;
    w.index = i;
    w.progress = &progress;
    w.slot = i;
    w.next = [&files, &cursor, i, started = false]() mutable -> std::optional<size_t> {
      const size_t p = started ? cursor.fetch_add(1) : i;
      started = true;
      if (p < files.work.size()) return files.work[p];
      return std::nullopt;
    };
    w.done = [&](size_t k) {
      file_outcome(progress, files.entries[k]);
      sequence.done(k);
    };
    threads.emplace_back([&, i] {
      try {
        std::optional<c10::DeviceGuard> guard;
        if (models[i].device.is_cuda()) guard.emplace(models[i].device);
        if (cpu_threads > 0) {
          // libtorch's threads are per calling thread (OpenMP): initialised
          // first (from the process's count), then this model's share.
          (void)at::get_num_threads();
          at::set_num_threads(cpu_threads);
        }
        separate_work(models[i], files, o, workers[i], i == 0 ? first : nullptr);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  progress.finish();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  failed = 0;
  double seconds = 0;
  for (const auto& w : workers) {
    failed += w.failed;
    seconds += w.seconds;
  }
  const double wall = now_s() - run_start;
  if (!o.quiet && files.work.size() > 1)
    std::fprintf(stderr,
                 "separate: %zu files on %zu devices, %.1f s of audio in %.1f s (%.1fx realtime with decoding and "
                 "encoding)\n",
                 files.work.size(), n, seconds, wall, seconds / wall);
  nlohmann::json summary = nlohmann::json::array();
  for (auto& e : files.entries) summary.push_back(std::move(e));
  return summary;
}

}  // namespace stemkit::separate
