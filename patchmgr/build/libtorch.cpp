#include "patchmgr/build/libtorch.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "patchmgr/util/error.h"
#include "patchmgr/util/process.h"

namespace fs = std::filesystem;

namespace patchmgr {

const char* to_string(TorchFlavor f) {
  switch (f) {
    case TorchFlavor::cpu: return "cpu";
    case TorchFlavor::cuda: return "cuda";
    case TorchFlavor::rocm: return "rocm";
  }
  return "?";
}

std::string Libtorch::describe() const {
  std::string accel = flavor == TorchFlavor::cpu ? "CPU only"
                      : flavor == TorchFlavor::cuda
                          ? (accelerator_version.empty() ? "CUDA" : "CUDA " + accelerator_version)
                          : (accelerator_version.empty() ? "ROCm" : "ROCm " + accelerator_version);
  return fmt::format("libtorch {}, {}, at {} (from {})", version, accel, torch_dir.string(), source);
}

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool present(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A file in `dir` whose name starts with `stem` and continues with ".so" or "-" (pip's hashed names).
bool has_library(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(stem, 0) == 0 && (n.compare(stem.size(), 3, ".so") == 0 || n.compare(stem.size(), 1, "-") == 0))
      return true;
  }
  return false;
}

std::string first_match(const std::string& text, const std::regex& re) {
  std::smatch m;
  return std::regex_search(text, m, re) ? m[1].str() : std::string();
}

}  // namespace

Libtorch inspect_libtorch(const fs::path& prefix_in, const std::string& source) {
  fs::path prefix = fs::absolute(prefix_in).lexically_normal();
  if (!present(prefix))
    throw Error(ExitCode::usage,
                fmt::format("{} (from {}) does not exist; give the libtorch directory or its CMake prefix",
                            prefix.string(), source));
  Libtorch t;
  t.source = source;
  for (const fs::path& rel : {fs::path(), fs::path("Torch"), fs::path("share/cmake/Torch"), fs::path("lib/cmake/Torch"),
                              fs::path("cmake/Torch")}) {
    fs::path dir = rel.empty() ? prefix : prefix / rel;
    if (present(dir / "TorchConfig.cmake")) {
      t.torch_dir = dir.lexically_normal();
      break;
    }
  }
  if (t.torch_dir.empty())
    throw Error(ExitCode::usage, fmt::format("{} (from {}) holds no TorchConfig.cmake (looked in it and in Torch/, "
                                             "share/cmake/Torch/, lib/cmake/Torch/, cmake/Torch/); "
                                             "give the directory of an unzipped libtorch, or python3 -c 'import torch; "
                                             "print(torch.utils.cmake_prefix_path)'",
                                             prefix.string(), source));
  // The library directory: <root>/share/cmake/Torch -> <root>/lib (libtorch, pip);
  // <lib>/cmake/Torch -> <lib> (Debian); <root>/lib/cmake/Torch -> <root>/lib.
  const fs::path& T = t.torch_dir;
  fs::path root = T.parent_path().parent_path().parent_path();
  for (const fs::path& dir : {root / "lib", T.parent_path().parent_path()}) {
    if (has_library(dir, "libtorch_cpu") || has_library(dir, "libtorch") || has_library(dir, "libc10")) {
      t.lib_dir = dir;
      break;
    }
  }
  if (t.lib_dir.empty())
    throw Error(ExitCode::usage,
                fmt::format("{} (from {}) has TorchConfig.cmake but no libtorch libraries beside it (looked in {} and "
                            "{}); the libtorch is incomplete: reinstall it",
                            T.string(), source, (root / "lib").string(), T.parent_path().parent_path().string()));
  if (has_library(t.lib_dir, "libtorch_hip") || has_library(t.lib_dir, "libc10_hip"))
    t.flavor = TorchFlavor::rocm;
  else if (has_library(t.lib_dir, "libtorch_cuda") || has_library(t.lib_dir, "libc10_cuda"))
    t.flavor = TorchFlavor::cuda;

  // Version: TorchConfigVersion.cmake, else the C++ header, else libtorch's build-version.
  static const std::regex kPackageVersion("set\\(PACKAGE_VERSION \"([^\"]+)\"\\)");
  static const std::regex kHeaderVersion("#define TORCH_VERSION \"([^\"]+)\"");
  std::string build_version = present(root / "build-version") ? slurp(root / "build-version") : std::string();
  while (!build_version.empty() && isspace(static_cast<unsigned char>(build_version.back()))) build_version.pop_back();
  if (auto v = first_match(slurp(T / "TorchConfigVersion.cmake"), kPackageVersion); !v.empty())
    t.version = v;
  else if (auto h = first_match(slurp(root / "include/torch/csrc/api/include/torch/version.h"), kHeaderVersion);
           !h.empty())
    t.version = h;
  else if (!build_version.empty())
    t.version = build_version.substr(0, build_version.find('+'));
  // The accelerator's version: pip's torch/version.py, libtorch's build-version
  // (2.5.1+cu124, 2.5.1+rocm6.2), or the CUDA runtime library's name.
  std::string version_py = slurp(root / "version.py");
  static const std::regex kPyCuda("\\ncuda[^=\\n]*=\\s*'([^']+)'");
  static const std::regex kPyHip("\\nhip[^=\\n]*=\\s*'([^']+)'");
  static const std::regex kCu("\\+cu([0-9]+)([0-9])$");
  static const std::regex kRocm("\\+rocm([0-9.]+)$");
  std::smatch m;
  if (t.flavor == TorchFlavor::cuda) {
    t.accelerator_version = first_match("\n" + version_py, kPyCuda);
    if (t.accelerator_version.empty() && std::regex_search(build_version, m, kCu))
      t.accelerator_version = m[1].str() + "." + m[2].str();
    if (t.accelerator_version.empty()) {
      std::error_code ec;
      static const std::regex kCudart("^libcudart[^.]*\\.so\\.([0-9]+(\\.[0-9]+)?)");
      for (const auto& e : fs::directory_iterator(t.lib_dir, ec)) {
        std::string n = e.path().filename().string();
        if (std::regex_search(n, m, kCudart)) t.accelerator_version = m[1].str();
      }
    }
  } else if (t.flavor == TorchFlavor::rocm) {
    std::string hip = first_match("\n" + version_py, kPyHip);
    if (!hip.empty()) t.accelerator_version = first_match(hip, std::regex("^([0-9]+\\.[0-9]+)"));
    if (t.accelerator_version.empty() && std::regex_search(build_version, m, kRocm)) t.accelerator_version = m[1].str();
  }
  return t;
}

namespace {

// python -c 'import torch; print(torch.utils.cmake_prefix_path)', or an empty string and why not.
std::string python_prefix(const std::string& python, std::string& why) {
  char tmpl[] = "/tmp/patchmgr-python-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    why = "cannot make a temporary file";
    return {};
  }
  close(fd);
  Process p;
  p.argv = {python, "-c", "import torch.utils; print('PATCHMGR-PREFIX=' + torch.utils.cmake_prefix_path)"};
  p.log = tmpl;
  p.timeout = 120;
  ProcessResult r = run_process(p);
  std::string out = slurp(tmpl);
  fs::remove(tmpl);
  std::string prefix = first_match(out, std::regex("PATCHMGR-PREFIX=([^\\n]*)"));
  if (!r.ok() || prefix.empty()) {
    std::string last = out;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    if (auto nl = last.rfind('\n'); nl != std::string::npos) last = last.substr(nl + 1);
    why = fmt::format("{} cannot import torch ({})", python, last.empty() ? r.describe() : last);
    return {};
  }
  return prefix;
}

}  // namespace

Libtorch find_libtorch(const LibtorchQuery& q) {
  std::vector<std::pair<std::string, std::string>> candidates;  // (prefix, source)
  std::vector<std::string> tried;
  if (!q.prefix.empty()) {
    candidates.emplace_back(q.prefix, "--libtorch");
  } else {
    for (const char* var : {"STEMKIT_LIBTORCH", "LIBTORCH"})
      if (const char* v = std::getenv(var); v && *v) candidates.emplace_back(v, fmt::format("${}", var));
    std::string why;
    std::string py = python_prefix(q.python, why);
    if (!py.empty())
      candidates.emplace_back(py, fmt::format("{}'s torch", q.python));
    else
      tried.push_back(fmt::format("  Python: {}", why));
    for (const auto& p : q.system_prefixes)
      if (present(p / "cmake/Torch/TorchConfig.cmake") || present(p / "share/cmake/Torch/TorchConfig.cmake") ||
          present(p / "lib/cmake/Torch/TorchConfig.cmake"))
        candidates.emplace_back(p.string(),
                                p.string().rfind("/usr/lib", 0) == 0 ? "Debian's libtorch-dev" : p.string());
  }
  for (const auto& [prefix, source] : candidates) {
    try {
      Libtorch t = inspect_libtorch(prefix, source);
      if (q.flavor.empty() || q.flavor == to_string(t.flavor)) return t;
      tried.push_back(fmt::format("  {}: a {} build, not {}", t.describe(), to_string(t.flavor), q.flavor));
      if (!q.prefix.empty())
        throw Error(
            ExitCode::usage,
            fmt::format(
                "--libtorch {}: {} is a {} build, but --flavor {} was asked; give a {} libtorch or another --flavor",
                q.prefix, t.describe(), to_string(t.flavor), q.flavor, q.flavor));
    } catch (const Error& e) {
      if (!q.prefix.empty()) throw;
      tried.push_back(fmt::format("  {}: {}", source, e.what()));
    }
  }
  std::string want = q.flavor.empty() ? "libtorch" : fmt::format("{} libtorch", q.flavor);
  throw Error(
      ExitCode::usage,
      fmt::format(
          "found no {}; tried:\n{}\nfix: pass --libtorch PREFIX (an unzipped libtorch from pytorch.org, or python3 -c "
          "'import torch; print(torch.utils.cmake_prefix_path)'), "
          "set STEMKIT_LIBTORCH, set STEMKIT_PYTHON to a Python with torch, or install Debian's libtorch-dev (CPU)",
          want,
          tried.empty() ? "  nothing: no --libtorch, no $STEMKIT_LIBTORCH or $LIBTORCH, no system libtorch"
                        : fmt::format("{}", fmt::join(tried, "\n"))));
}

}  // namespace patchmgr
