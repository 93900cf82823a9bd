// cuBLASLt's chosen GEMM algorithms, kept between runs. lt_gemm.cpp times
// cuBLASLt's candidates for each GEMM shape at its first use, which a new
// process would pay again at its first song; this file keeps the winners.
// One file per GPU model, CUDA driver and cuBLASLt version (an algorithm is
// only valid for those), one line per shape:
//
//   v1 <shape key> = <the algorithm's 8 words, hex>
//
// A line that does not parse is skipped (two processes appending at once,
// an edit): it is a cache, read defensively, never an error. Deleting the
// directory is safe; the next run times again.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace stemkit::kernels {

using AlgoWords = std::array<uint64_t, 8>;  // cublasLtMatmulAlgo_t's bytes

class AlgoCacheFile {
 public:
  // Reads `path` if it exists (a missing or unreadable file is an empty cache).
  explicit AlgoCacheFile(std::filesystem::path path);

  std::optional<AlgoWords> find(const std::string& key) const;

  // Keeps `algo` for `key` here and appends its line to the file (one write,
  // O_APPEND: whole lines even with other processes appending); a file that
  // cannot be written leaves the cache in memory only.
  void add(const std::string& key, const AlgoWords& algo);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::map<std::string, AlgoWords> algos_;
};

// The file for a GPU model (its name; characters other than letters, digits,
// '.' and '-' become '_'), a CUDA driver version (cudaDriverGetVersion) and a
// cuBLASLt version (cublasLtGetVersion), under `dir`.
std::filesystem::path algo_cache_path(const std::filesystem::path& dir, const std::string& gpu, int driver,
                                      size_t cublaslt);

}  // namespace stemkit::kernels
