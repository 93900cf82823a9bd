// The pretrained model catalog: demucs/remote/{files.txt,*.yaml} at b9ab48c,
// and the RoFormers of UVR's and MSST's lists, written out. See model_catalog.h.
#include "runtime/separate/model_catalog.h"

#include <algorithm>
#include <filesystem>
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

// UVR's checkpoints (UVR.py NORMAL_REPO; audio-separator tries it first too).
constexpr std::string_view kUvrModelRepo =
    "https://github.com/TRvlvr/model_repo/releases/download/all_public_uvr_models/";
// UVR's configurations (gui_data/constants.py MDX23_CONFIG_CHECKS, .../main/mdx_model_data/mdx_c_configs/),
// with `main` replaced by the commit whose files were checked, so that what is
// fetched is what was checked.
constexpr std::string_view kUvrConfigs =
    "https://raw.githubusercontent.com/TRvlvr/application_data/3826b05b570dbd4fbedbc807758803b35348ba1b/mdx_model_data/"
    "mdx_c_configs/";
// MSST's configurations (docs/pretrained_models.md links .../main/configs/), at the commit checked.
constexpr std::string_view kMsstConfigs =
    "https://raw.githubusercontent.com/ZFTurbo/Music-Source-Separation-Training/"
    "ccc011abf7f89dd7922bb2888d48493b575c0289/configs/";

constexpr std::string_view kUvrSource =
    "UVR's download list (TRvlvr/application_data@3826b05 filelists/download_checks.json, roformer_download_list; "
    "audio-separator lists it too)";
constexpr std::string_view kMsstSource =
    "MSST's docs/pretrained_models.md (ZFTurbo/Music-Source-Separation-Training@ccc011a); the name is UVR's and "
    "audio-separator's";

// A RoFormer: its configuration and its checkpoint, cached as <name>.yaml and
// <name>.ckpt (so audio-separator's cached <name>.ckpt can be copied in). The
// publishers give no hashes: both are trusted at their first download.
CatalogModel roformer(std::string name, Architecture architecture, std::string description, std::string config_url,
                      std::string checkpoint_url, std::string_view source, std::string verified) {
  CatalogModel m;
  m.architecture = architecture;
  m.description = std::move(description);
  m.members = {{"", name + ".yaml", "", std::move(config_url), FileKind::msst_config},
               {"", name + ".ckpt", "", std::move(checkpoint_url), FileKind::weights}};
  m.source = std::string(source);
  m.verified = std::move(verified);
  m.name = std::move(name);
  return m;
}

// Checked here for every RoFormer entry, besides what each entry's `verified` says.
std::string checked(std::string_view what) {
  return "configuration read from the commit in its URL, parsed by load_msst_config and the network built from it by "
         "this runtime on 2026-12-07 (" +
         std::string(what) +
         "); the checkpoint was not downloaded (no network where the catalog was written): its parameter names and "
         "shapes are checked against the configuration at every load";
}

std::vector<CatalogModel> roformers() {
  using A = Architecture;
  std::vector<CatalogModel> r;
  // UVR and MSST both list viperx's models; MSST's configurations are the ones its table links.
  r.push_back(roformer("model_bs_roformer_ep_317_sdr_12.9755", A::bs_roformer,
                       "BS-RoFormer by viperx; stems vocals, instrumental (MSST: SDR vocals 10.87)",
                       std::string(kMsstConfigs) + "viperx/model_bs_roformer_ep_317_sdr_12.9755.yaml",
                       std::string(kUvrModelRepo) + "model_bs_roformer_ep_317_sdr_12.9755.ckpt", kMsstSource,
                       checked("BSRoformer dim 512, depth 12, 62 bands, one stem: vocals")));
  r.push_back(roformer("model_bs_roformer_ep_368_sdr_12.9628", A::bs_roformer,
                       "BS-RoFormer by viperx; stems Vocals, instrumental",
                       std::string(kUvrConfigs) + "model_bs_roformer_ep_368_sdr_12.9628.yaml",
                       std::string(kUvrModelRepo) + "model_bs_roformer_ep_368_sdr_12.9628.ckpt", kUvrSource,
                       checked("BSRoformer dim 512, depth 12, 62 bands, one stem: Vocals")));
  r.push_back(roformer("model_bs_roformer_ep_937_sdr_10.5309", A::bs_roformer,
                       "BS-RoFormer by viperx; stems other, instrumental (the mix minus other) (MSST: SDR other 6.85)",
                       std::string(kMsstConfigs) + "viperx/model_bs_roformer_ep_937_sdr_10.5309.yaml",
                       std::string(kUvrModelRepo) + "model_bs_roformer_ep_937_sdr_10.5309.ckpt", kMsstSource,
                       checked("BSRoformer dim 384, depth 12, 62 bands, one stem: other")));
  r.push_back(roformer("model_mel_band_roformer_ep_3005_sdr_11.4360", A::mel_band_roformer,
                       "Mel-Band RoFormer by viperx; stems vocals, instrumental (MSST: SDR vocals 9.67)",
                       std::string(kMsstConfigs) + "viperx/model_mel_band_roformer_ep_3005_sdr_11.4360.yaml",
                       std::string(kUvrModelRepo) + "model_mel_band_roformer_ep_3005_sdr_11.4360.ckpt", kMsstSource,
                       checked("MelBandRoformer dim 384, depth 12, 60 bands, one stem: vocals")));
  r.push_back(roformer("vocals_mel_band_roformer", A::mel_band_roformer,
                       "Mel-Band RoFormer by Kimberley Jensen; stems vocals, instrumental (MSST: SDR vocals 10.98)",
                       std::string(kMsstConfigs) + "KimberleyJensen/config_vocals_mel_band_roformer_kj.yaml",
                       "https://huggingface.co/KimberleyJSN/melbandroformer/resolve/main/MelBandRoformer.ckpt",
                       "MSST's docs/pretrained_models.md (ZFTurbo/Music-Source-Separation-Training@ccc011a: "
                       "KimberleyJensen's MelBandRoformer.ckpt); the name is audio-separator's for this model",
                       checked("MelBandRoformer dim 384, depth 6, 60 bands, one stem: vocals")));
  // unwa's fine-tunes of Kim's model, as UVR lists them.
  r.push_back(roformer(
      "melband_roformer_inst_v1", A::mel_band_roformer,
      "Mel-Band RoFormer by unwa (Kim's, fine-tuned); stems Instrumental, instrumental (the mix minus it: the vocals)",
      std::string(kUvrConfigs) + "config_melbandroformer_inst.yaml",
      std::string(kUvrModelRepo) + "melband_roformer_inst_v1.ckpt", kUvrSource,
      checked("MelBandRoformer dim 384, depth 6, 60 bands, one stem: Instrumental")));
  r.push_back(roformer(
      "melband_roformer_inst_v2", A::mel_band_roformer,
      "Mel-Band RoFormer by unwa (Kim's, fine-tuned); stems Instrumental, instrumental (the mix minus it: the vocals)",
      std::string(kUvrConfigs) + "config_melbandroformer_inst_v2.yaml",
      std::string(kUvrModelRepo) + "melband_roformer_inst_v2.ckpt", kUvrSource,
      checked("MelBandRoformer dim 384, depth 12, 60 bands, mask depth 3, one stem: Instrumental")));
  r.push_back(roformer("melband_roformer_instvoc_duality_v1", A::mel_band_roformer,
                       "Mel-Band RoFormer by unwa (Kim's, fine-tuned); stems Vocals, Instrumental, both from the model",
                       std::string(kUvrConfigs) + "config_melbandroformer_instvoc_duality.yaml",
                       std::string(kUvrModelRepo) + "melband_roformer_instvoc_duality_v1.ckpt", kUvrSource,
                       checked("MelBandRoformer dim 384, depth 6, 60 bands, two stems: Vocals, Instrumental")));
  r.push_back(roformer("melband_roformer_instvox_duality_v2", A::mel_band_roformer,
                       "Mel-Band RoFormer by unwa (Kim's, fine-tuned); stems Vocals, Instrumental, both from the model",
                       std::string(kUvrConfigs) + "config_melbandroformer_instvoc_duality.yaml",
                       std::string(kUvrModelRepo) + "melband_roformer_instvox_duality_v2.ckpt", kUvrSource,
                       checked("MelBandRoformer dim 384, depth 6, 60 bands, two stems: Vocals, Instrumental")));
  return r;
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
  for (auto& m : models) {
    m.source = "demucs/remote/files.txt and demucs/remote/" + m.name + ".yaml at b9ab48c";
    m.verified = "each file's sha256 prefix is in its name, as demucs checks it";
  }
  for (auto& m : roformers()) models.push_back(std::move(m));
  return models;
}

// The named models, then one bag of one per member signature (demucs' -n accepts both).
struct Catalog {
  std::vector<CatalogModel> named = build_named();
  std::vector<CatalogModel> by_signature;
  Catalog() {
    for (const auto& model : named)
      for (const auto& m : model.members) {
        if (m.signature.empty()) continue;
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

bool runnable(const CatalogModel& model) { return model.architecture != Architecture::hdemucs; }

bool is_roformer(const CatalogModel& model) {
  return model.architecture == Architecture::bs_roformer || model.architecture == Architecture::mel_band_roformer;
}

const CatalogModel* find_model(std::string_view name) {
  for (const auto& m : the_catalog().named)
    if (m.name == name || (is_roformer(m) && name == m.members.back().file_name)) return &m;
  for (const auto& m : the_catalog().by_signature)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& m : the_catalog().named)
    if (runnable(m)) names.push_back(m.name);
  std::sort(names.begin(), names.end());
  return names;
}

std::string model_list_text() {
  size_t width = 0;
  for (const auto& m : catalog())
    if (runnable(m)) width = std::max(width, m.name.size());
  std::string out;
  for (const auto& m : catalog())
    if (runnable(m)) out += fmt::format("{:<{}}  {}\n", m.name, width, m.description);
  return out;
}

std::string mirrored_url(std::string_view url, std::string_view mirror) {
  if (mirror.empty()) return std::string(url);
  for (std::string_view scheme : {"https://", "http://"})
    if (url.substr(0, scheme.size()) == scheme) {
      url.remove_prefix(scheme.size());
      break;
    }
  while (!mirror.empty() && mirror.back() == '/') mirror.remove_suffix(1);
  return fmt::format("{}/{}", mirror, url);
}

CatalogModel with_mirror(const CatalogModel& model, std::string_view mirror) {
  CatalogModel m = model;
  for (auto& member : m.members) member.url = mirrored_url(member.url, mirror);
  return m;
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
  // The names are many: --list-models shows them with what each model is.
  std::string known = fmt::format(
      "separate --list-models lists the {} models it knows; or give a path to a .th file or an MSST .yaml "
      "configuration",
      model_names().size());
  for (auto unsupported : kUnsupportedDemucsModels)
    if (name == unsupported)
      return fmt::format("model '{}' is a demucs v3 model (mdx_final/) that stemkit does not run; {}", name, known);
  if (auto suggestion = suggest_model(name))
    return fmt::format("unknown model '{}': did you mean '{}'? {}", name, *suggestion, known);
  return fmt::format("unknown model '{}'; {}", name, known);
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
  const bool file = looks_like_model_path(s);
  // -n model_bs_roformer_ep_317_sdr_12.9755.ckpt names the catalog's RoFormer unless that file exists here.
  if (!(file && std::filesystem::exists(std::string(s))))
    if (const CatalogModel* m = find_model(s); m && is_roformer(*m)) return ModelKind::msst_name;
  return file ? ModelKind::demucs_file : ModelKind::demucs_name;
}

}  // namespace stemkit::separate
