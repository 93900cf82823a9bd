#include "runtime/kernels/lt_algo_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace stemkit::kernels {

namespace {

constexpr const char* kVersion = "v1";

// "v1 <key> = w0 ... w7" -> key and words; nothing when the line is not one.
bool parse(const std::string& line, std::string& key, AlgoWords& words) {
  if (line.rfind(std::string(kVersion) + " ", 0) != 0) return false;
  const size_t eq = line.find(" = ");
  if (eq == std::string::npos || eq <= 3) return false;
  key = line.substr(3, eq - 3);
  std::istringstream in(line.substr(eq + 3));
  for (auto& w : words) {
    std::string hex;
    if (!(in >> hex) || hex.empty() || hex.size() > 16 ||
        hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      return false;
    w = std::stoull(hex, nullptr, 16);
  }
  std::string rest;
  return !(in >> rest);
}

}  // namespace

AlgoCacheFile::AlgoCacheFile(std::filesystem::path path) : path_(std::move(path)) {
  std::ifstream in(path_);
  std::string line, key;
  AlgoWords words{};
  while (std::getline(in, line))
    if (parse(line, key, words)) algos_[key] = words;
}

std::optional<AlgoWords> AlgoCacheFile::find(const std::string& key) const {
  const auto it = algos_.find(key);
  if (it == algos_.end()) return std::nullopt;
  return it->second;
}

void AlgoCacheFile::add(const std::string& key, const AlgoWords& algo) {
  algos_[key] = algo;
  std::string line = std::string(kVersion) + " " + key + " =";
  for (uint64_t w : algo) {
    char hex[20];
    std::snprintf(hex, sizeof hex, " %" PRIx64, w);
    line += hex;
  }
  line += "\n";
  std::error_code ec;
  std::filesystem::create_directories(path_.parent_path(), ec);
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

std::filesystem::path algo_cache_path(const std::filesystem::path& dir, const std::string& gpu, int driver,
                                      size_t cublaslt) {
  std::string name;
  for (char c : gpu) name += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  return dir / (name + "-driver" + std::to_string(driver) + "-cublaslt" + std::to_string(cublaslt) + ".txt");
}

}  // namespace stemkit::kernels
