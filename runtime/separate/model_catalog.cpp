// The pretrained model catalog: demucs/remote/{files.txt,*.yaml} at b9ab48c,
// written out. See model_catalog.h.
#include "runtime/separate/model_catalog.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runtime/error.h"

namespace stemkit::separate {
namespace {

// files.txt line "<signature>-<sha256 prefix>.th" under the hybrid_transformer/ root.
CatalogMember member(std::string_view file_name) {
  CatalogMember m;
  m.file_name = std::string(file_name);
  auto dash = file_name.find('-');
  auto dot = file_name.rfind('.');
  m.signature = std::string(file_name.substr(0, dash));
  m.sha256_prefix = std::string(file_name.substr(dash + 1, dot - dash - 1));
  m.url = std::string(kHybridTransformerRootUrl) + m.file_name;
  return m;
}

std::vector<CatalogModel> build_named() {
  std::vector<CatalogModel> models;
  {  // demucs/remote/hdemucs_mmi.yaml: models: ['75fc33f5'], segment: 44
    CatalogModel m;
    m.name = "hdemucs_mmi";
    m.description = "Hybrid Demucs v3, retrained on MusDB + 800 songs";
    m.architecture = Architecture::hdemucs;
    m.members = {member("75fc33f5-1941ce65.th")};
    m.segment = 44.0;
    models.push_back(std::move(m));
  }
  {  // demucs/remote/htdemucs.yaml: models: ['955717e8']
    CatalogModel m;
    m.name = "htdemucs";
    m.description = "Hybrid Transformer Demucs, trained on MusDB + 800 songs; demucs' default";
    m.members = {member("955717e8-8726e21a.th")};
    models.push_back(std::move(m));
  }
  {  // demucs/remote/htdemucs_6s.yaml: models: ['5c90dfd2']
    CatalogModel m;
    m.name = "htdemucs_6s";
    m.description = "htdemucs with 6 sources (adds guitar and piano; piano is weak)";
    m.members = {member("5c90dfd2-34c22ccb.th")};
    models.push_back(std::move(m));
  }
  {  // demucs/remote/htdemucs_ft.yaml: four members, each kept for one source
    CatalogModel m;
    m.name = "htdemucs_ft";
    m.description = "fine-tuned htdemucs, one model per source: 4x slower, a bit better";
    m.members = {member("f7e0c4bc-ba3fe64a.th"), member("d12395a8-e57c48e6.th"), member("92cfc3b6-ef3bcb9c.th"),
                 member("04573f0d-f3cf25b2.th")};
    m.weights = {{1., 0., 0., 0.}, {0., 1., 0., 0.}, {0., 0., 1., 0.}, {0., 0., 0., 1.}};
    models.push_back(std::move(m));
  }
  return models;
}

// The named models, then one bag of one per member signature (demucs' -n accepts both).
struct Catalog {
  std::vector<CatalogModel> named = build_named();
  std::vector<CatalogModel> by_signature;
  Catalog() {
    for (const auto& model : named)
      for (const auto& m : model.members) {
        CatalogModel single;
        single.name = m.signature;
        single.description = fmt::format("member {} of {}", m.signature, model.name);
        single.architecture = model.architecture;
        single.members = {m};
        single.segment = model.segment;
        by_signature.push_back(std::move(single));
      }
  }
};

const Catalog& the_catalog() {
  static const Catalog c;
  return c;
}

// demucs models at the pin that are not hybrid transformer files (demucs/remote/*.yaml
// with the mdx_final/ root): recognised only to say they are not supported.
constexpr std::string_view kUnsupportedDemucsModels[] = {
    "mdx", "mdx_extra", "mdx_q", "mdx_extra_q", "repro_mdx_a", "repro_mdx_a_hybrid_only", "repro_mdx_a_time_only"};

std::string fold(std::string_view s) {
  std::string out;
  for (char c : s) out += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Edits (insert, delete, substitute, swap two neighbours) from a to b: the
// optimal string alignment distance, so "htdemucs_tf" is one edit from "htdemucs_ft".
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const std::vector<CatalogModel>& catalog() { return the_catalog().named; }

const CatalogModel* find_model(std::string_view name) {
  for (const auto& m : the_catalog().named)
    if (m.name == name) return &m;
  for (const auto& m : the_catalog().by_signature)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& m : the_catalog().named) names.push_back(m.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> suggest_model(std::string_view name) {
  std::string folded = fold(name);
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& known : model_names()) {
    size_t d = edit_distance(folded, known);
    if (!best || d < best_distance) {
      best = known;
      best_distance = d;
    }
  }
  // Close enough to be a typo: at most 2 edits, and fewer than a third of the name.
  if (best && best_distance <= 2 && best_distance * 3 <= best->size()) return best;
  return std::nullopt;
}

std::string unknown_model_message(std::string_view name) {
  std::string known = fmt::format("{}", fmt::join(model_names(), ", "));
  for (auto unsupported : kUnsupportedDemucsModels)
    if (name == unsupported)
      return fmt::format(
          "model '{}' is a demucs v3 model (mdx_final/) that stemkit does not run. Known: {}; or give a path to a .th "
          "file",
          name, known);
  if (auto suggestion = suggest_model(name))
    return fmt::format("unknown model '{}': did you mean '{}'? Known: {}; or give a path to a .th file", name,
                       *suggestion, known);
  return fmt::format("unknown model '{}'. Known: {}; or give a path to a .th file", name, known);
}

const CatalogModel& require_model(std::string_view name) {
  if (const auto* m = find_model(name)) return *m;
  throw Error(unknown_model_message(name));
}

bool looks_like_model_path(std::string_view s) {
  return s.find('/') != std::string_view::npos || ends_with(s, ".th") || ends_with(s, ".pt") || ends_with(s, ".ckpt") ||
         ends_with(s, ".safetensors");
}

ModelKind model_kind(std::string_view s) {
  if (ends_with(s, ".yaml") || ends_with(s, ".yml")) return ModelKind::msst_config;
  return looks_like_model_path(s) ? ModelKind::demucs_file : ModelKind::demucs_name;
}

}  // namespace stemkit::separate
