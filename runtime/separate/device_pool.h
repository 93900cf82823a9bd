// `separate --device cuda:0,cuda:1` (or cuda:all, or cpu,cpu): one run's
// files spread over several devices. One model per device, each on a thread
// of its own that takes the next file from one shared queue and runs
// separate_files' pipeline on it (runner.h: separate_work), so that a long
// file on one device never holds the others back. What is decided for the
// whole run (the outputs, --skip-existing) is decided once, before any of
// them starts, and the summary, the --json entries and the --record records
// stay in input order. docs/cli.md, "Several devices", describes it for users.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/separate/ensemble_runner.h"
#include "runtime/separate/runner.h"

namespace stemkit::separate {

// --device's value as devices: one (parse_device's "cpu", "cuda", "cuda:N",
// "auto"), or a comma-separated list of them, where "cuda:all" stands for
// every GPU. A device may be named more than once (two models on it); the
// list holds one kind of device only. Throws stemkit::Error naming the device
// and the fix (a usage error: options.cpp calls it while parsing).
std::vector<at::Device> parse_devices(const std::string& text);

// The CPU threads each of `models` models on the CPU gets: `jobs` (-j; 0:
// libtorch's default) divided evenly, at least one each.
int cpu_threads_per_model(int jobs, size_t models);

// The model -n names (or the ensemble of the -n's), once per device, loaded
// at the same time on threads of their own. A device that cannot start, or a
// model that cannot load there, throws stemkit::Error naming the device.
// `devices` has one device or more; options.device is ignored. `first_only`
// (--explain): the first device's model only, with the plan it has in the list.
std::vector<LoadedModel> load_on_devices(const std::vector<at::Device>& devices, const RunnerOptions& options,
                                         const EnsembleOptions& ensemble, bool first_only = false);

// The plan's "devices" line: the devices, how the files are shared between
// them, and each model's CPU threads on the CPU.
plan::Reasoned devices_reason(const std::vector<at::Device>& devices, const std::string& given, int jobs);

// separate_files with one model per device (models[i] on its own thread; one
// model: separate_files itself). Each entry says which device separated it
// ("device", and "worker": its place in the list). The models write the same
// stems with the same settings (same model, same kind of device).
nlohmann::json separate_on_devices(std::vector<LoadedModel>& models, const std::vector<std::filesystem::path>& inputs,
                                   const RunnerOptions& options, int& failed, ReadAhead* first = nullptr,
                                   const TrackDone& on_track = {});

}  // namespace stemkit::separate
