// patchmgr bench: the bench section of the manifest, result files (naming,
// atomic writes that never replace, validation), the PATCHES.md tables, and
// the command end to end with a fake `separate` and a fake upstream script
// (shell scripts that write the JSON the real ones write).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "fixture.h"
#include "patchmgr/bench/result.h"
#include "patchmgr/manifest/manifest.h"
#include "patchmgr/report/benchmarks_md.h"
#include "patchmgr/util/error.h"
#include "patchmgr/util/process.h"

using namespace testutil;
using nlohmann::json;
using patchmgr::git::to_hex;

namespace {

std::string today() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void write_script(const fs::path& file, const std::string& body) {
  write(file, "#!/bin/sh\n" + body);
  ::chmod(file.c_str(), 0755);
}

// The fake separate: writes what `separate --bench --json FILE` writes (rows
// for fp16 batch 1 and 8), and its arguments to ARGS_FILE.
std::string fake_separate(const fs::path& args_file, const std::string& patch_set, int exit_code = 0) {
  return fmt::format(R"SH(printf '%s\n' "$@" > '{0}'
json=
track=synthetic
prev=
for a in "$@"; do
  [ "$prev" = --json ] && json=$a
  case "$prev:$a" in --bench:*.wav) track=$a;; esac
  prev=$a
done
echo "precision batch graphs ..."
[ {2} -eq 0 ] || {{ echo "separate: boom" >&2; exit {2}; }}
cat > "$json" <<JSON
{{"track": "$track", "seconds": 180.0, "model": "full", "device": "cuda:0", "gpu": "Fake GPU (SM 9.0)",
 "version": "stemkit 0.1.0\nlibtorch 2.11.0 (cuda)\npatch set {1}: demo@abc+2\n",
 "rows": [
  {{"precision": "fp16", "batch_size": 1, "graphs": true, "seconds": 180.0, "wall_s": 0.65, "realtime": 277.1,
   "realtime_with_io": 140.6, "peak_allocated_bytes": 1160000000, "peak_reserved_bytes": 3200000000,
   "graphs_status": "replaying 1 captured graph(s)",
   "attention": "Fake GPU (SM 9.0), Half, keys < 512: efficient (short); Fake GPU (SM 9.0), Half, keys >= 512: cudnn (long)"}},
  {{"precision": "fp16", "batch_size": 8, "graphs": false, "seconds": 180.0, "wall_s": 0.47, "realtime": 381.7,
   "realtime_with_io": 166.8, "peak_allocated_bytes": 3280000000, "peak_reserved_bytes": 6000000000,
   "graphs_status": "off", "attention": ""}},
  {{"precision": "bf16", "batch_size": 64, "graphs": true, "error": "CUDA out of memory"}}
 ]}}
JSON
)SH",
                     args_file.string(), patch_set, exit_code);
}

// The fake upstream script: the JSON of tools/bench/upstream_demucs_bench.py;
// with --write-track it writes the track, as the real one does.
std::string fake_upstream(const fs::path& args_file) {
  return fmt::format(R"SH(printf '%s\n' "$@" > '{0}'
out=
track=
write=
prev=
for a in "$@"; do
  [ "$prev" = --out ] && out=$a
  [ "$prev" = --track ] && track=$a
  [ "$a" = --write-track ] && write=1
  prev=$a
done
[ -n "$write" ] && echo RIFF > "$track"
[ -f "$track" ] || {{ echo "no track $track" >&2; exit 3; }}
cat > "$out" <<JSON
{{"track": "$track", "seconds": 180.0, "shifts": 1, "overlap": 0.25, "torch": "2.11.0+cu130", "gpu": "Fake GPU",
 "rows": [
  {{"precision": "fp32", "batch_size": 1, "wall_s": 2.4, "realtime": 74.8, "peak_allocated_bytes": 1015354368, "peak_reserved_bytes": 1570766848}},
  {{"precision": "fp16", "batch_size": 1, "wall_s": 2.9, "realtime": 62.8, "peak_allocated_bytes": 1078233600, "peak_reserved_bytes": 1585446912}}
 ]}}
JSON
)SH",
                     args_file.string());
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    project.write_manifest({});
    fake = project.root() / "fake";
    write_script(fake / "nvidia-smi", "echo 'Fake GPU 9000, 999.12, 81559 MiB'\n");
    write_script(fake / "prepare.sh", "mkdir -p \"$(dirname \"$1\")\" && echo weights > \"$1\"\n");
    write_script(fake / "upstream.sh", fake_upstream(fake / "upstream.args"));
    set_separate(0);
    add_bench_section(R"Y(bench:
  model: "{work}/full.th"
  prepare: [sh, fake/prepare.sh, "{work}/full.th"]
  seconds: 180
  precisions: [fp16, bf16]
  batch_sizes: [1, 8, 64]
  graphs: [on, off]
  separate_args: [--device, "{device}"]
  upstream: [sh, fake/upstream.sh, --model, "{model}", --track, "{track}", --seconds, "{seconds}", --out, "{out}"]
  write_track: [--write-track]
  vars: {device: cuda}
)Y");
  }
  void set_separate(int exit_code) {
    CliRun fp = project.run({"fingerprint"});
    ASSERT_EQ(fp.code, 0) << fp.all();
    patch_set = fp.out.substr(10, 16);
    write_script(fake / "separate", fake_separate(fake / "separate.args", patch_set, exit_code));
  }
  void add_bench_section(const std::string& yaml) {
    std::string manifest = read(project.root() / "manifests/demo.yaml");
    write(project.root() / "manifests/demo.yaml", manifest + yaml);
  }
  CliRun run(std::vector<std::string> args) const {
    return project.run(args, {{"PATH", fake.string() + ":" + std::getenv("PATH")}});
  }
  CliRun bench(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"bench", "--separate", (fake / "separate").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  }
  fs::path results() const { return project.root() / "docs/benchmarks"; }
  std::vector<fs::path> result_files() const {
    std::vector<fs::path> out;
    if (fs::exists(results()))
      for (const auto& e : fs::directory_iterator(results())) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  Project project;
  fs::path fake;
  std::string patch_set;
};

TEST_F(BenchTest, AgainstUpstreamRunsBothOnOneTrackAndStoresADatedResult) {
  std::string date = today();
  CliRun r = bench({"--against-upstream", "--machine", "Fake Box 1"});
  ASSERT_EQ(r.code, 0) << r.all();
  std::string name = date + "-fake-box-1-demo.json";
  ASSERT_EQ(result_files(), std::vector<fs::path>{name}) << r.all();
  EXPECT_NE(r.out.find("demo: preparing the model: sh fake/prepare.sh "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo: wrote docs/benchmarks/" + name +
                       " (3 stemkit rows, 2 upstream rows); `patchmgr docs` renders it into PATCHES.md"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("precision batch graphs ..."), std::string::npos)
      << "separate's table reaches the user: " << r.out;

  // The upstream wrote the synthetic track, and separate read that same file.
  fs::path work = project.root() / ".bench/demo";
  fs::path track = work / "track-180s.wav";
  std::string up = read(fake / "upstream.args");
  EXPECT_NE(up.find("--track\n" + track.string() + "\n"), std::string::npos) << up;
  EXPECT_NE(up.find("--write-track\n"), std::string::npos) << up;
  std::string sep = read(fake / "separate.args");
  EXPECT_EQ(sep.rfind("--bench\n" + track.string() + "\n--model\n" + (work / "full.th").string() + "\n", 0), 0u) << sep;
  EXPECT_NE(sep.find("--bench-precisions\nfp16,bf16\n--bench-batch-sizes\n1,8,64\n--bench-graphs\non,off\n--"
                     "device\ncuda\n--json\n"),
            std::string::npos)
      << sep;
  EXPECT_EQ(sep.find("--bench-seconds"), std::string::npos) << sep;

  json j = json::parse(read(results() / name));
  EXPECT_EQ(j["stemkit_bench"], 1);
  EXPECT_EQ(j["component"], "demo");
  EXPECT_EQ(j["date"], date);
  EXPECT_EQ(j["machine"]["label"], "Fake Box 1");
  EXPECT_EQ(j["machine"]["gpu"], "Fake GPU 9000");
  EXPECT_EQ(j["machine"]["driver"], "999.12");
  EXPECT_EQ(j["machine"]["gpu_memory"], "81559 MiB");
  EXPECT_EQ(j["libtorch"], "2.11.0 (cuda)");
  EXPECT_EQ(j["fingerprint"]["id"], patch_set);
  EXPECT_EQ(j["runtime_patch_set"], patch_set);
  EXPECT_EQ(j["fingerprint"]["component"].get<std::string>().rfind("demo " + to_hex(project.pin()) + "\n", 0), 0u)
      << j.dump(1);
  EXPECT_EQ(j["track"]["seconds"], 180.0);
  EXPECT_EQ(j["track"]["synthetic"], true);
  ASSERT_EQ(j["commands"].size(), 2u);
  EXPECT_EQ(j["commands"][0].get<std::string>().rfind("sh fake/upstream.sh --model " + (work / "full.th").string(), 0),
            0u)
      << j["commands"];
  EXPECT_NE(j["commands"][1].get<std::string>().find("--bench-graphs on,off --device cuda --json "), std::string::npos)
      << j["commands"];
  EXPECT_EQ(j["runtime"]["rows"].size(), 3u);
  EXPECT_EQ(j["upstream"]["torch"], "2.11.0+cu130");
  EXPECT_FALSE(j.contains("notes")) << j.dump(1);
  for (const auto& e : fs::directory_iterator(work))  // raw outputs removed, the weights and the track kept
    EXPECT_TRUE(e.path().extension() != ".json") << e.path();

  // PATCHES.md: the users' table, newest result first.
  CliRun d = run({"docs"});
  ASSERT_EQ(d.code, 0) << d.all();
  std::string page = read(project.root() / "PATCHES.md");
  EXPECT_NE(page.find("### Benchmarks\n\nNewest result, [`" + name + "`](docs/benchmarks/" + name + "): " + date +
                      ", on Fake Box 1 (driver 999.12, 81559 MiB"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("; stemkit on libtorch 2.11.0 (cuda), upstream on PyTorch 2.11.0+cu130; a 180 s track "
                      "(synthetic), model `full`; patch set `" +
                      patch_set + "`, the demo patches of the manifest as they are now.\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("| Mode | Speed (x realtime) | Peak GPU memory | Notes |\n|---|---|---|---|\n"
                      "| stemkit fp16, batch 1, graphs on | 277.1x | 3.20 GB (1.16 allocated) | 140.6x with decoding "
                      "and encoding; attention efficient (keys < 512), cudnn (keys >= 512) |\n"
                      "| stemkit fp16, batch 8, graphs off | **381.7x** | 6.00 GB (3.28 allocated) | 166.8x with "
                      "decoding and encoding |\n"
                      "| stemkit bf16, batch 64, graphs on | failed |  | failed: CUDA out of memory |\n"
                      "| upstream fp32, batch 1 | **74.8x** | 1.57 GB (1.02 allocated) |  |\n"
                      "| upstream fp16 autocast, batch 1 | 62.8x | 1.59 GB (1.08 allocated) |  |\n\n"
                      "Fastest: stemkit fp16, batch 8, graphs off at 381.7x, 5.10 times upstream's fastest (fp32, "
                      "batch 1, 74.8x).\n"),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find("History"), std::string::npos) << page;
  EXPECT_EQ(run({"docs", "--check"}).code, 0);
}

TEST_F(BenchTest, ASecondRunTheSameDayGetsItsOwnFileAndTheFirstBecomesHistory) {
  ASSERT_EQ(bench({"--machine", "box"}).code, 0);
  auto first = result_files();
  ASSERT_EQ(first.size(), 1u);
  std::string first_content = read(results() / first[0]);
  CliRun r = bench({"--machine", "box", "--note", "second run"});
  ASSERT_EQ(r.code, 0) << r.all();
  auto files = result_files();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].string(), today() + "-box-demo-2.json");
  EXPECT_EQ(files[1].string(), today() + "-box-demo.json");
  EXPECT_EQ(read(results() / first[0]), first_content);  // never overwritten

  // Without --against-upstream: separate synthesises its own track; no upstream rows.
  std::string sep = read(fake / "separate.args");
  EXPECT_EQ(sep.rfind("--bench\n--model\n", 0), 0u) << sep;
  EXPECT_NE(sep.find("--bench-seconds\n180\n"), std::string::npos) << sep;
  EXPECT_FALSE(fs::exists(fake / "upstream.args"));

  ASSERT_EQ(run({"docs"}).code, 0);
  std::string page = read(project.root() / "PATCHES.md");
  EXPECT_NE(page.find("Newest result, [`" + today() + "-box-demo-2.json`]"), std::string::npos) << page;
  EXPECT_NE(
      page.find(
          "No upstream rows in this run (`patchmgr bench demo --against-upstream` adds them).\n\nNote: second run\n"),
      std::string::npos)
      << page;
  EXPECT_NE(page.find("History, newest first:\n\n- " + today() +
                      ", box: stemkit 381.7x (fp16, batch 8, graphs off); 180 s track; [`" + today() +
                      "-box-demo.json`](docs/benchmarks/" + today() + "-box-demo.json)\n"),
            std::string::npos)
      << page;
}

TEST_F(BenchTest, AResultOfAnotherPatchSetIsMarkedStale) {
  ASSERT_EQ(bench({"--machine", "box"}).code, 0);
  ASSERT_EQ(run({"docs"}).code, 0);
  EXPECT_EQ(read(project.root() / "PATCHES.md").find("Stale"), std::string::npos);
  // Another pin: the result no longer describes these patches.
  std::string manifest = read(project.root() / "manifests/demo.yaml");
  std::string pin = to_hex(project.pin());
  manifest.replace(manifest.find(pin), pin.size(), std::string(40, 'a'));
  write(project.root() / "manifests/demo.yaml", manifest);
  EXPECT_EQ(run({"docs", "--check"}).code, 1);
  ASSERT_EQ(run({"docs"}).code, 0);
  std::string page = read(project.root() / "PATCHES.md");
  EXPECT_NE(
      page.find(
          "**Stale**: the demo pin or patches have changed since; run `patchmgr bench demo --against-upstream` again."),
      std::string::npos)
      << page;
  // ... and in the history too, once a newer result exists.
  ASSERT_EQ(bench({"--machine", "box"}).code, 0);
  ASSERT_EQ(run({"docs"}).code, 0);
  page = read(project.root() / "PATCHES.md");
  EXPECT_EQ(page.find("**Stale**"), std::string::npos) << page;
  EXPECT_NE(page.find(today() + "-box-demo.json) (stale: other patches than now)\n"), std::string::npos) << page;
}

TEST_F(BenchTest, ASeparateBuiltForOtherPatchesIsRecordedAsSuch) {
  write_script(fake / "separate", fake_separate(fake / "separate.args", "0123456789abcdef"));
  CliRun r = bench({"--machine", "box"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(r.err.find("warning: separate was built for patch set 0123456789abcdef, the manifests give " + patch_set),
            std::string::npos)
      << r.err;
  json j = json::parse(read(results() / result_files()[0]));
  EXPECT_EQ(j["runtime_patch_set"], "0123456789abcdef");
  ASSERT_EQ(j["notes"].size(), 1u);
}

TEST_F(BenchTest, FailuresRecordNothing) {
  set_separate(1);
  CliRun r = bench({"--against-upstream"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("patchmgr: demo: stemkit failed (exit 1); its output is above; nothing was recorded"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(result_files().empty());

  set_separate(0);
  write_script(fake / "upstream.sh", "echo 'Traceback: no torch' >&2; exit 1\n");
  r = bench({"--against-upstream"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("patchmgr: demo: upstream failed (exit 1)"), std::string::npos) << r.err;
  EXPECT_TRUE(result_files().empty());

  r = bench({"--track", "missing.wav"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("the track missing.wav does not exist"), std::string::npos) << r.err;

  r = run({"bench", "--separate", (fake / "nothing").string()});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--separate " + (fake / "nothing").string() + ": no executable file there"), std::string::npos)
      << r.err;

  r = bench({"--model", "none.th"});
  EXPECT_EQ(r.code, 1) << r.all();
  EXPECT_NE(r.err.find("bench.prepare ran but none.th still does not exist"), std::string::npos) << r.err;
  EXPECT_TRUE(result_files().empty());
}

TEST_F(BenchTest, AGivenTrackIsUsedByBothSides) {
  write(project.root() / "song.wav", "RIFF");
  CliRun r = bench(
      {"--against-upstream", "--track", "song.wav", "--precisions", "fp32", "--var", "device=cpu", "--machine", "m"});
  ASSERT_EQ(r.code, 0) << r.all();
  std::string up = read(fake / "upstream.args");
  EXPECT_NE(up.find("--track\nsong.wav\n"), std::string::npos) << up;
  EXPECT_EQ(up.find("--write-track"), std::string::npos) << up;
  std::string sep = read(fake / "separate.args");
  EXPECT_EQ(sep.rfind("--bench\nsong.wav\n", 0), 0u) << sep;
  EXPECT_NE(sep.find("--bench-precisions\nfp32\n"), std::string::npos) << sep;
  EXPECT_NE(sep.find("--device\ncpu\n"), std::string::npos) << sep;
  json j = json::parse(read(results() / result_files()[0]));
  EXPECT_EQ(j["track"]["path"], "song.wav");
  EXPECT_EQ(j["track"]["synthetic"], false);
}

// A var may name the checkout (the manifests default {demucs} to it, so a new
// user measures what patchmgr applied); {python} follows $STEMKIT_PYTHON unless
// --python says otherwise; a var naming another var or a later placeholder is
// refused when the manifest is loaded.
TEST_F(BenchTest, VarsMayNameTheCheckoutAndPythonFollowsStemkitPython) {
  project.write_manifest({});
  add_bench_section(R"Y(bench:
  model: "{work}/full.th"
  prepare: [sh, fake/prepare.sh, "{work}/full.th"]
  upstream: [sh, fake/upstream.sh, --pkg, "{pkg}", --py, "{python}", --track, "{track}", --out, "{out}"]
  write_track: [--write-track]
  vars: {pkg: "{checkout}/src"}
)Y");
  std::map<std::string, std::string> env = {{"PATH", fake.string() + ":" + std::getenv("PATH")},
                                            {"STEMKIT_PYTHON", "/opt/venv/bin/python"}};
  CliRun r = project.run({"bench", "--separate", (fake / "separate").string(), "--against-upstream"}, env);
  ASSERT_EQ(r.code, 0) << r.all();
  std::string up = read(fake / "upstream.args");
  EXPECT_NE(up.find("--pkg\n" + (project.root() / "upstream/demo").string() + "/src\n"), std::string::npos) << up;
  EXPECT_NE(up.find("--py\n/opt/venv/bin/python\n"), std::string::npos) << up;
  r = project.run({"bench", "--separate", (fake / "separate").string(), "--against-upstream", "--python", "py3",
                   "--var", "pkg=/srv/pkg"},
                  env);
  ASSERT_EQ(r.code, 0) << r.all();
  up = read(fake / "upstream.args");
  EXPECT_NE(up.find("--pkg\n/srv/pkg\n--py\npy3\n"), std::string::npos) << up;

  project.write_manifest({});
  add_bench_section(R"Y(bench:
  model: "{work}/full.th"
  vars: {a: x, b: "{a}", c: "{track}"}
)Y");
  r = run({"lint"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("error: bench.vars.b: {a} cannot be used in a var; a var may use root, work, checkout, python, "
                       "patchmgr, component"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("error: bench.vars.c: {track} cannot be used in a var"), std::string::npos) << r.err;
}

// bench.repeats (or --repeats): both sides time each configuration that many
// times and keep the median; the result and PATCHES.md say so.
TEST_F(BenchTest, RepeatsReachBothSidesAndTheResult) {
  project.write_manifest({});
  add_bench_section(R"Y(bench:
  model: "{work}/full.th"
  prepare: [sh, fake/prepare.sh, "{work}/full.th"]
  repeats: 3
  upstream: [sh, fake/upstream.sh, --repeats, "{repeats}", --track, "{track}", --out, "{out}"]
  write_track: [--write-track]
)Y");
  CliRun r = bench({"--against-upstream", "--machine", "box"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_NE(read(fake / "upstream.args").find("--repeats\n3\n"), std::string::npos);
  EXPECT_NE(read(fake / "separate.args").find("--bench-repeats\n3\n"), std::string::npos);
  json j = json::parse(read(results() / result_files()[0]));
  EXPECT_EQ(j["repeats"], 3);
  ASSERT_EQ(run({"docs"}).code, 0);
  EXPECT_NE(read(project.root() / "PATCHES.md").find("the median of 3 timed runs per row"), std::string::npos);

  r = bench({"--repeats", "1", "--machine", "box"});
  ASSERT_EQ(r.code, 0) << r.all();
  EXPECT_EQ(read(fake / "separate.args").find("--bench-repeats"), std::string::npos);
  r = bench({"--repeats", "0"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("--repeats: expected 1 to 100 timed runs per configuration"), std::string::npos) << r.err;

  project.write_manifest({});
  add_bench_section("bench:\n  model: x.th\n  repeats: many\n");
  r = run({"lint"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(
      r.err.find(
          "bench.repeats: found \"many\", expected the number of timed runs per configuration, 1 to 100 (like 3)"),
      std::string::npos)
      << r.err;
}

TEST_F(BenchTest, ComponentsWithoutABenchSectionAreRefused) {
  project.write_manifest({}, "other");
  CliRun r = bench({"other"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(
      r.err.find(
          "patchmgr: other: manifests/other.yaml has no bench: section; add one (docs/manifest.md, \"Benchmarks\")"),
      std::string::npos)
      << r.err;
}

TEST_F(BenchTest, MalformedResultFilesNameTheFileAndTheKey) {
  ASSERT_EQ(bench({"--machine", "box"}).code, 0);
  fs::path file = results() / result_files()[0];
  json j = json::parse(read(file));
  j["runtime"]["rows"][1]["realtime"] = "fast";
  write(results() / "2026-01-01-box-demo.json", j.dump());
  CliRun r = run({"docs"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("patchmgr: docs/benchmarks/2026-01-01-box-demo.json: runtime.rows[1].realtime: found a string, "
                       "expected a number"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(project.root() / "PATCHES.md"));

  write(results() / "2026-01-01-box-demo.json", "{\"stemkit_bench\": 1,");
  r = run({"docs", "--check"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("docs/benchmarks/2026-01-01-box-demo.json: not valid JSON"), std::string::npos) << r.err;

  j = json::parse(read(file));
  j.erase("fingerprint");
  write(results() / "2026-01-01-box-demo.json", j.dump());
  r = run({"docs"});
  EXPECT_NE(r.err.find("docs/benchmarks/2026-01-01-box-demo.json: fingerprint: missing"), std::string::npos) << r.err;

  j = json::parse(read(file));
  j["component"] = "gone";
  j["fingerprint"]["component"] = "gone abc\n";
  write(results() / "2026-01-01-box-demo.json", j.dump());
  r = run({"docs"});
  EXPECT_EQ(r.code, 2) << r.all();
  EXPECT_NE(r.err.find("docs/benchmarks/2026-01-01-box-demo.json: component: \"gone\" has no manifest in manifests/"),
            std::string::npos)
      << r.err;
}

TEST_F(BenchTest, TheBenchSectionIsValidatedLikeTheRest) {
  project.write_manifest({});
  add_bench_section(R"Y(bench:
  model: "{wrk}/full.th"
  precisions: [fp32, fp8]
  batch_sizes: [0, 2]
  graphs: maybe
  upstream: [python3, x.py, --out, "{out}"]
  vars: {root: x}
  tracks: a.wav
)Y");
  CliRun r = run({"lint"});
  EXPECT_EQ(r.code, 2) << r.all();
  for (const char* expected : {
           "manifests/demo.yaml:17:3: error: bench: unknown key \"tracks\"; did you mean \"track\"?",
           "manifests/demo.yaml:16:10: error: bench.vars: \"root\" is a placeholder patchmgr fills in itself; choose "
           "another name",
           "manifests/demo.yaml:11:10: error: bench.model: unknown placeholder {wrk}; known: root, work,",
           "manifests/demo.yaml:12:15: error: bench.precisions: found \"fp8\", expected one of fp32, fp16, bf16",
           "manifests/demo.yaml:13:17: error: bench.batch_sizes: found \"0\", expected a batch size from 1 to 4096",
           "manifests/demo.yaml:14:11: error: bench.graphs: found \"maybe\", expected a list of values among on, off",
       })
    EXPECT_NE(r.err.find(expected), std::string::npos) << expected << "\n" << r.err;
}

// Result files: naming, no replacing, and the rendering of a hand-made result.
TEST(BenchResult, FilesAreNeverReplacedAndNoTemporaryIsLeft) {
  TempDir dir;
  fs::path a = patchmgr::bench::write_result_file(dir.path(), "2026-11-25-h100-demucs", "one\n");
  write(dir.path() / "2026-11-25-h100-demucs-3.json", "taken\n");
  fs::path b = patchmgr::bench::write_result_file(dir.path(), "2026-11-25-h100-demucs", "two\n");
  fs::path c = patchmgr::bench::write_result_file(dir.path(), "2026-11-25-h100-demucs", "three\n");
  EXPECT_EQ(a.filename(), "2026-11-25-h100-demucs.json");
  EXPECT_EQ(b.filename(), "2026-11-25-h100-demucs-2.json");
  EXPECT_EQ(c.filename(), "2026-11-25-h100-demucs-4.json");
  EXPECT_EQ(read(a), "one\n");
  EXPECT_EQ(read(b), "two\n");
  EXPECT_EQ(read(dir.path() / "2026-11-25-h100-demucs-3.json"), "taken\n");
  EXPECT_EQ(read(c), "three\n");
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir.path()); it != fs::directory_iterator(); ++it) ++n;
  EXPECT_EQ(n, 4u);  // no temporary file left behind
}

TEST(BenchResult, MachineSlugs) {
  using patchmgr::bench::machine_slug;
  EXPECT_EQ(machine_slug("NVIDIA H100 80GB HBM3"), "h100-80gb-hbm3");
  EXPECT_EQ(machine_slug("AMD Radeon RX 9070 XT"), "rx-9070-xt");
  EXPECT_EQ(machine_slug("NVIDIA GeForce RTX 4090"), "rtx-4090");
  EXPECT_EQ(machine_slug("cpu"), "cpu");
  EXPECT_EQ(machine_slug("../../etc"), "etc");
  EXPECT_EQ(machine_slug("!!!"), "machine");
}

TEST(BenchResult, ShellJoinQuotesWhatNeedsIt) {
  EXPECT_EQ(patchmgr::shell_join({"python3", "a b.py", "--x", "it's", "{}", "a=b,c"}),
            "python3 'a b.py' --x 'it'\\''s' '{}' a=b,c");
}

json cpu_result() {
  return json::parse(R"JSON({
 "stemkit_bench": 1, "component": "demo", "date": "2026-11-25", "time": "2026-11-25T11:09:54Z",
 "imported": "from docs/benchmarks/x/ by hand",
 "machine": {"label": "Debian 12, 2 cores", "cores": 2, "gpu": ""},
 "libtorch": "1.13.1 (cpu)",
 "fingerprint": {"id": "8056e58f60434274", "component": "demo 0000000000000000000000000000000000000000\n"},
 "track": {"path": "/tmp/t.wav", "seconds": 60.0, "synthetic": true},
 "commands": [],
 "runtime": {"rows": [{"precision": "fp32", "batch_size": 1, "graphs": false, "realtime": 1.0, "peak_allocated_bytes": 0, "peak_reserved_bytes": 0}]},
 "upstream": {"torch": "1.13.0a0", "rows": [{"precision": "fp32", "batch_size": 1, "realtime": 0.9777}, {"precision": "bf16", "batch_size": 1, "mode": "MSST demix, bf16 autocast, batch 1", "error": "RuntimeError: view_as_complex"}]}
})JSON");
}

TEST(BenchResult, RendersCpuRowsImportsAndFailedUpstreamRows) {
  patchmgr::Manifest m;
  m.name = "demo";
  m.commit = std::string(40, '0');
  auto r = patchmgr::bench::parse_result(cpu_result(), "/root/docs/benchmarks/a.json", "/root");
  std::string md = patchmgr::render_benchmarks(m, {&r}, "/root");
  EXPECT_NE(md.find("Newest result, [`a.json`](docs/benchmarks/a.json): 2026-11-25, on Debian 12, 2 cores; stemkit on "
                    "libtorch 1.13.1 (cpu), upstream on PyTorch 1.13.0a0; a 60 s track (synthetic); patch set "
                    "`8056e58f60434274`, the demo patches of the manifest as they are now.\n"),
            std::string::npos)
      << md;
  EXPECT_NE(
      md.find("| stemkit fp32, batch 1, graphs off | **1.00x** | n/a (CPU) |  |\n"
              "| upstream fp32, batch 1 | **0.98x** | n/a (CPU) |  |\n"
              "| upstream MSST demix, bf16 autocast, batch 1 | failed |  | failed: RuntimeError: view_as_complex |\n"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("Fastest: stemkit fp32, batch 1, graphs off at 1.00x, 1.02 times upstream's fastest (fp32, batch "
                    "1, 0.98x).\n\nImported: from docs/benchmarks/x/ by hand\n"),
            std::string::npos)
      << md;
}

// A CPU run after a GPU's (or the other way) does not push the other kind's
// figures into the history: the newest of each kind is shown in full, the
// GPU's first, and the history holds the rest.
TEST(BenchResult, TheNewestGpuAndCpuResultsAreBothShownInFull) {
  patchmgr::Manifest m;
  m.name = "demo";
  m.commit = std::string(40, '0');
  json gpu_json = cpu_result(), old_cpu_json = cpu_result(), cpu_json = cpu_result();
  gpu_json["machine"] = {{"label", "NVIDIA H100 80GB HBM3"}, {"gpu", "NVIDIA H100 80GB HBM3"}};
  gpu_json["date"] = "2026-11-26", gpu_json["time"] = "2026-11-26T10:00:00Z";
  gpu_json["runtime"]["rows"][0]["realtime"] = 300.0;
  cpu_json["date"] = "2026-11-27", cpu_json["time"] = "2026-11-27T10:00:00Z";
  cpu_json["runtime"]["rows"][0]["realtime"] = 1.5;
  auto old_cpu = patchmgr::bench::parse_result(old_cpu_json, "/root/docs/benchmarks/a.json", "/root");
  auto gpu = patchmgr::bench::parse_result(gpu_json, "/root/docs/benchmarks/b.json", "/root");
  auto cpu = patchmgr::bench::parse_result(cpu_json, "/root/docs/benchmarks/c.json", "/root");
  const std::string md = patchmgr::render_benchmarks(m, {&old_cpu, &gpu, &cpu}, "/root");
  const size_t on_gpu = md.find("Newest result on a GPU, [`b.json`](docs/benchmarks/b.json): 2026-11-26");
  const size_t on_cpu = md.find("Newest result on the CPU, [`c.json`](docs/benchmarks/c.json): 2026-11-27");
  ASSERT_NE(on_gpu, std::string::npos) << md;
  ASSERT_NE(on_cpu, std::string::npos) << md;
  EXPECT_LT(on_gpu, on_cpu) << md;
  EXPECT_NE(md.find("**300.0x**"), std::string::npos) << md;
  EXPECT_NE(md.find("**1.50x**"), std::string::npos) << md;
  EXPECT_NE(md.find("History, newest first:\n\n- 2026-11-25, Debian 12, 2 cores: stemkit 1.00x"), std::string::npos)
      << md;
  EXPECT_EQ(md.find("b.json`](docs/benchmarks/b.json) (imported)"), std::string::npos) << "b is not in the history";
  EXPECT_EQ(md.find("History", md.find("History") + 1), std::string::npos) << md;

  // One kind only: "Newest result", as before.
  const std::string only_cpu = patchmgr::render_benchmarks(m, {&old_cpu, &cpu}, "/root");
  EXPECT_NE(only_cpu.find("Newest result, [`c.json`]"), std::string::npos) << only_cpu;
  EXPECT_NE(only_cpu.find("History, newest first:\n\n- 2026-11-25"), std::string::npos) << only_cpu;
}

// More than eight rows: a summary first (each side's fastest per precision,
// stemkit's fastest within the memory of upstream's fastest, and the least
// memory), then every row folded under <details>.
TEST(BenchResult, ManyRowsGetASummaryAndAFoldedTable) {
  json rows = json::array();
  for (int b : {1, 2, 4, 8})
    for (bool g : {true, false})
      rows.push_back({{"precision", "fp16"},
                      {"batch_size", b},
                      {"graphs", g},
                      {"realtime", 100.0 + b + (g ? 0.5 : 0.0)},
                      {"peak_allocated_bytes", int64_t(b) * 500000000},
                      {"peak_reserved_bytes", int64_t(b) * 1000000000 + (g ? 500000000 : 0)}});
  rows.push_back({{"precision", "bf16"},
                  {"batch_size", 1},
                  {"graphs", true},
                  {"realtime", 90.0},
                  {"peak_reserved_bytes", 3000000000}});
  // separate --bench-low-memory's row: its mode is shown with its configuration.
  rows.push_back({{"precision", "fp16"},
                  {"batch_size", 1},
                  {"graphs", false},
                  {"mode", "low-memory"},
                  {"realtime", 99.0},
                  {"peak_reserved_bytes", 800000000}});
  json j =
      json::parse(R"JSON({"stemkit_bench": 1, "component": "demo", "date": "2026-11-25", "time": "2026-11-25T20:00:00Z",
 "machine": {"label": "Fake GPU", "gpu": "Fake GPU", "driver": "1", "gpu_memory": "80 GiB", "cpu": "", "cores": 16, "os": ""},
 "libtorch": "2.11.0 (cuda)", "runtime_patch_set": "8056e58f60434274",
 "fingerprint": {"id": "8056e58f60434274", "component": "demo 0000000000000000000000000000000000000000\n"},
 "track": {"path": "t.wav", "seconds": 180.0, "synthetic": true}, "commands": []})JSON");
  j["runtime"] = {{"rows", rows}};
  j["upstream"] = {{"torch", "2.11.0"},
                   {"rows", json::array({{{"precision", "fp16"},
                                          {"batch_size", 4},
                                          {"mode", "MSST demix, fp16 autocast, batch 4"},
                                          {"realtime", 40.0},
                                          {"peak_reserved_bytes", 5580000000}},
                                         {{"precision", "bf16"},
                                          {"batch_size", 1},
                                          {"mode", "MSST demix, bf16 autocast, batch 1"},
                                          {"error",
                                           "RuntimeError: view_as_complex is only supported for half, float and double "
                                           "tensors, but got a tensor of scalar type: BFloat16"}}})}};
  patchmgr::Manifest m;
  m.name = "demo";
  m.commit = std::string(40, '0');
  auto r = patchmgr::bench::parse_result(j, "/root/docs/benchmarks/a.json", "/root");
  std::string md = patchmgr::render_benchmarks(m, {&r}, "/root");
  EXPECT_NE(md.find("| | upstream | stemkit | stemkit / upstream |\n|---|---|---|---|\n"
                    "| fastest fp16 | 40.0x at 5.58 GB (MSST demix, fp16 autocast, batch 4) | 108.5x at 8.50 GB (fp16, "
                    "batch 8, graphs on) | 2.71x |\n"
                    "| fastest bf16 | failed: RuntimeError: view_as_complex is only supported for half, float and "
                    "double tensors, but got a tensor ... | 90.0x at 3.00 GB (bf16, batch 1, graphs on) |  |\n"
                    "| fastest within upstream's memory | 40.0x at 5.58 GB (MSST demix, fp16 autocast, batch 4) | "
                    "104.5x at 4.50 GB (fp16, batch 4, graphs on) | 2.61x |\n"
                    "| least GPU memory | 40.0x at 5.58 GB (MSST demix, fp16 autocast, batch 4) | 99.0x at 0.80 GB "
                    "(fp16, batch 1, graphs off, low-memory) | |\n\n"
                    "<details><summary>All 12 configurations</summary>\n\n| Mode | Speed (x realtime) | Peak GPU "
                    "memory | Notes |\n"),
            std::string::npos)
      << md;
  EXPECT_NE(
      md.find("| upstream MSST demix, bf16 autocast, batch 1 | failed |  | failed: RuntimeError: view_as_complex"),
      std::string::npos)
      << md;
  EXPECT_NE(
      md.find(" |\n\n</details>\n\nFastest: stemkit fp16, batch 8, graphs on at 108.5x, 2.71 times upstream's fastest"),
      std::string::npos)
      << md;
}

TEST(BenchResult, ValidationNamesTheKey) {
  auto expect_error = [](json j, const std::string& message) {
    try {
      patchmgr::bench::parse_result(j, "/root/docs/benchmarks/a.json", "/root");
      ADD_FAILURE() << "accepted: " << message;
    } catch (const patchmgr::Error& e) {
      EXPECT_EQ(e.code(), patchmgr::ExitCode::usage);
      EXPECT_NE(std::string(e.what()).find("docs/benchmarks/a.json: " + message), std::string::npos) << e.what();
    }
  };
  json j = cpu_result();
  j["stemkit_bench"] = 2;
  expect_error(j, "stemkit_bench: found 2, expected 1");
  j = cpu_result();
  j["date"] = "25.11.2026";
  expect_error(j, "date: found \"25.11.2026\", expected YYYY-MM-DD");
  j = cpu_result();
  j["runtime"]["rows"][0].erase("graphs");
  expect_error(j, "runtime.rows[0].graphs: missing");
  j = cpu_result();
  j["upstream"]["rows"][0].erase("realtime");
  expect_error(j, "upstream.rows[0].realtime: missing");
  j = cpu_result();
  j["upstream"]["rows"][0]["batch_size"] = 1.5;
  expect_error(j, "upstream.rows[0].batch_size: found a number, expected an integer");
  j = cpu_result();
  j["fingerprint"]["component"] = "other abc\n";
  expect_error(j, "fingerprint.component: expected the demo block");
  j = cpu_result();
  j["machine"] = "box";
  expect_error(j, "machine: found a string, expected an object");
}

}  // namespace
