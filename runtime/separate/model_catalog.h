// The official pretrained demucs models the runner can fetch by name, as
// demucs lists them at commit b9ab48c (demucs/remote/files.txt for the file
// names, demucs/remote/<name>.yaml for the bags: member signatures, per-member
// per-source weights, segment). Written out here rather than read at run time
// so the runner needs neither Python nor the demucs sources.
//
// A member file is named `<signature>-<sha256 prefix>.th`: the part after '-'
// is the first 8 hex digits of the file's sha256, which demucs checks
// (demucs/repo.py check_checksum, torch.hub check_hash) and so do we.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stemkit::separate {

// Where demucs' hybrid transformer files live (files.txt: `root: hybrid_transformer/`).
inline constexpr std::string_view kHybridTransformerRootUrl =
    "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/";

// One checkpoint of a bag.
struct CatalogMember {
  std::string signature;      // "955717e8"
  std::string file_name;      // "955717e8-8726e21a.th"
  std::string sha256_prefix;  // "8726e21a": the first 8 hex digits of the file's sha256
  std::string url;            // root URL + file_name
};

// Which network class a checkpoint holds (what the runtime must build).
enum class Architecture { htdemucs, hdemucs };

// A model name and the bag behind it. Plain htdemucs is a bag of one.
struct CatalogModel {
  std::string name;
  std::string description;
  Architecture architecture = Architecture::htdemucs;
  std::vector<CatalogMember> members;
  // weights[member][source], as demucs' BagOfModels takes them; empty = all ones.
  std::vector<std::vector<double>> weights;
  // The bag's segment in seconds (the yaml's `segment:`), when it sets one.
  std::optional<double> segment;
};

// Every model with a name, in the order model_names() lists them.
const std::vector<CatalogModel>& catalog();

// The model called `name` (exact, case-sensitive, as demucs' -n). A member
// signature of a catalog model ("f7e0c4bc") also works, as a bag of one, as
// it does in demucs. nullptr when unknown.
const CatalogModel* find_model(std::string_view name);

// The names (not the signatures), sorted: hdemucs_mmi, htdemucs, htdemucs_6s, htdemucs_ft.
std::vector<std::string> model_names();

// The closest known name when `name` looks like a typo of one (edit distance,
// ignoring case and '-' vs '_'); nullopt when nothing is close.
std::optional<std::string> suggest_model(std::string_view name);

// The error text for an unknown name, e.g.
//   unknown model 'htdemcs': did you mean 'htdemucs'? Known: hdemucs_mmi, htdemucs, htdemucs_6s, htdemucs_ft; or give a
//   path to a .th file
// Names of demucs models stemkit does not run (mdx, mdx_extra_q, ...) say so.
std::string unknown_model_message(std::string_view name);

// find_model, or throws stemkit::Error with unknown_model_message.
const CatalogModel& require_model(std::string_view name);

// True when a -n argument is meant as a file rather than a catalog name: it
// contains '/' or ends with .th, .pt, .ckpt or .safetensors.
bool looks_like_model_path(std::string_view name_or_path);

// How -n names the model, which decides what it is and which options mean
// something for it (docs/cli.md, "Options per model").
enum class ModelKind {
  demucs_name,  // a catalog name or a member signature: the model cache, --download
  demucs_file,  // a demucs .th file
  msst_config,  // a Music-Source-Separation-Training .yaml (or .yml) configuration, with --checkpoint
};
ModelKind model_kind(std::string_view name_or_path);

}  // namespace stemkit::separate
