// Finding a libtorch for the runtime build, and telling which one it is,
// without linking libtorch: by the files in its prefix (TorchConfig.cmake,
// its version file, libtorch_cuda.so / libtorch_hip.so, torch/version.py).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace patchmgr {

enum class TorchFlavor { cpu, cuda, rocm };
const char* to_string(TorchFlavor f);  // "cpu", "cuda", "rocm"

struct Libtorch {
  std::filesystem::path torch_dir;  // the directory holding TorchConfig.cmake (CMake's Torch_DIR)
  std::filesystem::path lib_dir;    // the directory holding libtorch*.so
  std::string version = "unknown";  // "2.5.1", "1.13.0"
  TorchFlavor flavor = TorchFlavor::cpu;
  std::string accelerator_version;  // CUDA or ROCm version when known ("12.4", "6.2")
  std::string
      source;  // where it was found: "--libtorch", "$STEMKIT_LIBTORCH", "python3's torch", "Debian's libtorch-dev"
  std::string describe() const;  // "libtorch 2.5.1, CUDA 12.4, at /opt/libtorch/share/cmake/Torch (from --libtorch)"
};

// Reads a libtorch at `prefix`: a libtorch directory (unzipped download), a
// CMake prefix (python's torch.utils.cmake_prefix_path), a Torch_DIR, or a
// library directory with cmake/Torch (Debian's /usr/lib/<triplet>). Throws
// Error(usage) saying what is missing.
Libtorch inspect_libtorch(const std::filesystem::path& prefix, const std::string& source);

struct LibtorchQuery {
  std::string prefix;              // --libtorch: only this one
  std::string flavor;              // "", "cpu", "cuda", "rocm": the first candidate of that flavor
  std::string python = "python3";  // asked for torch.utils.cmake_prefix_path ($STEMKIT_PYTHON)
  std::vector<std::filesystem::path> system_prefixes = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                                        "/usr/lib", "/usr/local"};
};

// The candidates in order: --libtorch, $STEMKIT_LIBTORCH, $LIBTORCH, the
// CMake prefix of an importable Python torch, Debian's (system prefixes).
// Returns the first usable one of the requested flavor; throws Error(usage)
// listing every candidate and why it was not taken.
Libtorch find_libtorch(const LibtorchQuery& q);

}  // namespace patchmgr
