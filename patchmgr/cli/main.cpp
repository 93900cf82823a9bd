// patchmgr: the command line. Parsing and dispatch only; every behaviour lives
// in the library (patchmgr/checkout, patchmgr/manifest).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/build/runtime_build.h"
#include "patchmgr/build/steps.h"
#include "patchmgr/bench/run.h"
#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/check.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/checkout/export.h"
#include "patchmgr/checkout/rebase.h"
#include "patchmgr/checkout/series_files.h"
#include "patchmgr/checkout/revert.h"
#include "patchmgr/checkout/status.h"
#include "patchmgr/checkout/sync.h"
#include "patchmgr/git/git.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/pipeline/pipeline.h"
#include "patchmgr/report/fingerprint.h"
#include "patchmgr/report/generated_files.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/verify/verify.h"

namespace fs = std::filesystem;
using patchmgr::Error;
using patchmgr::ExitCode;

namespace {

// --root, else $PATCHMGR_ROOT, else the nearest directory above the current
// one that has a manifests/ directory.
fs::path find_root(const std::string& option) {
  if (!option.empty()) return fs::absolute(option);
  if (const char* env = std::getenv("PATCHMGR_ROOT"); env && *env) return fs::absolute(env);
  for (fs::path dir = fs::current_path(); ; dir = dir.parent_path()) {
    if (fs::is_directory(dir / "manifests")) return dir;
    if (dir == dir.root_path()) break;
  }
  throw Error(ExitCode::usage, "no manifests/ directory here or in any parent directory; run patchmgr inside the project or pass --root DIR");
}

patchmgr::LoadResult load_result(const fs::path& root, const std::vector<std::string>& components) {
  patchmgr::LoadResult result;
  if (components.empty()) {
    result = patchmgr::load_all_manifests(root);
  } else {
    for (const auto& name : components) {
      fs::path file = root / "manifests" / (name + ".yaml");
      if (!fs::exists(file)) {
        std::vector<std::string> known;
        for (const auto& e : fs::directory_iterator(root / "manifests"))
          if (e.path().extension() == ".yaml") known.push_back(e.path().stem().string());
        std::sort(known.begin(), known.end());
        throw Error(ExitCode::usage, fmt::format("unknown component \"{}\" (no {}); known: {}", name, file.string(),
                                                 known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
      }
      auto one = patchmgr::load_manifest(file, root);
      for (auto& m : one.manifests) result.manifests.push_back(std::move(m));
      for (auto& d : one.diagnostics) result.diagnostics.push_back(std::move(d));
      for (auto& d : one.unfinished) result.unfinished.push_back(std::move(d));
    }
  }
  return result;
}

std::string diagnostics_text(const fs::path& root, const std::vector<patchmgr::Diagnostic>& diagnostics) {
  std::string text;
  for (const auto& d : diagnostics) text += d.to_string(root) + "\n";
  return text;
}

std::vector<patchmgr::Manifest> load(const fs::path& root, const std::vector<std::string>& components) {
  patchmgr::LoadResult result = load_result(root, components);
  if (!result.diagnostics.empty()) {
    std::string text = diagnostics_text(root, result.diagnostics);
    text += fmt::format("{} problem{} in the manifests; nothing was done", result.diagnostics.size(),
                        result.diagnostics.size() == 1 ? "" : "s");
    throw Error(ExitCode::usage, text);
  }
  return std::move(result.manifests);
}

}  // namespace

int main(int argc, char** argv) {
  patchmgr::git::Library libgit2;
  CLI::App app{"patchmgr: keeps a series of patches on pinned upstream checkouts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("patchmgr ") + PATCHMGR_VERSION);
  std::string root_option;
  std::vector<std::string> overrides;
  app.add_option("--root", root_option, "Project root holding manifests/ and patches/ (default: $PATCHMGR_ROOT, else the nearest parent with manifests/)");
  app.add_option("--upstream", overrides, "Fetch NAME from URL or a local path instead of upstream.url (repeatable; also PATCHMGR_UPSTREAM_<NAME>)")
      ->type_name("NAME=URL")
      ->allow_extra_args(false);  // one value per --upstream, so it never swallows the command

  std::vector<std::string> components;
  auto add_components = [&](CLI::App* cmd) {
    cmd->add_option("component", components, "Components to work on (default: every manifest)");
  };

  patchmgr::SyncOptions sync_options;
  auto* sync = app.add_subcommand("sync", "Clone or fetch each upstream and check out its pinned commit");
  sync->add_flag("--fetch", sync_options.fetch, "Fetch even when the pinned commit is already in the clone");
  add_components(sync);

  patchmgr::ApplyOptions apply_options;
  auto* apply = app.add_subcommand("apply", "Apply the enabled patches on top of the pin, one commit each, all or nothing");
  apply->add_option("--with", apply_options.with, "Also apply this patch that the manifest leaves disabled (repeatable)")
      ->type_name("ID")
      ->allow_extra_args(false);  // one id per --with, so `apply --with x demucs` keeps demucs a component
  add_components(apply);

  patchmgr::RevertOptions revert_options;
  auto* revert = app.add_subcommand("revert", "Return each checkout to the pristine pin; refuses to lose work");
  revert->add_flag("--discard", revert_options.discard, "Set local edits and unrecorded commits aside (git stash, refs/patchmgr/discarded/) instead of refusing");
  add_components(revert);

  bool json = false;
  auto* status = app.add_subcommand("status", "Show each checkout's state and each patch's state");
  status->add_flag("--json", json, "Print JSON instead of text");
  add_components(status);

  auto* export_cmd = app.add_subcommand("export", "Write the patch commits in the checkout back to patches/ and update their sha256");
  add_components(export_cmd);

  patchmgr::RebaseOptions rebase_options;
  auto* rebase = app.add_subcommand("rebase", "Carry the series onto a new upstream commit (three-way merge), move the pin, rewrite the patch files");
  rebase->add_option("--onto", rebase_options.onto, "latest (the tip of upstream.track) or a full commit SHA");
  rebase->add_flag("--continue", rebase_options.resume, "Go on after resolving the conflict a rebase stopped at (staged or committed)");
  rebase->add_flag("--abort", rebase_options.abort, "Put the checkout back where the stopped rebase started; the manifest and patch files were not changed");
  add_components(rebase);

  patchmgr::CheckOptions check_options;
  std::string check_format = "text", check_output;
  auto* check = app.add_subcommand("check", "Apply the series in memory on the pin, upstream's latest commit or any commit, and report per patch");
  check->add_option("--against", check_options.against, "pin (default), latest (fetches upstream.track), or a full commit SHA");
  check->add_option("--format", check_format, "text (default), json or junit")->check(CLI::IsMember({"text", "json", "junit"}));
  check->add_option("--output", check_output, "Write the report to FILE (atomically) and print the text summary");
  std::string check_fail_on = "conflict";
  check->add_option("--fail-on", check_fail_on, "Exit 1 when a patch's class is this or worse: offset, fuzz, 3-way, upstream or conflict (default)")
      ->check(CLI::IsMember({"offset", "fuzz", "3-way", "upstream", "conflict"}));
  check->add_flag("--bisect", check_options.bisect, "For each patch worse than at the pin, name the upstream commit that changed its class");
  add_components(check);

  patchmgr::DocsOptions docs_options;
  auto* docs = app.add_subcommand("docs", "Render PATCHES.md from the manifests");
  docs->add_flag("--check", docs_options.check, "Do not write; exit 1 when PATCHES.md is not what the manifests give");
  docs->add_option("--output", docs_options.output, "Where to write, relative to the project root (default PATCHES.md)");

  std::string header_output;
  auto* fingerprint = app.add_subcommand("fingerprint", "Print the patch-set fingerprint (pins and patch hashes of every manifest)");
  fingerprint->add_option("--header", header_output, "Write it as a C++ header to FILE instead (rewritten only when it changes)");

  // build [component...]: the manifests' build steps; build runtime: the C++ runtime.
  patchmgr::BuildStepsOptions build_options;
  patchmgr::RuntimeBuildOptions runtime_options;
  if (const char* py = std::getenv("STEMKIT_PYTHON"); py && *py) runtime_options.python = py;
  std::string build_dir_option, log_dir_option;
  auto add_runtime_options = [&](CLI::App* cmd) {
    cmd->add_option("--flavor", runtime_options.flavor, "cpu, cuda or rocm: take a libtorch of that flavor (default: the first found); default build dir build-<flavor>")
        ->check(CLI::IsMember({"cpu", "cuda", "rocm"}));
    cmd->add_option("--libtorch", runtime_options.libtorch, "The libtorch to build against: an unzipped libtorch, a CMake prefix or a Torch_DIR (default: $STEMKIT_LIBTORCH, $LIBTORCH, python3's torch, Debian's)")
        ->type_name("PREFIX");
    cmd->add_option("--build-dir", build_dir_option, "CMake build directory (default build/, or build-<flavor> with --flavor)")->type_name("DIR");
    cmd->add_flag("--allow-mismatch", runtime_options.allow_mismatch, "Build even when the checkouts are not the manifests' patch set (--version says so)");
    cmd->add_option("-j,--jobs", runtime_options.jobs, "Parallel compile jobs (default: the number of CPUs)");
  };
  auto* build = app.add_subcommand("build", "Run each component's build steps in its checkout; `build runtime` builds the C++ runtime");
  build->add_flag("--allow-mismatch", build_options.allow_mismatch, "Run the steps even when the checkout is not the manifest's patch set");
  build->add_option("--log-dir", log_dir_option, "Where the step logs go (default build/logs), one file per step: <component>/NN-<step>.log")->type_name("DIR");
  add_components(build);
  auto* build_runtime = build->add_subcommand("runtime", "Configure (once) and build runtime/ and separate against a libtorch, stamped with the checkouts' patch set");
  add_runtime_options(build_runtime);
  build_runtime->add_option("--target", runtime_options.targets, "Build only these CMake targets (repeatable; default: all)")->allow_extra_args(false);

  patchmgr::VerifyOptions verify_options;
  auto* verify = app.add_subcommand("verify", "Run the runtime's parity tests against reference data made from the current patch set; stale data is reported as stale");
  verify->add_flag("--regenerate", verify_options.regenerate, "Remake the reference data first with the component's verify.regenerate command (needs the patched checkout and its Python)");
  verify->add_option("--build-dir", build_dir_option, "The runtime build whose tests run (default build/)")->type_name("DIR");
  verify->add_option("--timeout", verify_options.timeout, "Seconds allowed for one component's tests (default 1800)");
  add_components(verify);

  patchmgr::PipelineOptions pipeline_options;
  std::string pipeline_junit_option;
  auto* pipeline = app.add_subcommand("pipeline", "sync, apply, build, build runtime, verify and check --against latest, with one JUnit report");
  add_runtime_options(pipeline);
  pipeline->add_option("--against", pipeline_options.against, "What the last stage checks the series against: latest (default), pin or a commit SHA");
  pipeline->add_option("--junit", pipeline_junit_option, "Write a JUnit XML report of every stage to FILE")->type_name("FILE");
  pipeline->add_flag("--regenerate", pipeline_options.verify.regenerate, "verify --regenerate: remake the reference data before the parity tests");

  patchmgr::bench::BenchOptions bench_options;
  if (const char* py = std::getenv("STEMKIT_PYTHON"); py && *py) bench_options.python = py;  // --python wins
  double bench_seconds = 0;
  int bench_repeats = -1;  // -1: not given
  auto* bench = app.add_subcommand("bench", "Run separate's benchmark (and the upstream reference) and store a dated result under docs/benchmarks/");
  bench->add_flag("--against-upstream", bench_options.against_upstream, "Also run the component's upstream reference script, on the same track and weights, in the same run");
  bench->add_option("--separate", bench_options.separate, "The separate binary (default: $STEMKIT_SEPARATE, else the build directory of this patchmgr, else the newest build*/)")->type_name("PATH");
  bench->add_option("--model", bench_options.model, "The model file or MSST config (default bench.model)")->type_name("PATH");
  bench->add_option("--checkpoint", bench_options.checkpoint, "The weights of an MSST config (default bench.checkpoint)")->type_name("PATH");
  bench->add_option("--track", bench_options.track, "A WAV file to separate (default bench.track, else a synthetic track)")->type_name("WAV");
  bench->add_option("--seconds", bench_seconds, "Length of the synthetic track (default bench.seconds)");
  bench->add_option("--repeats", bench_repeats, "Timed runs per configuration, each side; the median is kept (default bench.repeats, 1)");
  bench->add_option("--precisions", bench_options.precisions, "Comma-separated, e.g. fp16,bf16 (default bench.precisions)");
  bench->add_option("--batch-sizes", bench_options.batch_sizes, "Comma-separated (default bench.batch_sizes)");
  bench->add_option("--graphs", bench_options.graphs, "on, off or on,off (default bench.graphs)");
  bench->add_option("--python", bench_options.python, "The Python for {python} (default $STEMKIT_PYTHON, else bench.python)");
  bench->add_option("--var", bench_options.vars, "Set a {placeholder} of the bench section (repeatable)")->type_name("NAME=VALUE")->allow_extra_args(false);
  bench->add_option("--work", bench_options.work, "Scratch directory for weights, track and raw outputs (default .bench/<component>)")->type_name("DIR");
  bench->add_option("--machine", bench_options.machine, "Name of the machine on the page and in the file name (default: the GPU's name)");
  bench->add_option("--note", bench_options.notes, "A note stored with the result and shown under its table (repeatable)")->allow_extra_args(false);
  add_components(bench);

  auto* lint = app.add_subcommand("lint", "Validate the manifests and patch files, and print every problem");
  add_components(lint);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : int(ExitCode::usage);
  }

  try {
    patchmgr::Context ctx;
    ctx.root = find_root(root_option);
    for (const auto& note : patchmgr::recover_series_writes(ctx.root)) std::cerr << note << "\n";
    for (const auto& o : overrides) {
      auto eq = o.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == o.size())
        throw Error(ExitCode::usage, fmt::format("--upstream {}: expected NAME=URL, like --upstream demucs=/srv/mirrors/demucs.git", o));
      ctx.url_overrides[o.substr(0, eq)] = o.substr(eq + 1);
    }
    if (*check) {
      // A manifest that does not load is a failing report, not a crash: CI dashboards must show it.
      check_options.fail_on = *patchmgr::parse_fail_on(check_fail_on);
      auto loaded = load_result(ctx.root, components);
      std::vector<patchmgr::CheckReport> reports;
      for (const auto& m : loaded.manifests) reports.push_back(patchmgr::check(ctx, m, check_options));
      std::map<std::string, std::vector<patchmgr::Diagnostic>> broken;
      for (const auto& d : loaded.diagnostics) broken[d.file.string().find("/manifests/") != std::string::npos ? d.file.stem().string() : d.file.parent_path().filename().string()].push_back(d);
      for (const auto& [name, diags] : broken)
        reports.push_back(patchmgr::manifest_failure(name, check_options.against, diagnostics_text(ctx.root, diags)));
      std::string report = check_format == "json" ? patchmgr::check_json(reports)
                           : check_format == "junit" ? patchmgr::check_junit(reports)
                                                     : patchmgr::check_text(reports);
      if (!check_output.empty()) {
        patchmgr::write_file_atomic(fs::absolute(check_output), report);
        std::cout << patchmgr::check_text(reports);
      } else {
        std::cout << report;
      }
      if (!loaded.diagnostics.empty()) return int(ExitCode::usage);
      bool ok = std::all_of(reports.begin(), reports.end(), [](const auto& r) { return r.ok(); });
      return int(ok ? ExitCode::ok : ExitCode::failed);
    }
    if (*fingerprint) {
      auto fp = patchmgr::fingerprint(load(ctx.root, {}));
      if (header_output.empty())
        std::cout << fmt::format("patch set {} ({})\n{}", fp.id, fp.summary, fp.text);
      else
        patchmgr::write_fingerprint_header(fp, fs::absolute(header_output));
      return 0;
    }
    if (*bench) {
      auto all = load(ctx.root, {});
      auto fp = patchmgr::fingerprint(all);
      std::vector<patchmgr::Manifest> chosen;
      if (components.empty()) {
        for (const auto& m : all)
          if (m.bench.present) chosen.push_back(m);
        if (chosen.empty()) throw Error(ExitCode::usage, "no manifest has a bench: section (docs/manifest.md, \"Benchmarks\")");
      } else {
        chosen = load(ctx.root, components);
      }
      if (bench_seconds > 0) bench_options.seconds = bench_seconds;
      if (bench_repeats != -1) bench_options.repeats = bench_repeats;
      std::error_code ec;
      bench_options.patchmgr_exe = fs::read_symlink("/proc/self/exe", ec);
      if (ec) bench_options.patchmgr_exe = fs::absolute(argv[0]);
      ExitCode code = ExitCode::ok;
      for (const auto& m : chosen) {
        try {
          patchmgr::bench::run_bench(ctx, m, fp, bench_options);
        } catch (const Error& e) {
          std::cerr << "patchmgr: " << e.what() << "\n";
          code = patchmgr::worst(code, e.code());
        }
      }
      return int(code);
    }
    if (*docs) {
      patchmgr::write_patches_md(ctx, load(ctx.root, {}), docs_options);
      return 0;
    }
    if (*build_runtime || *pipeline) {
      if (!build_dir_option.empty()) runtime_options.build_dir = fs::absolute(build_dir_option);
      auto all = load(ctx.root, {});
      if (*build_runtime) {
        patchmgr::build_runtime(ctx, all, runtime_options);
        return 0;
      }
      pipeline_options.runtime = runtime_options;
      if (!pipeline_junit_option.empty()) pipeline_options.junit = fs::absolute(pipeline_junit_option);
      return int(patchmgr::run_pipeline(ctx, all, pipeline_options).code());
    }
    if (*verify) {
      auto all = load(ctx.root, {});
      auto chosen = load(ctx.root, components);
      if (!build_dir_option.empty()) verify_options.build_dir = fs::absolute(build_dir_option);
      ExitCode code = ExitCode::ok;
      for (const auto& m : chosen) {
        auto r = patchmgr::verify(ctx, all, m, verify_options);
        std::cout << patchmgr::verify_text(r);
        if (!r.ok()) code = patchmgr::worst(code, ExitCode::failed);
      }
      return int(code);
    }
    auto manifests = load(ctx.root, components);
    if (manifests.empty()) {
      std::cerr << fmt::format("patchmgr: no components: {} has no *.yaml manifests (docs/manifest.md tells how to write one)\n",
                               (ctx.root / "manifests").string());
      return 0;
    }
    for (const auto& [name, url] : ctx.url_overrides)
      if (std::none_of(manifests.begin(), manifests.end(), [&](const auto& m) { return m.name == name; }) && components.empty())
        throw Error(ExitCode::usage, fmt::format("--upstream {}=...: no manifest named {}", name, name));

    if (*lint) {
      // Placeholders export left: the manifests load, but a person must write them.
      if (auto again = load_result(ctx.root, components); !again.unfinished.empty()) {
        std::cerr << diagnostics_text(ctx.root, again.unfinished)
                  << fmt::format("{} placeholder{} to write in the manifests\n", again.unfinished.size(), again.unfinished.size() == 1 ? "" : "s");
        return int(ExitCode::usage);
      }
      for (const auto& m : manifests)
        std::cout << fmt::format("{}: ok ({} patches, pin {})\n", m.name, m.patches.size(), m.commit.substr(0, 12));
      return 0;
    }
    if (*status) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& m : manifests) {
        auto in = patchmgr::inspect_checkout(m);
        if (json) all.push_back(patchmgr::status_json(ctx, m, in));
        else patchmgr::print_status(ctx, m, in);
      }
      if (json) std::cout << nlohmann::json{{"components", all}}.dump(2) << "\n";
      return 0;
    }
    // Mutating commands: each component on its own; one failure does not stop the others.
    ExitCode code = ExitCode::ok;
    for (const auto& m : manifests) {
      try {
        if (*sync) patchmgr::sync(ctx, m, sync_options);
        else if (*apply) patchmgr::apply(ctx, m, apply_options);
        else if (*revert) patchmgr::revert(ctx, m, revert_options);
        else if (*export_cmd) patchmgr::export_series(ctx, m);
        else if (*rebase) patchmgr::rebase(ctx, m, rebase_options);
        else if (*build) {
          if (!log_dir_option.empty()) build_options.log_dir = fs::absolute(log_dir_option);
          patchmgr::run_build_steps(ctx, m, build_options);
        }
      } catch (const Error& e) {
        std::cerr << "patchmgr: " << e.what() << "\n";
        code = patchmgr::worst(code, e.code());
      }
    }
    return int(code);
  } catch (const Error& e) {
    std::cerr << "patchmgr: " << e.what() << "\n";
    return int(e.code());
  } catch (const std::exception& e) {
    std::cerr << "patchmgr: internal error: " << e.what() << "\n";
    return int(ExitCode::failed);
  }
}
