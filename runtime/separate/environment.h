// The process environment `separate` uses, as values: read once, by
// read_environment() beside the option table (runtime/separate/options.cpp),
// and passed down. Nothing else in runtime/ reads the environment.
// docs/cli.md lists every variable in one table.
#pragma once

#include <optional>
#include <string>

namespace stemkit::separate {

struct Environment {
  std::optional<std::string> model_dir;        // STEMKIT_MODEL_DIR: the model cache, where --model-dir is not given
  std::optional<std::string> xdg_cache_home;   // XDG_CACHE_HOME: its parent by default (when absolute)
  std::optional<std::string> home;             // HOME: else ~/.cache
  std::optional<std::string> omp_wait_policy;  // OMP_WAIT_POLICY: libgomp's (unset: see openmp_wait.h)
};

}  // namespace stemkit::separate
