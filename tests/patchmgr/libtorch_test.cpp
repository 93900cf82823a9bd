// Finding a libtorch and telling its flavor, on fake prefixes laid out as an
// unzipped libtorch, pip's torch, ROCm's and Debian's (no real build: the files
// patchmgr reads are made here), and the order the candidates are tried in.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>

#include "fixture.h"
#include "patchmgr/build/libtorch.h"
#include "patchmgr/util/error.h"

using namespace testutil;

namespace {

// <prefix>/share/cmake/Torch/TorchConfig{,Version}.cmake and <prefix>/lib/<libs>.
fs::path fake_libtorch(const fs::path& prefix, const std::string& version, const std::vector<std::string>& libs) {
  write(prefix / "share/cmake/Torch/TorchConfig.cmake", "# fake\n");
  write(prefix / "share/cmake/Torch/TorchConfigVersion.cmake", "set(PACKAGE_VERSION \"" + version + "\")\n");
  for (const auto& l : libs) write(prefix / "lib" / l, "");
  return prefix;
}

// Environment variables set for one test and restored after it.
class EnvGuard {
 public:
  void set(const std::string& k, const std::string& v) {
    remember(k);
    setenv(k.c_str(), v.c_str(), 1);
  }
  void unset(const std::string& k) {
    remember(k);
    unsetenv(k.c_str());
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved_) {
      if (v)
        setenv(k.c_str(), v->c_str(), 1);
      else
        unsetenv(k.c_str());
    }
  }

 private:
  void remember(const std::string& k) {
    if (saved_.count(k)) return;
    const char* v = std::getenv(k.c_str());
    saved_[k] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  std::map<std::string, std::optional<std::string>> saved_;
};

// A "python" that prints what torch.utils.cmake_prefix_path would, or fails to import torch.
fs::path fake_python(const fs::path& dir, const std::string& prefix) {
  fs::path py = dir / "python";
  write(py, prefix.empty() ? "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"
                           : "#!/bin/sh\necho \"PATCHMGR-PREFIX=" + prefix + "\"\n");
  chmod(py.c_str(), 0755);
  return py;
}

TEST(Libtorch, UnzippedCudaLibtorchWithItsBuildVersion) {
  TempDir d;
  fs::path p = fake_libtorch(d.path() / "libtorch", "2.5.1",
                             {"libtorch.so", "libtorch_cpu.so", "libtorch_cuda.so", "libc10_cuda.so"});
  write(p / "build-version", "2.5.1+cu124\n");
  auto t = patchmgr::inspect_libtorch(p, "--libtorch");
  EXPECT_EQ(t.flavor, patchmgr::TorchFlavor::cuda);
  EXPECT_EQ(t.version, "2.5.1");
  EXPECT_EQ(t.accelerator_version, "12.4");
  EXPECT_EQ(t.torch_dir, p / "share/cmake/Torch");
  EXPECT_EQ(t.lib_dir, p / "lib");
  EXPECT_EQ(t.describe(), "libtorch 2.5.1, CUDA 12.4, at " + (p / "share/cmake/Torch").string() + " (from --libtorch)");
}

TEST(Libtorch, PipRocmTorchGivenByItsCMakePrefix) {
  TempDir d;
  fs::path torch = fake_libtorch(d.path() / "site-packages/torch", "2.6.0",
                                 {"libtorch.so", "libtorch_cpu.so", "libtorch_hip.so", "libc10_hip.so"});
  write(torch / "version.py",
        "from typing import Optional\n__version__ = '2.6.0+rocm6.2.4'\ndebug = False\ncuda: Optional[str] = None\nhip: "
        "Optional[str] = '6.2.41134-65d174c3e'\n");
  auto t = patchmgr::inspect_libtorch(torch / "share/cmake", "python3's torch");  // torch.utils.cmake_prefix_path
  EXPECT_EQ(t.flavor, patchmgr::TorchFlavor::rocm);
  EXPECT_EQ(t.accelerator_version, "6.2");
  EXPECT_EQ(t.version, "2.6.0");
  EXPECT_NE(t.describe().find("ROCm 6.2"), std::string::npos) << t.describe();
}

TEST(Libtorch, PipCudaVersionFromVersionPyAndHashedLibraryNames) {
  TempDir d;
  fs::path torch = fake_libtorch(d.path() / "torch", "2.11.0",
                                 {"libtorch.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so"});
  write(torch / "version.py",
        "__version__ = '2.11.0+cu130'\ncuda: Optional[str] = '13.0'\nhip: Optional[str] = None\n");
  auto t = patchmgr::inspect_libtorch(torch, "x");
  EXPECT_EQ(t.flavor, patchmgr::TorchFlavor::cuda);
  EXPECT_EQ(t.accelerator_version, "13.0");
}

TEST(Libtorch, DebianLayoutIsCpu) {
  TempDir d;
  fs::path lib = d.path() / "usr/lib/x86_64-linux-gnu";
  write(lib / "cmake/Torch/TorchConfig.cmake", "");
  write(lib / "cmake/Torch/TorchConfigVersion.cmake", "set(PACKAGE_VERSION \"1.13.0\")\n");
  write(lib / "libtorch.so.1.13", "");
  write(lib / "libtorch_cpu.so.1.13", "");
  auto t = patchmgr::inspect_libtorch(lib, "Debian's libtorch-dev");
  EXPECT_EQ(t.flavor, patchmgr::TorchFlavor::cpu);
  EXPECT_EQ(t.version, "1.13.0");
  EXPECT_EQ(t.lib_dir, lib);
  EXPECT_NE(t.describe().find("libtorch 1.13.0, CPU only"), std::string::npos) << t.describe();
}

TEST(Libtorch, ProblemsWithAPrefixAreNamed) {
  TempDir d;
  try {
    patchmgr::inspect_libtorch(d.path() / "missing", "--libtorch");
    FAIL();
  } catch (const patchmgr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing (from --libtorch) does not exist"), std::string::npos) << e.what();
  }
  fs::create_directories(d.path() / "empty");
  try {
    patchmgr::inspect_libtorch(d.path() / "empty", "$STEMKIT_LIBTORCH");
    FAIL();
  } catch (const patchmgr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds no TorchConfig.cmake"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), patchmgr::ExitCode::usage);
  }
  write(d.path() / "nolibs/share/cmake/Torch/TorchConfig.cmake", "");
  try {
    patchmgr::inspect_libtorch(d.path() / "nolibs", "--libtorch");
    FAIL();
  } catch (const patchmgr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("but no libtorch libraries beside it"), std::string::npos) << e.what();
  }
}

TEST(Libtorch, CandidatesInOrderAndByFlavor) {
  TempDir d;
  EnvGuard env;
  env.unset("LIBTORCH");
  fs::path cpu = fake_libtorch(d.path() / "cpu", "2.5.1", {"libtorch.so", "libtorch_cpu.so"});
  fs::path cuda = fake_libtorch(d.path() / "cuda", "2.5.1", {"libtorch.so", "libtorch_cpu.so", "libtorch_cuda.so"});
  fs::path system = d.path() / "system";
  write(system / "cmake/Torch/TorchConfig.cmake", "");
  write(system / "libtorch.so", "");

  patchmgr::LibtorchQuery q;
  q.system_prefixes = {system};
  // The environment variable comes first.
  env.set("STEMKIT_LIBTORCH", cpu.string());
  q.python = fake_python(d.path(), cuda.string() + "/share/cmake").string();
  auto t = patchmgr::find_libtorch(q);
  EXPECT_EQ(t.torch_dir, cpu / "share/cmake/Torch");
  EXPECT_EQ(t.source, "$STEMKIT_LIBTORCH");
  // Asking for CUDA passes over it to Python's torch.
  q.flavor = "cuda";
  t = patchmgr::find_libtorch(q);
  EXPECT_EQ(t.torch_dir, cuda / "share/cmake/Torch");
  EXPECT_EQ(t.source, q.python + "'s torch");
  // No variable and a Python without torch: the system's.
  env.unset("STEMKIT_LIBTORCH");
  q.flavor = "";
  q.python = fake_python(d.path() / "notorch", "").string();
  t = patchmgr::find_libtorch(q);
  EXPECT_EQ(t.torch_dir, system / "cmake/Torch");
  // Nothing of the asked flavor: every candidate is listed with the reason, and the fix.
  q.flavor = "rocm";
  try {
    patchmgr::find_libtorch(q);
    FAIL();
  } catch (const patchmgr::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("found no rocm libtorch; tried:"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot import torch (ModuleNotFoundError: No module named 'torch')"), std::string::npos) << m;
    EXPECT_NE(m.find("a cpu build, not rocm"), std::string::npos) << m;
    EXPECT_NE(m.find("fix: pass --libtorch PREFIX"), std::string::npos) << m;
  }
  // An explicit --libtorch of the wrong flavor is an error, not a search.
  q.prefix = cpu.string();
  q.flavor = "cuda";
  try {
    patchmgr::find_libtorch(q);
    FAIL();
  } catch (const patchmgr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a cpu build, but --flavor cuda was asked"), std::string::npos) << e.what();
  }
}

}  // namespace
