// patchmgr: the command line. Parsing and dispatch only: each command is one
// function below that turns its options into calls of the library
// (patchmgr/checkout, build, bench, verify, pipeline, report), and kCommands
// lists them all. The help text is made from that table.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patchmgr/bench/run.h"
#include "patchmgr/build/runtime_build.h"
#include "patchmgr/build/steps.h"
#include "patchmgr/checkout/apply.h"
#include "patchmgr/checkout/check.h"
#include "patchmgr/checkout/context.h"
#include "patchmgr/checkout/export.h"
#include "patchmgr/checkout/rebase.h"
#include "patchmgr/checkout/revert.h"
#include "patchmgr/checkout/series_files.h"
#include "patchmgr/checkout/status.h"
#include "patchmgr/checkout/sync.h"
#include "patchmgr/cli/completions_cli11.h"
#include "patchmgr/git/git.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/pipeline/pipeline.h"
#include "patchmgr/report/fingerprint.h"
#include "patchmgr/report/generated_files.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/fs.h"
#include "patchmgr/verify/verify.h"

namespace fs = std::filesystem;
using patchmgr::Context;
using patchmgr::Error;
using patchmgr::ExitCode;

namespace {

// Everything the command line sets. One struct, because CLI11 binds each
// option to a variable before parsing, and some are shared between commands
// (the components, --build-dir, the runtime build's options).
struct Args {
  std::string root;
  std::vector<std::string> overrides;  // --upstream NAME=URL
  std::vector<std::string> components;
  const char* argv0 = "";

  patchmgr::SyncOptions sync;
  patchmgr::ApplyOptions apply;
  patchmgr::RevertOptions revert;
  bool status_json = false;
  patchmgr::RebaseOptions rebase;
  patchmgr::CheckOptions check;
  std::string check_format = "text", check_output, check_fail_on = "conflict";
  patchmgr::DocsOptions docs;
  std::string header_output;
  patchmgr::BuildStepsOptions build;
  std::string log_dir;
  patchmgr::RuntimeBuildOptions runtime;
  std::string build_dir;
  patchmgr::VerifyOptions verify;
  patchmgr::PipelineOptions pipeline;
  std::string pipeline_junit;
  patchmgr::bench::BenchOptions bench;
  double bench_seconds = 0;
  int bench_repeats = -1;  // -1: not given
};

// --root, else $PATCHMGR_ROOT, else the nearest directory above the current
// one that has a manifests/ directory.
fs::path find_root(const std::string& option) {
  if (!option.empty()) return fs::absolute(option);
  if (const char* env = std::getenv("PATCHMGR_ROOT"); env && *env) return fs::absolute(env);
  for (fs::path dir = fs::current_path();; dir = dir.parent_path()) {
    if (fs::is_directory(dir / "manifests")) return dir;
    if (dir == dir.root_path()) break;
  }
  throw Error(
      ExitCode::usage,
      "no manifests/ directory here or in any parent directory; run patchmgr inside the project or pass --root DIR");
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

void print_error(const Error& e) { std::cerr << "patchmgr: " << e.what() << "\n"; }

// The manifests a per-component command works on: the named ones, else all.
// Empty, after saying so, when manifests/ has none.
std::vector<patchmgr::Manifest> chosen_components(const Context& ctx, const Args& a) {
  auto manifests = load(ctx.root, a.components);
  if (manifests.empty()) {
    std::cerr << fmt::format(
        "patchmgr: no components: {} has no *.yaml manifests (docs/manifest.md tells how to write one)\n",
        (ctx.root / "manifests").string());
    return manifests;
  }
  for (const auto& [name, url] : ctx.url_overrides)
    if (std::none_of(manifests.begin(), manifests.end(), [&](const auto& m) { return m.name == name; }) &&
        a.components.empty())
      throw Error(ExitCode::usage, fmt::format("--upstream {}=...: no manifest named {}", name, name));
  return manifests;
}

// Runs `one` on each manifest on its own: one component's failure does not
// stop the others, and the exit code is the most severe.
int each_component(const std::vector<patchmgr::Manifest>& manifests,
                   const std::function<void(const patchmgr::Manifest&)>& one) {
  ExitCode code = ExitCode::ok;
  for (const auto& m : manifests) {
    try {
      one(m);
    } catch (const Error& e) {
      print_error(e);
      code = patchmgr::worst(code, e.code());
    }
  }
  return int(code);
}

// Options more than one command takes.
void components_option(CLI::App& cmd, Args& a) {
  cmd.add_option("component", a.components, "Components to work on (default: every manifest)");
}

void runtime_options(CLI::App& cmd, Args& a) {
  if (const char* py = std::getenv("STEMKIT_PYTHON"); py && *py) a.runtime.python = py;
  cmd.add_option("--flavor", a.runtime.flavor,
                 "cpu, cuda or rocm: take a libtorch of that flavor (default: the first found); default build dir "
                 "build-<flavor>")
      ->check(CLI::IsMember({"cpu", "cuda", "rocm"}));
  cmd.add_option("--libtorch", a.runtime.libtorch,
                 "The libtorch to build against: an unzipped libtorch, a CMake prefix or a Torch_DIR (default: "
                 "$STEMKIT_LIBTORCH, $LIBTORCH, python3's torch, Debian's)")
      ->type_name("PREFIX");
  cmd.add_option("--build-dir", a.build_dir, "CMake build directory (default build/, or build-<flavor> with --flavor)")
      ->type_name("DIR");
  cmd.add_flag("--allow-mismatch", a.runtime.allow_mismatch,
               "Build even when the checkouts are not the manifests' patch set (--version says so)");
  cmd.add_option("-j,--jobs", a.runtime.jobs, "Parallel compile jobs (default: the number of CPUs)");
}

// sync, apply, revert, export, rebase, build: they change checkouts, each component on its own.

void sync_options(CLI::App& cmd, Args& a) {
  cmd.add_flag("--fetch", a.sync.fetch, "Fetch even when the pinned commit is already in the clone");
  components_option(cmd, a);
}

int cmd_sync(Args& a, const Context& ctx) {
  return each_component(chosen_components(ctx, a), [&](const auto& m) { patchmgr::sync(ctx, m, a.sync); });
}

void apply_options(CLI::App& cmd, Args& a) {
  cmd.add_option("--with", a.apply.with, "Also apply this patch that the manifest leaves disabled (repeatable)")
      ->type_name("ID")
      ->allow_extra_args(false);  // one id per --with, so `apply --with x demucs` keeps demucs a component
  components_option(cmd, a);
}

int cmd_apply(Args& a, const Context& ctx) {
  return each_component(chosen_components(ctx, a), [&](const auto& m) { patchmgr::apply(ctx, m, a.apply); });
}

void revert_options(CLI::App& cmd, Args& a) {
  cmd.add_flag(
      "--discard", a.revert.discard,
      "Set local edits and unrecorded commits aside (git stash, refs/patchmgr/discarded/) instead of refusing");
  components_option(cmd, a);
}

int cmd_revert(Args& a, const Context& ctx) {
  return each_component(chosen_components(ctx, a), [&](const auto& m) { patchmgr::revert(ctx, m, a.revert); });
}

void status_options(CLI::App& cmd, Args& a) {
  cmd.add_flag("--json", a.status_json, "Print JSON instead of text");
  components_option(cmd, a);
}

int cmd_status(Args& a, const Context& ctx) {
  auto manifests = chosen_components(ctx, a);
  if (manifests.empty()) return 0;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& m : manifests) {
    auto in = patchmgr::inspect_checkout(m);
    if (a.status_json)
      all.push_back(patchmgr::status_json(ctx, m, in));
    else
      patchmgr::print_status(ctx, m, in);
  }
  if (a.status_json) std::cout << nlohmann::json{{"components", all}}.dump(2) << "\n";
  return 0;
}

int cmd_export(Args& a, const Context& ctx) {
  return each_component(chosen_components(ctx, a), [&](const auto& m) { patchmgr::export_series(ctx, m); });
}

void rebase_options(CLI::App& cmd, Args& a) {
  cmd.add_option("--onto", a.rebase.onto, "latest (the tip of upstream.track) or a full commit SHA");
  cmd.add_flag("--continue", a.rebase.resume,
               "Go on after resolving the conflict a rebase stopped at (staged or committed)");
  cmd.add_flag("--abort", a.rebase.abort,
               "Put the checkout back where the stopped rebase started; the manifest and patch files were not changed");
  components_option(cmd, a);
}

int cmd_rebase(Args& a, const Context& ctx) {
  return each_component(chosen_components(ctx, a), [&](const auto& m) { patchmgr::rebase(ctx, m, a.rebase); });
}

void check_options(CLI::App& cmd, Args& a) {
  cmd.add_option("--against", a.check.against, "pin (default), latest (fetches upstream.track), or a full commit SHA");
  cmd.add_option("--format", a.check_format, "text (default), json or junit")
      ->check(CLI::IsMember({"text", "json", "junit"}));
  cmd.add_option("--output", a.check_output, "Write the report to FILE (atomically) and print the text summary");
  cmd.add_option("--fail-on", a.check_fail_on,
                 "Exit 1 when a patch's class is this or worse: offset, fuzz, 3-way, upstream or conflict (default)")
      ->check(CLI::IsMember({"offset", "fuzz", "3-way", "upstream", "conflict"}));
  cmd.add_flag("--bisect", a.check.bisect,
               "For each patch worse than at the pin, name the upstream commit that changed its class");
  components_option(cmd, a);
}

int cmd_check(Args& a, const Context& ctx) {
  // A manifest that does not load is a failing report, not a crash: CI dashboards must show it.
  a.check.fail_on = *patchmgr::parse_fail_on(a.check_fail_on);
  auto loaded = load_result(ctx.root, a.components);
  std::vector<patchmgr::CheckReport> reports;
  for (const auto& m : loaded.manifests) reports.push_back(patchmgr::check(ctx, m, a.check));
  std::map<std::string, std::vector<patchmgr::Diagnostic>> broken;
  for (const auto& d : loaded.diagnostics)
    broken[d.file.string().find("/manifests/") != std::string::npos ? d.file.stem().string()
                                                                    : d.file.parent_path().filename().string()]
        .push_back(d);
  for (const auto& [name, diags] : broken)
    reports.push_back(patchmgr::manifest_failure(name, a.check.against, diagnostics_text(ctx.root, diags)));
  std::string report = a.check_format == "json"    ? patchmgr::check_json(reports)
                       : a.check_format == "junit" ? patchmgr::check_junit(reports)
                                                   : patchmgr::check_text(reports);
  if (!a.check_output.empty()) {
    patchmgr::write_file_atomic(fs::absolute(a.check_output), report);
    std::cout << patchmgr::check_text(reports);
  } else {
    std::cout << report;
  }
  if (!loaded.diagnostics.empty()) return int(ExitCode::usage);
  bool ok = std::all_of(reports.begin(), reports.end(), [](const auto& r) { return r.ok(); });
  return int(ok ? ExitCode::ok : ExitCode::failed);
}

void docs_options(CLI::App& cmd, Args& a) {
  cmd.add_flag("--check", a.docs.check, "Do not write; exit 1 when PATCHES.md is not what the manifests give");
  cmd.add_option("--output", a.docs.output, "Where to write, relative to the project root (default PATCHES.md)");
}

int cmd_docs(Args& a, const Context& ctx) {
  patchmgr::write_patches_md(ctx, load(ctx.root, {}), a.docs);
  return 0;
}

void fingerprint_options(CLI::App& cmd, Args& a) {
  cmd.add_option("--header", a.header_output,
                 "Write it as a C++ header to FILE instead (rewritten only when it changes)");
}

int cmd_fingerprint(Args& a, const Context& ctx) {
  auto fp = patchmgr::fingerprint(load(ctx.root, {}));
  if (a.header_output.empty())
    std::cout << fmt::format("patch set {} ({})\n{}", fp.id, fp.summary, fp.text);
  else
    patchmgr::write_fingerprint_header(fp, fs::absolute(a.header_output));
  return 0;
}

void build_options(CLI::App& cmd, Args& a) {
  cmd.add_flag("--allow-mismatch", a.build.allow_mismatch,
               "Run the steps even when the checkout is not the manifest's patch set");
  cmd.add_option("--log-dir", a.log_dir,
                 "Where the step logs go (default build/logs), one file per step: <component>/NN-<step>.log")
      ->type_name("DIR");
  components_option(cmd, a);
}

int cmd_build(Args& a, const Context& ctx) {
  auto manifests = chosen_components(ctx, a);
  if (!a.log_dir.empty()) a.build.log_dir = fs::absolute(a.log_dir);
  return each_component(manifests, [&](const auto& m) { patchmgr::run_build_steps(ctx, m, a.build); });
}

void build_runtime_options(CLI::App& cmd, Args& a) {
  runtime_options(cmd, a);
  cmd.add_option("--target", a.runtime.targets, "Build only these CMake targets (repeatable; default: all)")
      ->allow_extra_args(false);
}

int cmd_build_runtime(Args& a, const Context& ctx) {
  if (!a.build_dir.empty()) a.runtime.build_dir = fs::absolute(a.build_dir);
  patchmgr::build_runtime(ctx, load(ctx.root, {}), a.runtime);
  return 0;
}

void verify_options(CLI::App& cmd, Args& a) {
  cmd.add_flag("--regenerate", a.verify.regenerate,
               "Remake the reference data first with the component's verify.regenerate command (needs the patched "
               "checkout and its Python)");
  cmd.add_option("--build-dir", a.build_dir, "The runtime build whose tests run (default build/)")->type_name("DIR");
  cmd.add_option("--timeout", a.verify.timeout, "Seconds allowed for one component's tests (default 1800)");
  components_option(cmd, a);
}

int cmd_verify(Args& a, const Context& ctx) {
  auto all = load(ctx.root, {});
  auto chosen = load(ctx.root, a.components);
  if (!a.build_dir.empty()) a.verify.build_dir = fs::absolute(a.build_dir);
  ExitCode code = ExitCode::ok;
  for (const auto& m : chosen) {
    auto r = patchmgr::verify(ctx, all, m, a.verify);
    std::cout << patchmgr::verify_text(r);
    if (!r.ok()) code = patchmgr::worst(code, ExitCode::failed);
  }
  return int(code);
}

void pipeline_options(CLI::App& cmd, Args& a) {
  runtime_options(cmd, a);
  cmd.add_option("--against", a.pipeline.against,
                 "What the last stage checks the series against: latest (default), pin or a commit SHA");
  cmd.add_option("--junit", a.pipeline_junit, "Write a JUnit XML report of every stage to FILE")->type_name("FILE");
  cmd.add_flag("--regenerate", a.pipeline.verify.regenerate,
               "verify --regenerate: remake the reference data before the parity tests");
}

int cmd_pipeline(Args& a, const Context& ctx) {
  if (!a.build_dir.empty()) a.runtime.build_dir = fs::absolute(a.build_dir);
  auto all = load(ctx.root, {});
  a.pipeline.runtime = a.runtime;
  if (!a.pipeline_junit.empty()) a.pipeline.junit = fs::absolute(a.pipeline_junit);
  return int(patchmgr::run_pipeline(ctx, all, a.pipeline).code());
}

void bench_options(CLI::App& cmd, Args& a) {
  auto& o = a.bench;
  if (const char* py = std::getenv("STEMKIT_PYTHON"); py && *py) o.python = py;  // --python wins
  cmd.add_flag("--against-upstream", o.against_upstream,
               "Also run the component's upstream reference script, on the same track and weights, in the same run");
  cmd.add_option("--separate", o.separate,
                 "The separate binary (default: $STEMKIT_SEPARATE, else the build directory of this patchmgr, else the "
                 "newest build*/)")
      ->type_name("PATH");
  cmd.add_option("--model", o.model, "The model file or MSST config (default bench.model)")->type_name("PATH");
  cmd.add_option("--checkpoint", o.checkpoint, "The weights of an MSST config (default bench.checkpoint)")
      ->type_name("PATH");
  cmd.add_option("--track", o.track, "A WAV file to separate (default bench.track, else a synthetic track)")
      ->type_name("WAV");
  cmd.add_option("--seconds", a.bench_seconds, "Length of the synthetic track (default bench.seconds)");
  cmd.add_option("--repeats", a.bench_repeats,
                 "Timed runs per configuration, each side; the median is kept (default bench.repeats, 1)");
  cmd.add_option("--precisions", o.precisions, "Comma-separated, e.g. fp16,bf16 (default bench.precisions)");
  cmd.add_option("--batch-sizes", o.batch_sizes, "Comma-separated (default bench.batch_sizes)");
  cmd.add_option("--graphs", o.graphs, "on, off or on,off (default bench.graphs)");
  cmd.add_option("--python", o.python, "The Python for {python} (default $STEMKIT_PYTHON, else bench.python)");
  cmd.add_option("--var", o.vars, "Set a {placeholder} of the bench section (repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  cmd.add_option("--work", o.work, "Scratch directory for weights, track and raw outputs (default .bench/<component>)")
      ->type_name("DIR");
  cmd.add_option("--machine", o.machine,
                 "Name of the machine on the page and in the file name (default: the GPU's name)");
  cmd.add_option("--note", o.notes, "A note stored with the result and shown under its table (repeatable)")
      ->allow_extra_args(false);
  components_option(cmd, a);
}

int cmd_bench(Args& a, const Context& ctx) {
  auto all = load(ctx.root, {});
  auto fp = patchmgr::fingerprint(all);
  std::vector<patchmgr::Manifest> chosen;
  if (a.components.empty()) {
    for (const auto& m : all)
      if (m.bench.present) chosen.push_back(m);
    if (chosen.empty())
      throw Error(ExitCode::usage, "no manifest has a bench: section (docs/manifest.md, \"Benchmarks\")");
  } else {
    chosen = load(ctx.root, a.components);
  }
  if (a.bench_seconds > 0) a.bench.seconds = a.bench_seconds;
  if (a.bench_repeats != -1) a.bench.repeats = a.bench_repeats;
  std::error_code ec;
  a.bench.patchmgr_exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) a.bench.patchmgr_exe = fs::absolute(a.argv0);
  return each_component(chosen, [&](const auto& m) { patchmgr::bench::run_bench(ctx, m, fp, a.bench); });
}

int cmd_lint(Args& a, const Context& ctx) {
  auto manifests = chosen_components(ctx, a);
  if (manifests.empty()) return 0;
  // Placeholders export left: the manifests load, but a person must write them.
  if (auto again = load_result(ctx.root, a.components); !again.unfinished.empty()) {
    std::cerr << diagnostics_text(ctx.root, again.unfinished)
              << fmt::format("{} placeholder{} to write in the manifests\n", again.unfinished.size(),
                             again.unfinished.size() == 1 ? "" : "s");
    return int(ExitCode::usage);
  }
  for (const auto& m : manifests)
    std::cout << fmt::format("{}: ok ({} patches, pin {})\n", m.name, m.patches.size(), m.commit.substr(0, 12));
  return 0;
}

struct Command {
  const char* name;  // "build runtime": the subcommand runtime of build
  int (*run)(Args&, const Context&);
  const char* help;
  void (*options)(CLI::App&, Args&);
};

// Every command, in the order `patchmgr --help` lists them.
const Command kCommands[] = {
    {"sync", cmd_sync, "Clone or fetch each upstream and check out its pinned commit", sync_options},
    {"apply", cmd_apply, "Apply the enabled patches on top of the pin, one commit each, all or nothing", apply_options},
    {"revert", cmd_revert, "Return each checkout to the pristine pin; refuses to lose work", revert_options},
    {"status", cmd_status, "Show each checkout's state and each patch's state", status_options},
    {"export", cmd_export, "Write the patch commits in the checkout back to patches/ and update their sha256",
     components_option},
    {"rebase", cmd_rebase,
     "Carry the series onto a new upstream commit (three-way merge), move the pin, rewrite the patch files",
     rebase_options},
    {"check", cmd_check,
     "Apply the series in memory on the pin, upstream's latest commit or any commit, and report per patch",
     check_options},
    {"docs", cmd_docs, "Render PATCHES.md from the manifests", docs_options},
    {"fingerprint", cmd_fingerprint, "Print the patch-set fingerprint (pins and patch hashes of every manifest)",
     fingerprint_options},
    {"build", cmd_build, "Run each component's build steps in its checkout; `build runtime` builds the C++ runtime",
     build_options},
    {"build runtime", cmd_build_runtime,
     "Configure (once) and build runtime/ and separate against a libtorch, stamped with the checkouts' patch set",
     build_runtime_options},
    {"verify", cmd_verify,
     "Run the runtime's parity tests against reference data made from the current patch set; stale data is reported as "
     "stale",
     verify_options},
    {"pipeline", cmd_pipeline,
     "sync, apply, build, build runtime, verify and check --against latest, with one JUnit report", pipeline_options},
    {"bench", cmd_bench,
     "Run separate's benchmark (and the upstream reference) and store a dated result under docs/benchmarks/",
     bench_options},
    {"lint", cmd_lint, "Validate the manifests and patch files, and print every problem", components_option},
};

}  // namespace

int main(int argc, char** argv) {
  patchmgr::git::Library libgit2;
  Args args;
  args.argv0 = argv[0];
  CLI::App app{"patchmgr: keeps a series of patches on pinned upstream checkouts"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("patchmgr ") + PATCHMGR_VERSION);
  app.add_option("--root", args.root,
                 "Project root holding manifests/ and patches/ (default: $PATCHMGR_ROOT, else the nearest parent with "
                 "manifests/)");
  app.add_option(
         "--upstream", args.overrides,
         "Fetch NAME from URL or a local path instead of upstream.url (repeatable; also PATCHMGR_UPSTREAM_<NAME>)")
      ->type_name("NAME=URL")
      ->allow_extra_args(false);  // one value per --upstream, so it never swallows the command

  std::vector<CLI::App*> subcommands;
  for (const Command& c : kCommands) {
    std::string name = c.name;
    CLI::App* parent = &app;
    if (auto space = name.find(' '); space != std::string::npos) {
      parent = app.get_subcommand(name.substr(0, space));
      name = name.substr(space + 1);
    }
    CLI::App* cmd = parent->add_subcommand(name, c.help);
    c.options(*cmd, args);
    subcommands.push_back(cmd);
  }
  // Component arguments complete to the manifests of the project around the
  // current directory, as find_root looks for it.
  stemkit::cli::add_completions_option(app, "patchmgr", [](stemkit::cli::CompletionCommand& program) {
    std::function<void(stemkit::cli::CompletionCommand&)> set = [&](stemkit::cli::CompletionCommand& c) {
      if (c.argument_name == "component") {
        c.bash_arguments =
            "local d=$PWD; while [[ -n $d && ! -d $d/manifests ]]; do d=${d%/*}; done; "
            "COMPREPLY=($(compgen -W \"$(cd \"${d:-.}/manifests\" 2>/dev/null && ls *.yaml 2>/dev/null | sed "
            "'s/\\.yaml$//')\" -- \"$cur\"))";
        c.zsh_arguments =
            "local d=$PWD; while test -n \"$d\" -a ! -d \"$d/manifests\"; do d=${d%/*}; done; "
            "local -a comps; comps=(${d:-.}/manifests/*.yaml(N)); comps=(${${comps##*/}%.yaml}); "
            "compadd -a comps";
      }
      for (auto& sub : c.subcommands) set(sub);
    };
    set(program);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : int(ExitCode::usage);
  }

  try {
    Context ctx;
    ctx.root = find_root(args.root);
    for (const auto& note : patchmgr::recover_series_writes(ctx.root)) std::cerr << note << "\n";
    for (const auto& o : args.overrides) {
      auto eq = o.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == o.size())
        throw Error(ExitCode::usage,
                    fmt::format("--upstream {}: expected NAME=URL, like --upstream demucs=/srv/mirrors/demucs.git", o));
      ctx.url_overrides[o.substr(0, eq)] = o.substr(eq + 1);
    }
    // The last parsed entry: `build runtime` parses build too, and comes after it.
    const Command* chosen = nullptr;
    for (size_t i = 0; i < subcommands.size(); ++i)
      if (subcommands[i]->parsed()) chosen = &kCommands[i];
    return chosen->run(args, ctx);
  } catch (const Error& e) {
    print_error(e);
    return int(e.code());
  } catch (const std::exception& e) {
    std::cerr << "patchmgr: internal error: " << e.what() << "\n";
    return int(ExitCode::failed);
  }
}
