// `separate -n A -n B --ensemble ALGO`: several models, each stem the models
// have in common combined as MSST's ensemble.py does (ensemble.h). The
// ensemble is one LoadedModel whose Separator runs every member on the track
// and combines their stems, so that separate_files writes it as it writes one
// model's stems (sets, --two-stems, --skip-existing, the pipeline), under
// OUT/ensemble-<A>+<B>/. docs/cli.md, "Ensembles", describes it for users.
#pragma once

#include <string>
#include <vector>

#include "runtime/separate/ensemble.h"
#include "runtime/separate/runner.h"

namespace stemkit::separate {

// --ensemble-map MODEL:STEM=NAME: model `model`'s (0-based) stem `stem` is
// combined as `name`; an empty name leaves it out (given as "-").
struct StemMapping {
  size_t model = 0;
  std::string stem, name;
  std::string given;  // as on the command line, for messages
};

struct EnsembleOptions {
  // One per -n, in order: the run's options with that model, its --checkpoint
  // and its chunking (options.cpp fills them).
  std::vector<RunnerOptions> members;
  EnsembleAlgorithm algorithm = EnsembleAlgorithm::avg_wave;  // ensemble.py's default --type
  std::vector<double> weights;                                // one per member
  std::vector<std::string> map_given;                         // --ensemble-map as given, parsed by load_ensemble
  bool one_at_a_time = false;  // --ensemble-one-at-a-time: each model loaded for each track and freed after it
};

// Parses --ensemble-map MODEL:STEM=NAME against the members' model names (MODEL
// is a position, 1-based, or the name a member's output folder would have).
// Throws stemkit::Error.
StemMapping parse_stem_mapping(const std::string& text, const std::vector<std::string>& member_names);

// Which stems the ensemble writes, and from which of each member's stems:
// every member's stems after the mappings, each of which every member must
// produce (else stemkit::Error naming the stem, the models that lack it and
// the fix); with --two-stems STEM and --other-method minus or none, only STEM.
// `sources[m]` are member m's stems; returns, per output stem, its name and
// the index of that stem in each member's sources.
struct EnsembleStem {
  std::string name;
  std::vector<int64_t> from;  // per member
};
std::vector<EnsembleStem> ensemble_stems(const std::vector<std::vector<std::string>>& sources,
                                         const std::vector<std::string>& member_names,
                                         const std::vector<StemMapping>& mappings, const RunnerOptions& run);

// Loads every member (all kept loaded, each track running through each in
// turn; with one_at_a_time, each freed once its stems are known and loaded
// again for each track), checks that they take the same sample rate and channels, and
// returns the ensemble as one model named "ensemble-<A>+<B>...". Throws stemkit::Error.
LoadedModel load_ensemble(const EnsembleOptions& ensemble, const RunnerOptions& run);

// The ensemble's part of the --json summary: the algorithm, the weights, and
// each member's name, precision, load time and plan.
nlohmann::json ensemble_summary(const LoadedModel& ensemble);

}  // namespace stemkit::separate
