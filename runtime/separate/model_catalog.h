// The pretrained models the runner can fetch by name, written out here rather
// than read at run time so the runner needs neither Python nor the publishers'
// sources:
//  - the official demucs models, as demucs lists them at commit b9ab48c
//    (demucs/remote/files.txt for the file names, demucs/remote/<name>.yaml for
//    the bags: member signatures, per-member per-source weights, segment). A
//    member file is named `<signature>-<sha256 prefix>.th`: the part after '-'
//    is the first 8 hex digits of the file's sha256, which demucs checks
//    (demucs/repo.py check_checksum, torch.hub check_hash) and so do we;
//  - BS-RoFormer and Mel-Band RoFormer checkpoints under the names
//    python-audio-separator and UVR users know them by (the checkpoint's file
//    name without .ckpt), each an MSST configuration and a checkpoint, with the
//    URLs their publishers give: UVR's download list (TRvlvr/application_data
//    filelists/download_checks.json, which audio-separator reads) and MSST's
//    docs/pretrained_models.md. No publisher gives a hash for these files: the
//    cache records each one's sha256 at its first download (model_cache.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stemkit::separate {

// Where demucs' hybrid transformer files live (files.txt: `root: hybrid_transformer/`).
inline constexpr std::string_view kHybridTransformerRootUrl =
    "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/";

// What a catalog file holds.
enum class FileKind { weights, msst_config };

// One file of a model: a checkpoint of a bag, or a RoFormer's configuration or checkpoint.
struct CatalogMember {
  std::string signature;  // a demucs member's "955717e8"; empty for RoFormer files
  std::string file_name;  // its name in the model cache: "955717e8-8726e21a.th", "<model>.yaml", "<model>.ckpt"
  // The hex digits the file's sha256 must start with ("8726e21a": demucs' 8).
  // Empty: its publisher gives none, and the cache records the hash at the
  // file's first download and checks every later load against it.
  std::string sha256_prefix;
  std::string url;  // where its publisher serves it
  FileKind kind = FileKind::weights;
};

// Which network class a checkpoint holds (what the runtime must build).
enum class Architecture { htdemucs, hdemucs, bs_roformer, mel_band_roformer };

// A model name and the files behind it: a demucs bag (plain htdemucs is a bag
// of one), or a RoFormer's MSST configuration and checkpoint, in that order.
struct CatalogModel {
  std::string name;
  std::string description;
  Architecture architecture = Architecture::htdemucs;
  std::vector<CatalogMember> members;
  // Where the name and the URLs come from, and what stemkit checked of the entry
  // (for a RoFormer: its configuration, read from the publisher's repository at a
  // commit, parsed and the network built from it by this runtime).
  std::string source;
  std::string verified;
  // weights[member][source], as demucs' BagOfModels takes them; empty = all ones.
  std::vector<std::vector<double>> weights;
  // The bag's segment in seconds (the yaml's `segment:`), when it sets one.
  std::optional<double> segment;
};

// Every model with a name: the demucs models, then the RoFormers.
const std::vector<CatalogModel>& catalog();

// Whether this runtime runs the model (hdemucs_mmi, an HDemucs, it does not).
bool runnable(const CatalogModel& model);
bool is_roformer(const CatalogModel& model);

// The model called `name` (exact, case-sensitive, as demucs' -n). A member
// signature of a catalog model ("f7e0c4bc") also works, as a bag of one, as
// it does in demucs, and so does a RoFormer's checkpoint file name as
// audio-separator's -m takes it ("model_bs_roformer_ep_317_sdr_12.9755.ckpt").
// nullptr when unknown.
const CatalogModel* find_model(std::string_view name);

// The names of the models this runtime runs (not the signatures), sorted.
std::vector<std::string> model_names();

// What --list-models prints: one line per runnable model, name and description
// in columns, in catalog order.
std::string model_list_text();

// `url` fetched through `mirror` instead of its origin: "https://host/path"
// becomes "<mirror>/host/path" (one '/' between them). `url` unchanged when
// `mirror` is empty.
std::string mirrored_url(std::string_view url, std::string_view mirror);
// `model` with every member's URL mirrored_url(url, mirror).
CatalogModel with_mirror(const CatalogModel& model, std::string_view mirror);

// The closest known name when `name` looks like a typo of one (edit distance,
// ignoring case and '-' vs '_'); nullopt when nothing is close.
std::optional<std::string> suggest_model(std::string_view name);

// The error text for an unknown name, e.g.
//   unknown model 'htdemcs': did you mean 'htdemucs'? separate --list-models lists the 12 models it knows; or give a
//   path to a .th file or an MSST .yaml configuration
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
  msst_name,    // a RoFormer of the catalog: its configuration and checkpoint from the model cache, --download
};
ModelKind model_kind(std::string_view name_or_path);
// An MSST model, given as a configuration or named from the catalog: MSST's options apply.
inline bool is_msst(ModelKind kind) { return kind == ModelKind::msst_config || kind == ModelKind::msst_name; }

}  // namespace stemkit::separate
