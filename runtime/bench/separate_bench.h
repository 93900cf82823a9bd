// `separate --bench`: the benchmark table of a loaded model. Each row is a
// precision, a batch size and graphs on or off (or --low-memory), run on one
// track after a warm-up of the same call shape: its speed (x realtime: the
// track in memory to stems in memory; x with I/O: the runner's pipeline over
// several copies of the track as files, decoding and encoding overlapped with
// the separation as in a real run), its peak GPU memory and the attention
// backends the plan chose. docs/benchmarks.md says how the rows are read.
#pragma once

#include <ATen/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/separate/runner.h"

namespace stemkit::bench {

struct BenchOptions {
  std::optional<std::filesystem::path> input;  // a song; else synthetic audio of `seconds`
  double seconds = 180;
  std::vector<int64_t> batch_sizes = {1};
  std::vector<at::ScalarType> precisions;  // empty: the loaded model's (--precision, auto resolved)
  std::vector<bool> graphs = {true};
  int repeats = 1;          // timed runs per row (median)
  std::string trace;        // a Chrome trace of each row's last timed run: TRACE-<row>.json
  bool low_memory = false;  // also a row per precision as --low-memory runs (apply_low_memory)
  int io_files = 4;         // the with-I/O column: the runner on this many copies of the track (0: none)
};

// The table (printed to stdout) and its rows as JSON. Frees loaded.model: each
// precision's rows run with only their own model on the device.
nlohmann::json run_bench(separate::LoadedModel& loaded, const separate::RunnerOptions& options,
                         const BenchOptions& bench);

}  // namespace stemkit::bench
