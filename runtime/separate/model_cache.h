// The local cache of pretrained model files: where it is (--model-dir, else
// $STEMKIT_MODEL_DIR, else $XDG_CACHE_HOME/stemkit/models, else
// ~/.cache/stemkit/models) and whether a catalog member is in it, intact.
// A file is only ever used after its sha256 matches: the prefix the catalog
// gives (a demucs file's, from its name), or, for a file whose publisher gives
// no hash (the RoFormers'), the one recorded beside it at its first download
// (trust on first use). So a truncated, damaged or altered file is caught
// before torch sees it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/separate/environment.h"
#include "runtime/separate/model_catalog.h"

namespace stemkit::separate {

// The cache directory and where that choice came from, for messages.
struct ModelDirChoice {
  std::filesystem::path dir;
  std::string source;  // "--model-dir", "$STEMKIT_MODEL_DIR", "$XDG_CACHE_HOME", "$HOME"; "" = not said
};

// The cache directory: `model_dir_option` (the --model-dir value) when given, else
// $STEMKIT_MODEL_DIR, else $XDG_CACHE_HOME/stemkit/models (only when absolute, as
// the XDG spec says), else $HOME/.cache/stemkit/models, the variables as `env`
// holds them. Empty variables count as unset. Throws stemkit::Error when none
// applies (no HOME). Creates nothing.
ModelDirChoice choose_model_dir(const std::optional<std::filesystem::path>& model_dir_option, const Environment& env);

// Where cuBLASLt's timed GEMM algorithms are kept between runs
// (runtime/kernels/lt_algo_cache.h): $XDG_CACHE_HOME/stemkit/gemm (when
// absolute), else $HOME/.cache/stemkit/gemm; empty (nothing kept) without
// either. Creates nothing.
std::filesystem::path gemm_algorithm_dir(const Environment& env);

// The lower-case hex sha256 of a whole file (memory-mapped). Throws stemkit::Error naming it.
std::string file_sha256_hex(const std::filesystem::path& file);

class ModelCache {
 public:
  explicit ModelCache(ModelDirChoice choice);
  explicit ModelCache(std::filesystem::path dir);  // dir_source() ""
  // choose_model_dir(model_dir_option, env).
  static ModelCache from_option(const std::optional<std::filesystem::path>& model_dir_option, const Environment& env);

  const std::filesystem::path& dir() const { return choice_.dir; }
  const std::string& dir_source() const { return choice_.source; }

  // Where the member's file is or would be: dir() / file_name.
  std::filesystem::path path_for(const CatalogMember& member) const;

  // The member's file when it is present and intact; nullopt when absent.
  // Intact: its sha256 starts with the member's prefix, or, for a member
  // without one, equals the hash recorded_sha256() holds; a present file
  // with no record yet (put there by hand) is recorded now, at its first use.
  // A present file with another hash throws stemkit::Error naming the file,
  // both hashes, and the fix (delete it and run with --download). Hashes the
  // whole file on every call (about 0.3 s per 80 MB).
  std::optional<std::filesystem::path> resolve(const CatalogMember& member) const;

  // Where the sha256 of a member without a published hash is recorded:
  // `<file>.sha256` beside it, as sha256sum writes it ("<hex>  <file name>\n"),
  // so that `sha256sum -c` checks it too.
  std::filesystem::path recorded_hash_path(const CatalogMember& member) const;
  // The recorded sha256 (64 lower-case hex digits); nullopt when there is no
  // record. A record that is not sha256sum's line for the file throws, naming it.
  std::optional<std::string> recorded_sha256(const CatalogMember& member) const;
  // Records `sha256_hex` for the member, replacing any record atomically.
  // Throws stemkit::Error naming the file when it cannot be written.
  void record_sha256(const CatalogMember& member, const std::string& sha256_hex) const;

  // The members of `model` whose files are absent (resolve() == nullopt);
  // throws as resolve() does for a damaged one.
  std::vector<CatalogMember> missing(const CatalogModel& model) const;

 private:
  ModelDirChoice choice_;
};

}  // namespace stemkit::separate
