// The model cache directory and intact-file lookup. See model_cache.h.
// The sha256 is patchmgr/util/sha256.cpp (OpenSSL's libcrypto), compiled into
// this library; this file only maps the file so it can be hashed in one call.
#include "runtime/separate/model_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "patchmgr/util/sha256.h"
#include "runtime/error.h"

namespace stemkit::separate {
namespace fs = std::filesystem;

namespace {

// Empty counts as unset.
std::optional<std::string> set(const std::optional<std::string>& v) {
  if (!v || v->empty()) return std::nullopt;
  return v;
}

// The user's cache folder: $XDG_CACHE_HOME (only when absolute, as the XDG
// spec says), else $HOME/.cache; none without either.
std::optional<ModelDirChoice> user_cache_root(const Environment& env) {
  if (auto v = set(env.xdg_cache_home); v && fs::path(*v).is_absolute()) return ModelDirChoice{*v, "$XDG_CACHE_HOME"};
  if (auto v = set(env.home)) return ModelDirChoice{fs::path(*v) / ".cache", "$HOME"};
  return std::nullopt;
}

}  // namespace

ModelDirChoice choose_model_dir(const std::optional<fs::path>& model_dir_option, const Environment& env) {
  if (model_dir_option && !model_dir_option->empty()) return {*model_dir_option, "--model-dir"};
  if (auto v = set(env.model_dir)) return {fs::path(*v), "$STEMKIT_MODEL_DIR"};
  if (auto root = user_cache_root(env)) return {root->dir / "stemkit" / "models", root->source};
  throw Error(
      "cannot choose a model cache directory: HOME is not set; give one with --model-dir DIR or STEMKIT_MODEL_DIR");
}

fs::path gemm_algorithm_dir(const Environment& env) {
  const auto root = user_cache_root(env);
  return root ? root->dir / "stemkit" / "gemm" : fs::path();
}

std::string file_sha256_hex(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read {}: {}", file.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("cannot read {}: {}", file.string(), std::strerror(e));
  }
  if (st.st_size == 0) {
    ::close(fd);
    return patchmgr::sha256_hex({});
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw Error("cannot read {}: {}", file.string(), std::strerror(e));
  ::madvise(p, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
  std::string hex =
      patchmgr::sha256_hex(std::string_view(static_cast<const char*>(p), static_cast<size_t>(st.st_size)));
  ::munmap(p, static_cast<size_t>(st.st_size));
  return hex;
}

ModelCache::ModelCache(ModelDirChoice choice) : choice_(std::move(choice)) {}
ModelCache::ModelCache(fs::path dir) : choice_{std::move(dir), ""} {}

ModelCache ModelCache::from_option(const std::optional<fs::path>& model_dir_option, const Environment& env) {
  return ModelCache(choose_model_dir(model_dir_option, env));
}

fs::path ModelCache::path_for(const CatalogMember& member) const { return choice_.dir / member.file_name; }

fs::path ModelCache::recorded_hash_path(const CatalogMember& member) const {
  return choice_.dir / (member.file_name + ".sha256");
}

std::optional<std::string> ModelCache::recorded_sha256(const CatalogMember& member) const {
  fs::path record = recorded_hash_path(member);
  std::ifstream in(record);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(record, ec)) return std::nullopt;
    throw Error("cannot read {}: {}; make it readable, or delete it to record the hash of {} anew", record.string(),
                std::strerror(errno), member.file_name);
  }
  std::string line;
  std::getline(in, line);
  // sha256sum's line: 64 hex digits, two spaces (or space and '*': binary mode), the name.
  const std::string hex = line.substr(0, 64);
  const bool ok = line.size() == 66 + member.file_name.size() &&
                  hex.find_first_not_of("0123456789abcdef") == std::string::npos &&
                  (line.compare(64, 2, "  ") == 0 || line.compare(64, 2, " *") == 0) &&
                  line.compare(66, std::string::npos, member.file_name) == 0;
  if (!ok)
    throw Error(
        "{} is not a sha256 record of {} (expected one line: 64 lower-case hex digits, two spaces, {}); delete it, "
        "and delete {} too and run with --download to fetch it again",
        record.string(), member.file_name, member.file_name, path_for(member).string());
  return hex;
}

void ModelCache::record_sha256(const CatalogMember& member, const std::string& sha256_hex) const {
  fs::path record = recorded_hash_path(member);
  std::string tmp = fmt::format("{}.tmp-{}", record.string(), ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << sha256_hex << "  " << member.file_name << "\n";
    out.close();
    if (!out) {
      int e = errno;
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(
          "cannot record the sha256 of {} in {}: {}; make the model cache writable (or choose another with "
          "--model-dir), or write the record yourself: cd {} && sha256sum {} > {}",
          member.file_name, record.string(), std::strerror(e), choice_.dir.string(), member.file_name,
          record.filename().string());
    }
  }
  if (::rename(tmp.c_str(), record.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot record the sha256 of {}: renaming {} to {} failed: {}", member.file_name, tmp, record.string(),
                std::strerror(e));
  }
}

std::optional<fs::path> ModelCache::resolve(const CatalogMember& member) const {
  fs::path file = path_for(member);
  std::error_code ec;
  auto status = fs::status(file, ec);
  if (ec || !fs::exists(status)) return std::nullopt;
  if (!fs::is_regular_file(status))
    throw Error("{} is in the model cache but is not a file; remove it and run with --download", file.string());
  if (member.sha256_prefix.empty()) {  // no published hash: trust on first use
    const std::string actual = file_sha256_hex(file);
    const std::optional<std::string> recorded = recorded_sha256(member);
    if (!recorded) {
      record_sha256(member, actual);
      return file;
    }
    if (actual != *recorded)
      throw Error(
          "{} has changed since its first download: its sha256 is {}, {} recorded {} (its publisher gives no hash, "
          "so the first copy is the reference); delete both files and run with --download to fetch it again from "
          "{}, or, if you replaced it on purpose, delete {} to trust the new file",
          file.string(), actual, recorded_hash_path(member).string(), *recorded, member.url,
          recorded_hash_path(member).string());
    return file;
  }
  std::string actual = file_sha256_hex(file).substr(0, member.sha256_prefix.size());
  if (actual != member.sha256_prefix)
    throw Error(
        "{} is damaged: its sha256 starts with {}, expected {} (an interrupted or altered copy); "
        "delete it and run with --download to fetch it again from {}",
        file.string(), actual, member.sha256_prefix, member.url);
  return file;
}

std::vector<CatalogMember> ModelCache::missing(const CatalogModel& model) const {
  std::vector<CatalogMember> out;
  for (const auto& m : model.members)
    if (!resolve(m)) out.push_back(m);
  return out;
}

}  // namespace stemkit::separate
