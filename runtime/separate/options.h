// Every option of `separate`, declared in one table (options.cpp) in the order
// --help shows them: its flags, its help, its environment variable where it has
// one, and the field it sets. llama.cpp's common/arg.cpp is the model. Usage
// errors are found here, before any work: parse_command_line prints them and
// says to exit 2 (docs/cli.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/bench/separate_bench.h"
#include "runtime/separate/catalog_run.h"
#include "runtime/separate/ensemble_runner.h"
#include "runtime/separate/environment.h"
#include "runtime/separate/runner.h"

namespace stemkit::separate {

struct CommandLine {
  RunnerOptions run;         // with two or more -n: the first model's (ensemble.members has each one's)
  EnsembleOptions ensemble;  // two or more -n (ensemble_runner.h); else no members
  bench::BenchOptions bench;
  std::vector<std::filesystem::path> inputs;  // FILE... and --inputs-from, in order, each file once (inputs.h)
  std::vector<std::string> input_folders;     // each folder's count of audio files, said before the run
  std::vector<std::string> input_duplicates;  // inputs that name a file already given, separated once
  std::optional<std::string> json_path;       // --json FILE ('-': stdout)
  bool list_models = false;                   // --list-models
  bool explain = false;                       // --explain: print the execution plan and exit
  bool bench_mode = false;                    // --bench
  std::vector<at::Device> devices;            // --device: run.device, or several (device_pool.h); never empty
  std::string devices_given;                  // --device as given, for messages and the plan
  // A whole catalog (catalog_run.h): `inputs` is already this shard's share.
  std::optional<ShardSpec> shard;                  // --shard I/N
  std::filesystem::path shard_root;                // --shard-root, else the one folder given, else "."
  size_t listed = 0;                               // the inputs of the whole listing, before --shard
  bool record = false;                             // --record, or implied by --shard
  std::optional<std::filesystem::path> summarize;  // --summarize DIR
};

// The command line, or the exit code when the run ends here: 0 after --help
// or --version (printed), 2 after a usage error (printed, with the fix).
struct ParsedCommandLine {
  std::optional<CommandLine> line;
  int exit_code = 0;
};
ParsedCommandLine parse_command_line(int argc, char** argv);

// The variables of docs/cli.md's table that are not options' (the option
// table's are read with their option). The one place runtime/ reads the
// process environment.
Environment read_environment();

}  // namespace stemkit::separate
