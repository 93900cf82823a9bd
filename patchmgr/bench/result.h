// Benchmark results: one JSON file per run and component under
// docs/benchmarks/ (docs/benchmarks.md, "Stored results"). `patchmgr bench`
// writes them; `patchmgr docs` reads and validates every one of them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace patchmgr::bench {

inline constexpr int kResultSchema = 1;

// One measured configuration: a row of separate's or the upstream script's JSON.
struct Row {
  std::string precision;
  int64_t batch_size = 1;
  std::optional<bool> graphs;      // stemkit rows
  std::string graphs_status;       // "replaying ..." when graphs were captured
  std::string mode;                // e.g. "low-memory" (separate --bench-low-memory's row)
  std::optional<double> realtime;  // absent when the row failed
  std::optional<double> realtime_with_io;
  std::optional<int64_t> peak_allocated;  // bytes
  std::optional<int64_t> peak_reserved;   // bytes
  std::string attention;
  std::string notes;
  std::string error;
};

struct Machine {
  std::string label;  // what names it in file names and on the page
  std::string cpu;
  int cores = 0;
  std::string os;
  std::string gpu;  // empty: no GPU
  std::string driver;
  std::string gpu_memory;
};

struct Result {
  std::filesystem::path file;  // where it was read from
  std::string component;
  std::string date;      // YYYY-MM-DD (UTC)
  std::string time;      // ISO 8601 UTC; orders results of one day
  std::string imported;  // non-empty: converted from older raw outputs, and how
  std::vector<std::string> notes;
  Machine machine;
  std::string libtorch;               // "2.11.0 (cuda)"
  std::string torch;                  // the upstream side's PyTorch
  std::string fingerprint_id;         // patchmgr fingerprint of all manifests
  std::string fingerprint_component;  // the component's block of its text
  std::string runtime_patch_set;      // what `separate --version` said it implements
  std::string model;                  // what separate calls the model (runtime.model)
  std::string track;
  double seconds = 0;
  bool synthetic = false;
  int repeats = 1;  // timed runs per configuration (the median is shown)
  std::vector<std::string> commands;
  std::vector<Row> runtime;
  bool has_upstream = false;
  std::vector<Row> upstream;
};

// Reads one result; throws Error(usage) "FILE: KEY: what is wrong" (FILE as
// shown relative to `root`).
Result parse_result(const nlohmann::json& j, const std::filesystem::path& file, const std::filesystem::path& root);
Result read_result(const std::filesystem::path& file, const std::filesystem::path& root);

// Every docs/benchmarks/*.json under `root`, ordered by component, then time,
// then file name (oldest first). Subdirectories (raw outputs) are not read.
std::vector<Result> load_results(const std::filesystem::path& root);

// Writes `content` as DIR/STEM.json, or STEM-2.json, STEM-3.json, ... when
// taken: written to a temporary file, then linked to its name, which fails
// rather than replace an existing file (even one made meanwhile by another
// process). Returns the path written.
std::filesystem::path write_result_file(const std::filesystem::path& dir, const std::string& stem,
                                        const std::string& content);

// "NVIDIA H100 80GB HBM3" -> "h100-80gb-hbm3": lower case, vendor dropped,
// runs of other characters to '-'.
std::string machine_slug(const std::string& name);

}  // namespace patchmgr::bench
