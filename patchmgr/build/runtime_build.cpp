#include "patchmgr/build/runtime_build.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/util/process.h"

namespace fs = std::filesystem;

namespace patchmgr {

fs::path default_build_dir(const fs::path& root, const std::string& flavor) {
  return flavor.empty() ? root / "build" : root / ("build-" + flavor);
}

bool has_runtime_sources(const fs::path& root) {
  std::error_code ec;
  return fs::exists(root / "CMakeLists.txt", ec) && fs::exists(root / "runtime" / "CMakeLists.txt", ec);
}

namespace {

// KEY:TYPE=VALUE lines of a CMakeCache.txt.
std::map<std::string, std::string> read_cache(const fs::path& file) {
  std::map<std::string, std::string> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '/') continue;
    auto colon = line.find(':'), eq = line.find('=');
    if (colon == std::string::npos || eq == std::string::npos || colon > eq) continue;
    out[line.substr(0, colon)] = line.substr(eq + 1);
  }
  return out;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream s(path ? path : "");
  std::string dir;
  while (std::getline(s, dir, ':'))
    if (!dir.empty() && access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  return false;
}

void run_cmake(const std::string& what, std::vector<std::string> argv, const fs::path& log, int timeout,
               const Context& ctx) {
  std::error_code ec;
  fs::remove(log, ec);
  {
    std::ofstream out(log);
    out << "#";
    for (const auto& a : argv) out << " " << a;
    out << "\n";
  }
  *ctx.out << fmt::format("runtime: {} (log {})\n", what, display_path(log, ctx.root));
  ctx.out->flush();
  Process p;
  p.argv = std::move(argv);
  p.log = log;
  p.timeout = timeout;
  ProcessResult r = run_process(p);
  if (!r.ok())
    throw Error(ExitCode::failed, fmt::format("runtime: {} failed: {} after {:.0f} s; log {}, last lines:\n{}", what,
                                              r.describe(), r.seconds, display_path(log, ctx.root), log_tail(log, 25)));
}

}  // namespace

RuntimeBuild build_runtime(const Context& ctx, const std::vector<Manifest>& manifests, const RuntimeBuildOptions& o) {
  std::ostream& out = *ctx.out;
  if (!has_runtime_sources(ctx.root))
    throw Error(ExitCode::usage,
                fmt::format("{} has no runtime to build (no CMakeLists.txt and runtime/CMakeLists.txt); build runtime "
                            "builds the stemkit tree that holds manifests/: run it there or pass --root",
                            ctx.root.string()));
  RuntimeBuild b;
  b.stamp = stamp_checkouts(manifests);
  if (!b.stamp.matches()) {
    std::string list;
    for (const auto& m : b.stamp.mismatches) list += "  " + m + "\n";
    if (!o.allow_mismatch)
      throw Error(ExitCode::refused,
                  fmt::format("runtime: not building: the checkouts are not the patch set {} of the manifests:\n{}"
                              "a runtime built now would claim a patch set its upstreams do not hold; bring the "
                              "checkouts in line (patchmgr sync && patchmgr apply), "
                              "or build anyway with --allow-mismatch (separate --version will say so)",
                              b.stamp.fingerprint.id, list));
    out << fmt::format("runtime: building with --allow-mismatch; the checkouts differ from patch set {}:\n{}",
                       b.stamp.fingerprint.id, list);
  }
  LibtorchQuery q;
  q.prefix = o.libtorch;
  q.flavor = o.flavor;
  q.python = o.python;
  b.torch = find_libtorch(q);
  out << fmt::format("runtime: {}\n", b.torch.describe());

  b.build_dir =
      fs::absolute(o.build_dir.empty() ? default_build_dir(ctx.root, o.flavor) : o.build_dir).lexically_normal();
  fs::path cache_file = b.build_dir / "CMakeCache.txt";
  std::string stamp_line = b.stamp.line(o.allow_mismatch);
  std::vector<std::string> defs = {"-DTorch_DIR=" + b.torch.torch_dir.string(), "-DSTEMKIT_BUILD_RUNTIME=ON",
                                   "-DSTEMKIT_CHECKOUTS=" + stamp_line};
  std::vector<std::string> configure = {"cmake", "-S", ctx.root.string(), "-B", b.build_dir.string()};
  std::error_code ec;
  if (fs::exists(cache_file, ec)) {
    auto cache = read_cache(cache_file);
    std::string home = cache["CMAKE_HOME_DIRECTORY"];
    if (!home.empty() && fs::weakly_canonical(home, ec) != fs::weakly_canonical(ctx.root, ec))
      throw Error(ExitCode::usage,
                  fmt::format("runtime: {} was configured for another source tree ({}); choose another --build-dir",
                              b.build_dir.string(), home));
    b.configured = cache["Torch_DIR"] != b.torch.torch_dir.string() || cache["STEMKIT_BUILD_RUNTIME"] != "ON" ||
                   cache["STEMKIT_CHECKOUTS"] != stamp_line;
    if (!b.configured)
      out << fmt::format("runtime: {} is configured for this libtorch and stamp; building incrementally\n",
                         display_path(b.build_dir, ctx.root));
  } else {
    b.configured = true;
    configure.push_back("-DCMAKE_BUILD_TYPE=RelWithDebInfo");
    if (on_path("ninja")) configure.insert(configure.begin() + 1, {"-G", "Ninja"});
  }
  fs::create_directories(b.build_dir);
  fs::path logs = b.build_dir / "logs";
  fs::create_directories(logs);
  if (b.configured) {
    configure.insert(configure.end(), defs.begin(), defs.end());
    run_cmake("cmake configure of " + display_path(b.build_dir, ctx.root), configure, logs / "configure.log", o.timeout,
              ctx);
  }
  if (!fs::exists(b.build_dir / "runtime" / "CMakeFiles" / "stemkit_runtime.dir", ec))
    throw Error(ExitCode::failed,
                fmt::format("runtime: cmake did not take the libtorch at {} (no stemkit_runtime target in {}); see {}",
                            b.torch.torch_dir.string(), display_path(b.build_dir, ctx.root),
                            display_path(logs / "configure.log", ctx.root)));
  int jobs = o.jobs > 0 ? o.jobs : int(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string> build = {"cmake", "--build", b.build_dir.string(), "--parallel", std::to_string(jobs)};
  for (const auto& t : o.targets) build.insert(build.end(), {"--target", t});
  run_cmake(fmt::format("cmake --build {} ({} jobs)", display_path(b.build_dir, ctx.root), jobs), build,
            logs / "build.log", o.timeout, ctx);

  nlohmann::json record = {{"patch_set", b.stamp.fingerprint.id},
                           {"summary", b.stamp.fingerprint.summary},
                           {"checkouts", stamp_line},
                           {"checkouts_match", b.stamp.matches()},
                           {"libtorch", b.torch.describe()},
                           {"torch_dir", b.torch.torch_dir.string()},
                           {"flavor", to_string(b.torch.flavor)},
                           {"torch_version", b.torch.version}};
  write_file_atomic(b.build_dir / "patchmgr-build.json", record.dump(2) + "\n");
  fs::path separate = b.build_dir / "runtime" / "separate" / "separate";
  if (fs::exists(separate, ec)) {
    fs::path vlog = logs / "separate-version.log";
    fs::remove(vlog, ec);
    Process p;
    p.argv = {separate.string(), "--version"};
    p.log = vlog;
    p.timeout = 60;
    ProcessResult r = run_process(p);
    out << fmt::format("runtime: built {}{}\n{}", display_path(separate, ctx.root),
                       r.ok() ? "; separate --version:" : ", but separate --version failed: " + r.describe(),
                       log_tail(vlog, 10, "  "));
  } else {
    out << fmt::format(
        "runtime: built in {}; separate was not built (it needs libsndfile and soxr: install libsndfile1-dev "
        "libsoxr-dev and run again)\n",
        display_path(b.build_dir, ctx.root));
  }
  return b;
}

RuntimeBuildRecord read_build_record(const fs::path& build_dir) {
  RuntimeBuildRecord r;
  std::error_code ec;
  fs::path file = build_dir / "patchmgr-build.json";
  if (fs::exists(file, ec)) {
    try {
      auto j = nlohmann::json::parse(read_file(file));
      r.patch_set = j.value("patch_set", "");
      r.checkouts = j.value("checkouts", "");
      r.libtorch = j.value("libtorch", "");
    } catch (const std::exception&) {
    }
  }
  return r;
}

}  // namespace patchmgr
