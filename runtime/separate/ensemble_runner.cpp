#include "runtime/separate/ensemble_runner.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "runtime/bench/gpu_memory.h"
#include "runtime/error.h"
#include "runtime/separate/naming.h"

namespace stemkit::separate {
namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// The members as one Separator: each runs on the track with its own options
// (its plan's batch, graphs and window), one after the other, and each output
// stem is average_waveforms of the members' stems of that name. With
// --ensemble-one-at-a-time a member is loaded for each track and freed after
// it, so that one model's weights are in memory at a time.
class EnsembleSeparator : public models::Separator {
 public:
  EnsembleSeparator(std::vector<LoadedModel> members, const EnsembleOptions& e,
                    std::vector<models::SeparationOptions> options, std::vector<EnsembleStem> stems)
      : members_(std::move(members)),
        member_options_(e.members),
        one_at_a_time_(e.one_at_a_time),
        options_(std::move(options)),
        plan_(std::move(stems)),
        algorithm_(e.algorithm),
        weights_(e.weights) {
    for (const auto& s : plan_) names_.push_back(s.name);
    const models::Separator& first = *members_.front().model;
    samplerate_ = first.samplerate();
    channels_ = first.audio_channels();
    segment_ = first.segment_samples();
    for (auto& m : members_) {
      member_stems_.push_back(m.model->stems());
      if (one_at_a_time_) unload(m);
    }
  }
  const std::vector<std::string>& stems() const override { return names_; }
  int64_t samplerate() const override { return samplerate_; }
  int64_t audio_channels() const override { return channels_; }
  int64_t segment_samples() const override { return segment_; }
  void to(const at::Device&, at::ScalarType, const plan::KernelPlan&) override {
    throw std::logic_error("an ensemble's members are placed by load_model, each by its own plan");
  }
  at::Device device() const override { return members_.front().device; }
  void release_graphs() override {
    for (auto& m : members_)
      if (m.model) m.model->release_graphs();
  }
  // The runner's batch (halved after running out of memory) caps each member's.
  at::Tensor separate(const at::Tensor& wav, const models::SeparationOptions& options,
                      const models::ProgressFn& progress, models::SeparationReport* report) const override {
    const size_t n = members_.size();
    std::vector<at::Tensor> estimates;
    for (size_t i = 0; i < n; ++i) {
      models::SeparationOptions o = options_[i];
      o.batch_size = std::min(o.batch_size, options.batch_size);
      models::ProgressFn part;
      if (progress) part = [&, i](double f) { progress((static_cast<double>(i) + f) / static_cast<double>(n)); };
      LoadedModel& member = members_[i];
      if (!member.model) member.model = load_model(member_options_[i]).model;  // its plan is as decided before
      estimates.push_back(member.model->separate(wav, o, part, report));
      if (one_at_a_time_) unload(member);
    }
    std::vector<at::Tensor> out;
    for (const auto& stem : plan_) {
      std::vector<at::Tensor> tracks;
      for (size_t i = 0; i < n; ++i) tracks.push_back(estimates[i][stem.from[i]]);
      out.push_back(average_waveforms(tracks, weights_, algorithm_));
    }
    return at::stack(out);
  }

  const std::vector<LoadedModel>& members() const { return members_; }
  const std::vector<std::string>& member_stems(size_t i) const { return member_stems_[i]; }
  bool one_at_a_time() const { return one_at_a_time_; }
  EnsembleAlgorithm algorithm() const { return algorithm_; }
  const std::vector<double>& weights() const { return weights_; }

 private:
  static void unload(LoadedModel& m) {
    m.model.reset();
    if (m.device.is_cuda()) bench::release_gpu_cache();  // its weights' blocks back for the next model
  }

  mutable std::vector<LoadedModel> members_;  // a member's model is null while --ensemble-one-at-a-time frees it
  std::vector<RunnerOptions> member_options_;
  bool one_at_a_time_ = false;
  int64_t samplerate_ = 0, channels_ = 0, segment_ = 0;
  std::vector<std::vector<std::string>> member_stems_;
  std::vector<models::SeparationOptions> options_;
  std::vector<EnsembleStem> plan_;
  std::vector<std::string> names_;
  EnsembleAlgorithm algorithm_;
  std::vector<double> weights_;
};

}  // namespace

StemMapping parse_stem_mapping(const std::string& text, const std::vector<std::string>& member_names) {
  const size_t colon = text.find(':'), equals = text.find('=', colon == std::string::npos ? 0 : colon);
  if (colon == std::string::npos || equals == std::string::npos || colon == 0 || equals == colon + 1)
    throw Error(
        "--ensemble-map {}: expected MODEL:STEM=NAME (MODEL: the model's place among the -n, 1 for the first, or "
        "its name; NAME: the stem's name in the ensemble, or - to leave it out)",
        text);
  StemMapping m;
  m.given = text;
  const std::string model = text.substr(0, colon);
  m.stem = text.substr(colon + 1, equals - colon - 1);
  m.name = text.substr(equals + 1);
  if (m.name.empty())
    throw Error("--ensemble-map {}: no NAME after '='; give the stem's name in the ensemble, or - to leave it out",
                text);
  if (m.name == "-") {
    m.name.clear();
  } else if (m.name.find_first_of("/\\{}") != std::string::npos || m.name == "." || m.name == "..") {
    // It becomes {stem} of the output path.
    throw Error("--ensemble-map {}: {} cannot name a stem (it becomes a file name: no '/', '\\', braces, '.' or '..')",
                text, m.name);
  }
  const bool number = model.find_first_not_of("0123456789") == std::string::npos;
  if (number) {
    const size_t k = std::stoul(model);
    if (k < 1 || k > member_names.size())
      throw Error("--ensemble-map {}: model {} of {}: the models are 1 to {} in the order of -n", text, model,
                  member_names.size(), member_names.size());
    m.model = k - 1;
    return m;
  }
  const auto count = std::count(member_names.begin(), member_names.end(), model);
  if (count == 0)
    throw Error("--ensemble-map {}: no model named {}; the models are {} (or give their place, 1 to {})", text, model,
                join(member_names, ", "), member_names.size());
  if (count > 1)
    throw Error("--ensemble-map {}: {} is given more than once with -n; name it by its place (1 to {})", text, model,
                member_names.size());
  m.model = static_cast<size_t>(std::find(member_names.begin(), member_names.end(), model) - member_names.begin());
  return m;
}

std::vector<EnsembleStem> ensemble_stems(const std::vector<std::vector<std::string>>& sources,
                                         const std::vector<std::string>& member_names,
                                         const std::vector<StemMapping>& mappings, const RunnerOptions& run) {
  const size_t n = sources.size();
  // Each member's stems under their ensemble names ("" : left out).
  std::vector<std::vector<std::string>> named = sources;
  for (const auto& m : mappings) {
    auto& own = named[m.model];
    const auto it = std::find(sources[m.model].begin(), sources[m.model].end(), m.stem);
    if (it == sources[m.model].end())
      throw Error("--ensemble-map {}: model {} ({}) has no stem {}; its stems are {}", m.given, m.model + 1,
                  member_names[m.model], m.stem, join(sources[m.model], ", "));
    own[static_cast<size_t>(it - sources[m.model].begin())] = m.name;
  }
  for (size_t i = 0; i < n; ++i)
    for (size_t s = 0; s < named[i].size(); ++s)
      if (!named[i][s].empty() && std::count(named[i].begin(), named[i].end(), named[i][s]) > 1)
        throw Error("--ensemble-map: model {} ({}) would give two stems named {}; map one of them elsewhere or to -",
                    i + 1, member_names[i], named[i][s]);
  // The stems to write: all of them, first appearance first; or --two-stems' one.
  std::vector<std::string> wanted;
  if (run.two_stems && run.other_method != OtherMethod::add) {
    wanted = {*run.two_stems};
  } else {
    for (const auto& own : named)
      for (const auto& s : own)
        if (!s.empty() && std::find(wanted.begin(), wanted.end(), s) == wanted.end()) wanted.push_back(s);
  }
  std::vector<EnsembleStem> out;
  std::vector<std::string> problems;
  for (const auto& stem : wanted) {
    EnsembleStem e{stem, {}};
    std::vector<std::string> with, without;
    for (size_t i = 0; i < n; ++i) {
      const auto it = std::find(named[i].begin(), named[i].end(), stem);
      const std::string who = fmt::format("{} (model {})", member_names[i], i + 1);
      if (it == named[i].end()) {
        without.push_back(who);
      } else {
        with.push_back(who);
        e.from.push_back(static_cast<int64_t>(it - named[i].begin()));
      }
    }
    if (without.empty())
      out.push_back(std::move(e));
    else
      problems.push_back(fmt::format("{} comes from {} but not from {}", stem, join(with, ", "), join(without, ", ")));
  }
  if (!problems.empty())
    throw Error(
        "the ensemble combines the stems every model produces: {}. Map such a stem onto another model's with "
        "--ensemble-map MODEL:STEM=NAME, leave it out with --ensemble-map MODEL:STEM=-, or write one stem and the mix "
        "minus it with --two-stems STEM --other-method minus",
        join(problems, "; "));
  if (out.empty()) throw Error("the ensemble has no stem left to write: every stem is left out by --ensemble-map");
  return out;
}

LoadedModel load_ensemble(const EnsembleOptions& e, const RunnerOptions& run) {
  std::vector<LoadedModel> members;
  std::vector<std::string> names;
  for (const auto& o : e.members) {
    members.push_back(load_model(o));
    names.push_back(members.back().name);
  }
  const LoadedModel& first = members.front();
  for (size_t i = 1; i < members.size(); ++i) {
    const auto& m = *members[i].model;
    if (m.samplerate() != first.model->samplerate() || m.audio_channels() != first.model->audio_channels())
      throw Error(
          "the ensemble's models must take the same audio: {} (model 1) separates {} Hz with {} channel(s), {} "
          "(model {}) {} Hz with {}; combine models of one sample rate and channel count",
          first.name, first.model->samplerate(), first.model->audio_channels(), members[i].name, i + 1, m.samplerate(),
          m.audio_channels());
  }
  std::vector<StemMapping> mappings;
  for (const auto& text : e.map_given) mappings.push_back(parse_stem_mapping(text, names));
  std::vector<std::vector<std::string>> sources;
  for (const auto& m : members) sources.push_back(m.model->stems());
  std::vector<EnsembleStem> stems = ensemble_stems(sources, names, mappings, run);

  LoadedModel out;
  out.name = "ensemble-" + join(names, "+");
  out.device = first.device;
  out.dtype = first.dtype;
  plan::ExecutionPlan& p = out.plan;
  p = first.plan;
  p.model = out.name;
  std::string weights;
  for (double w : e.weights) weights += (weights.empty() ? "" : ",") + fmt::format("{}", w);
  // What the set's marker records (stem_set_settings): the algorithm, the
  // weights, and each member's precision and cutting, so that --skip-existing
  // redoes a track made by another ensemble.
  p.cutting = {{"ensemble",
                {fmt::format("{} of {}", ensemble_algorithm_name(e.algorithm), join(names, ", ")),
                 "--ensemble (MSST's ensemble.py)"}},
               {"weights", {weights, ensemble_uses_weights(e.algorithm) ? "--weights" : "not used by this algorithm"}}};
  std::vector<models::SeparationOptions> options;
  for (size_t i = 0; i < members.size(); ++i) {
    const LoadedModel& m = members[i];
    const std::string prefix = fmt::format("{}. {}: ", i + 1, m.name);
    p.cutting.push_back({prefix + "precision", {precision_name(m.dtype), m.plan.precision_reason}});
    for (const auto& [key, value] : m.plan.cutting) p.cutting.push_back({prefix + key, value});
    options.push_back(separation_options(m, e.members[i]));
    p.batch_size = std::max(p.batch_size, m.plan.batch_size);
    out.load_s += m.load_s;
    out.to_device_s += m.to_device_s;
    for (const auto& w : m.warnings) out.warnings.push_back(m.name + ": " + w);
  }
  p.batch_reason = "each model's own (see its plan in the --json summary's \"ensemble\")";
  out.model = std::make_unique<EnsembleSeparator>(std::move(members), e, std::move(options), std::move(stems));
  return out;
}

nlohmann::json ensemble_summary(const LoadedModel& ensemble) {
  const auto* e = dynamic_cast<const EnsembleSeparator*>(ensemble.model.get());
  if (!e) throw std::logic_error("ensemble_summary: not an ensemble");
  nlohmann::json members = nlohmann::json::array();
  for (size_t i = 0; i < e->members().size(); ++i) {
    const LoadedModel& m = e->members()[i];
    members.push_back({{"model", m.name},
                       {"precision", precision_name(m.dtype)},
                       {"load_s", m.load_s},
                       {"stems", e->member_stems(i)},
                       {"plan", m.plan.to_json()}});
  }
  return {{"algorithm", std::string(ensemble_algorithm_name(e->algorithm()))},
          {"weights", e->weights()},
          {"one_at_a_time", e->one_at_a_time()},
          {"stems", e->stems()},
          {"members", members}};
}

}  // namespace stemkit::separate
