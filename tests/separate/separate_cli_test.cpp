// The `separate` binary end to end on the CPU, with the small HTDemucs of
// tests/fixtures/htdemucs: stems written and equal to the runtime's own
// separation of the decoded audio, --skip-existing, --two-stems, the JSON
// summary, and errors that name the file and leave the other files done.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "runtime/audio/audio.h"
#include "runtime/models/demucs_bag.h"
#include "runtime/models/separator.h"
#include "tests/separate/test_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const std::string kModel = std::string(STEMKIT_FIXTURES) + "/htdemucs/small.th";

struct Result {
  int code;
  std::string output;  // stdout and stderr
};

Result run(const std::string& args) {
  std::string command = std::string(STEMKIT_SEPARATE) + " " + args + " 2>&1";
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// 2.5 s of stereo noise-like music at 44.1 kHz, as 32-bit float WAV.
void write_song(const fs::path& path, double seconds = 2.5) {
  audio::Audio a;
  a.samplerate = 44100;
  a.channels = 2;
  a.frames = static_cast<int64_t>(seconds * a.samplerate);
  at::Tensor t = 0.2 * at::randn({2, a.frames}, at::TensorOptions().dtype(at::kFloat));
  a.data.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  audio::write_audio(path.string(), a, audio::Encoding::float32);
}

at::Tensor read(const fs::path& path) {
  audio::Audio a = audio::read_audio(path.string());
  return at::from_blob(a.data.data(), {a.channels, a.frames}, at::kFloat).clone();
}

TEST(SeparateCli, WritesStemsEqualToTheRuntimesSeparation) {
  separate::test::TempDir dir;
  write_song(dir / "song.wav");
  Result r = run("-n " + kModel + " --shifts 0 -b 2 --float32 --clip-mode none -q -o " + (dir / "out").string() + " " +
                 (dir / "song.wav").string() + " --json " + (dir / "summary.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  models::DemucsBag bag = models::load_demucs_bag("small", {kModel});
  models::SeparationOptions o;
  o.shifts = 0;
  at::Tensor want = models::separate(bag, read(dir / "song.wav"), o);
  const auto& sources = bag.sources();
  for (size_t s = 0; s < sources.size(); ++s) {
    fs::path stem = dir / "out" / "small" / "song" / (sources[s] + ".wav");
    ASSERT_TRUE(fs::exists(stem)) << stem;
    at::Tensor got = read(stem);
    at::Tensor w = want[static_cast<int64_t>(s)];
    EXPECT_LT((got - w).norm().item<double>() / w.norm().item<double>(), 1e-6) << sources[s];
  }
  std::ifstream in(dir / "summary.json");
  auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["files"][0]["status"], "ok");
  EXPECT_EQ(summary["files"][0]["outputs"].size(), 4u);
  EXPECT_GT(summary["load_s"].get<double>(), 0.0);  // reading the model, timed apart from the files

  // Again with --skip-existing: nothing is redone.
  auto before = fs::last_write_time(dir / "out" / "small" / "song" / "vocals.wav");
  r = run("-n " + kModel + " --skip-existing -o " + (dir / "out").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_EQ(fs::last_write_time(dir / "out" / "small" / "song" / "vocals.wav"), before);
}

TEST(SeparateCli, TwoStemsAndTemplate) {
  separate::test::TempDir dir;
  write_song(dir / "a.wav", 1.0);
  Result r = run("-n " + kModel + " --two-stems vocals --filename '{track}-{stem}.{ext}' --format flac -q -o " +
                 dir.path().string() + " " + (dir / "a.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "small" / "a-vocals.flac"));
  EXPECT_TRUE(fs::exists(dir / "small" / "a-no_vocals.flac"));
  EXPECT_FALSE(fs::exists(dir / "small" / "a-drums.flac"));
  r = run("-n " + kModel + " --two-stems voice -o " + dir.path().string() + " " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("voice"), std::string::npos) << r.output;
}

TEST(SeparateCli, ABadFileIsNamedAndTheOthersAreDone) {
  separate::test::TempDir dir;
  write_song(dir / "good.wav", 1.0);
  { std::ofstream(dir / "bad.wav") << "not audio at all"; }
  Result r = run("-n " + kModel + " -q -o " + dir.path().string() + " " + (dir / "bad.wav").string() + " " +
                 (dir / "good.wav").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("bad.wav"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << "no C++ backtraces for users";
  EXPECT_TRUE(fs::exists(dir / "small" / "good" / "drums.wav"));
  EXPECT_FALSE(fs::exists(dir / "small" / "bad"));

  // Through the pipeline (the next file decoded and the previous one encoded while
  // one is separated): good, bad, good again; the summary keeps the input order.
  write_song(dir / "other.wav", 1.5);
  r = run("-n " + kModel + " -q -o " + (dir / "p").string() + " " + (dir / "good.wav").string() + " " +
          (dir / "bad.wav").string() + " " + (dir / "other.wav").string() + " --json " + (dir / "p.json").string());
  EXPECT_EQ(r.code, 1) << r.output;
  std::ifstream in(dir / "p.json");
  auto files = nlohmann::json::parse(in)["files"];
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0]["status"], "ok");
  EXPECT_EQ(files[1]["status"], "failed");
  EXPECT_EQ(files[2]["status"], "ok");
  EXPECT_NE(files[1]["error"].get<std::string>().find("bad.wav"), std::string::npos);
  for (const char* track : {"good", "other"})
    for (const char* stem : {"drums", "bass", "other", "vocals"})
      EXPECT_TRUE(fs::exists(dir / "p" / "small" / track / (std::string(stem) + ".wav"))) << track << "/" << stem;
}

TEST(SeparateCli, BSRoformerFromAnMsstConfig) {
  // `separate -n config.yaml --checkpoint x.ckpt`: the small stereo BS-RoFormer of
  // tests/fixtures/bs_roformer with an MSST configuration, one target (vocals), so the
  // instrumental stem is the mix minus the vocals.
  separate::test::TempDir dir;
  std::ifstream meta_in(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.json");
  auto kwargs = nlohmann::json::parse(meta_in)["kwargs"];
  std::string yaml = "audio:\n  chunk_size: 2944\n  num_channels: 2\n  sample_rate: 44100\nmodel:\n";
  for (const auto& [key, value] : kwargs.items()) yaml += "  " + key + ": " + value.dump() + "\n";
  // MSST's training-only options are understood; one this runtime does not know is said, not fatal.
  yaml += "  use_torch_checkpoint: false\n  brand_new_option: 3\n";
  yaml += "training:\n  instruments: [vocals, other]\n  target_instrument: vocals\ninference:\n  num_overlap: 2\n";
  { std::ofstream(dir / "config.yaml") << yaml; }
  const std::string ckpt = std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.ckpt";
  write_song(dir / "song.wav", 1.0);
  Result r =
      run("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt + " -b 2 --float32 --clip-mode none -q -o " +
          (dir / "out").string() + " " + (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("config.yaml: model arguments that BSRoformer does not know, ignored: brand_new_option\n"),
            std::string::npos)
      << r.output;
  at::Tensor mix = read(dir / "song.wav");
  auto separator = models::make_roformer_separator(models::load_msst_config((dir / "config.yaml").string()), ckpt);
  models::SeparationOptions o;
  at::Tensor want = separator->separate(mix, o);
  ASSERT_EQ(want.size(0), 2);
  at::Tensor vocals = read(dir / "out" / "stereo" / "song" / "vocals.wav");
  at::Tensor instrumental = read(dir / "out" / "stereo" / "song" / "instrumental.wav");
  EXPECT_LT((vocals - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  EXPECT_LT((instrumental + vocals - mix).norm().item<double>() / mix.norm().item<double>(), 1e-6);

  r = run("-n " + (dir / "config.yaml").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--checkpoint"), std::string::npos) << r.output;

  // Without -b the config's inference.batch_size, as MSST; --tta as MSST's --use_tta.
  yaml += "  batch_size: 3\n";
  { std::ofstream(dir / "batch3.yaml") << yaml; }
  r = run("-n " + (dir / "batch3.yaml").string() + " --checkpoint " + ckpt +
          " --tta --float32 --clip-mode none -q -o " + (dir / "tta").string() + " --json " +
          (dir / "tta.json").string() + " " + (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream summary_in(dir / "tta.json");
  EXPECT_EQ(nlohmann::json::parse(summary_in)["files"][0]["batch_size"], 3);
  models::SeparationOptions tta;
  tta.tta = true;
  at::Tensor want_tta = separator->separate(mix, tta);
  at::Tensor vocals_tta = read(dir / "tta" / "stereo" / "song" / "vocals.wav");
  EXPECT_LT((vocals_tta - want_tta[0]).norm().item<double>() / want_tta[0].norm().item<double>(), 1e-6);
  EXPECT_GT((vocals_tta - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-4);
  r = run("--tta " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--tta is MSST's test-time augmentation, for RoFormer configurations"), std::string::npos)
      << r.output;

  // --low-memory (batch 1, eager, short windows) gives the same stems.
  r = run("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt +
          " --low-memory --float32 --clip-mode none -q -o " + (dir / "low").string() + " " +
          (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  at::Tensor low = read(dir / "low" / "stereo" / "song" / "vocals.wav");
  EXPECT_LT((low - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  r = run("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt + " --low-memory -b 2 " +
          (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--low-memory runs batch 1"), std::string::npos) << r.output;
}

TEST(SeparateCli, MelBandRoformerFromAnMsstConfig) {
  // The small stereo Mel-Band RoFormer of tests/fixtures/mel_band_roformer with its MSST
  // configuration: the architecture is read from the model section (num_bands).
  separate::test::TempDir dir;
  const std::string fixtures = std::string(STEMKIT_FIXTURES) + "/mel_band_roformer/";
  const std::string config = fixtures + "stereo.yaml", ckpt = fixtures + "stereo.ckpt";
  write_song(dir / "song.wav", 0.5);
  Result r =
      run("-n " + config + " --checkpoint " + ckpt + " -b 2 --float32 --clip-mode none -o " + (dir / "out").string() +
          " " + (dir / "song.wav").string() + " --json " + (dir / "summary.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("separate: stereo on cpu in fp32 (--precision auto), loaded in "), std::string::npos)
      << r.output;
  // --precision auto (the default): MSST's autocast is for GPUs, so fp32 here.
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir / "summary.json"))["precision"], "fp32");
  // The bench's rows are of that precision too, named as it resolved.
  r = run("-n " + config + " --checkpoint " + ckpt + " --bench --bench-seconds 1 --json " +
          (dir / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto bench = nlohmann::json::parse(std::ifstream(dir / "bench.json"));
  ASSERT_EQ(bench["rows"].size(), 1u);
  EXPECT_EQ(bench["rows"][0]["precision"], "fp32");
  at::Tensor mix = read(dir / "song.wav");
  auto separator = models::make_roformer_separator(models::load_msst_config(config), ckpt);
  at::Tensor want = separator->separate(mix, models::SeparationOptions{});
  ASSERT_EQ(want.size(0), 2);
  at::Tensor vocals = read(dir / "out" / "stereo" / "song" / "vocals.wav");
  at::Tensor instrumental = read(dir / "out" / "stereo" / "song" / "instrumental.wav");
  EXPECT_LT((vocals - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  EXPECT_LT((instrumental + vocals - mix).norm().item<double>() / mix.norm().item<double>(), 1e-6);

  // A top-level model_type overrides the guess: read as BS-RoFormer, the bands do not fit.
  std::ifstream in(config);
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  { std::ofstream(dir / "as_bs.yaml") << "model_type: bs_roformer\n" << yaml; }
  r = run("-n " + (dir / "as_bs.yaml").string() + " --checkpoint " + ckpt + " -q -o " + (dir / "out2").string() + " " +
          (dir / "song.wav").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("as_bs.yaml: BSRoformer freqs_per_bands add up to 1025 bins"), std::string::npos) << r.output;
}

TEST(SeparateCli, UsageErrorsSayWhatToDo) {
  separate::test::TempDir dir;
  write_song(dir / "a.wav", 0.5);
  Result r = run("-n htdemcs " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("did you mean 'htdemucs'"), std::string::npos) << r.output;
  r = run("-n htdemucs --model-dir " + (dir / "empty").string() + " " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--download"), std::string::npos) << r.output;
  r = run("-n " + kModel + " " + (dir / "missing.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("missing.wav: no such file"), std::string::npos) << r.output;
  r = run("-n " + kModel);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no input files"), std::string::npos) << r.output;
  // A precision the device cannot run stops --bench before it measures anything.
  r = run("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-precisions fp32,fp16");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--precision fp16 needs a GPU"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("x realtime"), std::string::npos) << r.output;
  r = run("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-precisions fp32,auto");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--bench-precisions: name the precisions (fp32, fp16, bf16)"), std::string::npos) << r.output;
  r = run("-n " + kModel + " --precision fp64 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--precision fp64: expected auto, fp32, fp16 or bf16"), std::string::npos) << r.output;
  // A GPU the machine lacks is named with what it has, before any model loads.
  r = run("-n " + kModel + " --device cuda:99 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find(at::hasCUDA() ? "--device cuda:99: this machine has " : "--device cuda:99: this libtorch"),
            std::string::npos)
      << r.output;
  // Typed options: a value outside the list is a usage error naming the list.
  r = run("-n " + kModel + " --clip-mode soft " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--clip-mode"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rescale"), std::string::npos) << r.output;
  r = run("-n " + kModel + " --other-method sub --two-stems vocals " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("minus"), std::string::npos) << r.output;
  r = run("-n " + kModel + " --attention fast " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--attention"), std::string::npos) << r.output;
  r = run("-n " + kModel + " --int24 --float32 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--int24 and --float32 exclude each other"), std::string::npos) << r.output;
  // Where the stems or the summary cannot be written is found before any separation.
  fs::create_directories(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  if (::access((dir / "ro").c_str(), W_OK) != 0) {  // root writes anywhere: nothing to check then
    r = run("-n " + kModel + " -o " + (dir / "ro").string() + " " + (dir / "a.wav").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find((dir / "ro").string()), std::string::npos) << r.output;
    r = run("-n " + kModel + " -o " + (dir / "out").string() + " --json " + (dir / "ro" / "s.json").string() + " " +
            (dir / "a.wav").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_FALSE(fs::exists(dir / "out")) << "nothing separated before the --json path was checked";
  }
  r = run("-n " + kModel + " --json " + (dir / "no" / "such" / "dir" / "s.json").string() + " " +
          (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("s.json"), std::string::npos) << r.output;
  r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("patch set"), std::string::npos) << r.output;
}

// --explain: the plan, decided as a run would decide it, and no stems.
TEST(SeparateCli, ExplainPrintsThePlan) {
  separate::test::TempDir dir;
  Result r = run("-n " + kModel + " --device cpu --explain -o " + (dir / "out").string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* field : {"precision: fp32", "batch: 1", "graphs: off", "attention on "})
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " in\n" << r.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "small")) << "--explain writes no stems";
  r = run("-n " + kModel + " --device cpu --explain --json " + (dir / "plan.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(dir / "plan.json");
  const nlohmann::json plan = nlohmann::json::parse(in);
  EXPECT_EQ(plan.at("precision").at("value").get<std::string>(), "fp32") << plan.dump(2);
  EXPECT_FALSE(plan.at("precision").at("reason").get<std::string>().empty()) << plan.dump(2);
  EXPECT_FALSE(plan.at("attention_calls").empty()) << "the probe names every call shape: " << plan.dump(2);
}

// --completions: the scripts cmake --install installs, made from the option
// table, checked in a real bash with bash-completion. No input is needed.
TEST(SeparateCli, CompletionsOfferTheTablesOptionsAndValues) {
  Result zsh = run("--completions zsh");
  ASSERT_EQ(zsh.code, 0) << zsh.output;
  EXPECT_NE(zsh.output.find("'--attention=[Force an attention backend"), std::string::npos) << zsh.output;
  EXPECT_EQ(run("--completions tcsh").code, 2);
  const std::string library = "/usr/share/bash-completion/bash_completion";
  if (!fs::exists(library)) GTEST_SKIP() << "skipped: bash-completion is not installed (" << library << ")";
  separate::test::TempDir dir;
  Result bash = run("--completions bash > " + (dir / "separate.bash").string());
  ASSERT_EQ(bash.code, 0) << bash.output;
  std::ofstream(dir / "drive.sh") << "source " << library << R"(
source ./separate.bash
t() {
  COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  _separate separate "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
  echo "$*|${COMPREPLY[*]}"
}
t separate --atte
t separate --attention ''
t separate -n x --clip-mode t
t separate --overlap ''
t separate --seed 3 --bench-t
)";
  std::string command = "cd " + dir.path().string() + " && bash drive.sh 2>&1";
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  ASSERT_EQ(p ? pclose(p) : -1, 0) << out;
  EXPECT_NE(out.find("separate --atte|--attention\n"), std::string::npos) << out;
  EXPECT_NE(out.find("separate --attention |auto flash efficient cudnn math\n"), std::string::npos) << out;
  EXPECT_NE(out.find("separate -n x --clip-mode t|tanh\n"), std::string::npos) << out;
  EXPECT_NE(out.find("separate --overlap |\n"), std::string::npos) << out;  // a number: nothing to offer
  EXPECT_NE(out.find("separate --seed 3 --bench-t|--bench-trace\n"), std::string::npos) << out;
}

}  // namespace
