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
#include "runtime/separate/openmp_wait.h"
#include "tests/separate/test_support.h"
#include "tests/separate/cli_support.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const std::string kModel = std::string(STEMKIT_FIXTURES) + "/htdemucs/small.th";

using Result = separate::test::CliResult;
using separate::test::read_samples;
using separate::test::run_separate;
using separate::test::write_noise_song;

TEST(SeparateCli, WritesStemsEqualToTheRuntimesSeparation) {
  separate::test::TempDir dir;
  write_noise_song(dir / "song.wav");
  Result r =
      run_separate("-n " + kModel + " --shifts 0 -b 2 --float32 --clip-mode none -q -o " + (dir / "out").string() +
                   " " + (dir / "song.wav").string() + " --json " + (dir / "summary.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  models::DemucsBag bag = models::load_demucs_bag("small", {kModel});
  models::SeparationOptions o;
  o.shifts = 0;
  at::Tensor want = models::separate(bag, read_samples(dir / "song.wav"), o);
  const auto& sources = bag.sources();
  for (size_t s = 0; s < sources.size(); ++s) {
    fs::path stem = dir / "out" / "small" / "song" / (sources[s] + ".wav");
    ASSERT_TRUE(fs::exists(stem)) << stem;
    at::Tensor got = read_samples(stem);
    at::Tensor w = want[static_cast<int64_t>(s)];
    EXPECT_LT((got - w).norm().item<double>() / w.norm().item<double>(), 1e-6) << sources[s];
  }
  std::ifstream in(dir / "summary.json");
  auto summary = nlohmann::json::parse(in);
  EXPECT_EQ(summary["files"][0]["status"], "ok");
  EXPECT_EQ(summary["files"][0]["outputs"].size(), 4u);
  EXPECT_GT(summary["load_s"].get<double>(), 0.0);  // reading the model, timed apart from the files

  // Again with --skip-existing and the same settings: nothing is redone (with
  // others it would be: stem_set_cli_test.cpp).
  auto before = fs::last_write_time(dir / "out" / "small" / "song" / "vocals.wav");
  r = run_separate("-n " + kModel + " --shifts 0 --float32 --clip-mode none --skip-existing -o " +
                   (dir / "out").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("skipped"), std::string::npos) << r.output;
  EXPECT_EQ(fs::last_write_time(dir / "out" / "small" / "song" / "vocals.wav"), before);
}

TEST(SeparateCli, TwoStemsAndTemplate) {
  separate::test::TempDir dir;
  write_noise_song(dir / "a.wav", 1.0);
  Result r =
      run_separate("-n " + kModel + " --two-stems vocals --filename '{track}-{stem}.{ext}' --format flac -q -o " +
                   dir.path().string() + " " + (dir / "a.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "small" / "a-vocals.flac"));
  EXPECT_TRUE(fs::exists(dir / "small" / "a-no_vocals.flac"));
  EXPECT_FALSE(fs::exists(dir / "small" / "a-drums.flac"));
  r = run_separate("-n " + kModel + " --two-stems voice -o " + dir.path().string() + " " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("voice"), std::string::npos) << r.output;
}

TEST(SeparateCli, ABadFileIsNamedAndTheOthersAreDone) {
  separate::test::TempDir dir;
  write_noise_song(dir / "good.wav", 1.0);
  { std::ofstream(dir / "bad.wav") << "not audio at all"; }
  Result r = run_separate("-n " + kModel + " -q -o " + dir.path().string() + " " + (dir / "bad.wav").string() + " " +
                          (dir / "good.wav").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("bad.wav"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Exception raised from"), std::string::npos) << "no C++ backtraces for users";
  EXPECT_TRUE(fs::exists(dir / "small" / "good" / "drums.wav"));
  EXPECT_FALSE(fs::exists(dir / "small" / "bad"));

  // Through the pipeline (the next file decoded and the previous one encoded while
  // one is separated): good, bad, good again; the summary keeps the input order.
  write_noise_song(dir / "other.wav", 1.5);
  r = run_separate("-n " + kModel + " -q -o " + (dir / "p").string() + " " + (dir / "good.wav").string() + " " +
                   (dir / "bad.wav").string() + " " + (dir / "other.wav").string() + " --json " +
                   (dir / "p.json").string());
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
  write_noise_song(dir / "song.wav", 1.0);
  Result r = run_separate("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt +
                          " -b 2 --float32 --clip-mode none -q -o " + (dir / "out").string() + " " +
                          (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("config.yaml: model arguments that BSRoformer does not know, ignored: brand_new_option\n"),
            std::string::npos)
      << r.output;
  at::Tensor mix = read_samples(dir / "song.wav");
  auto separator = models::make_roformer_separator(models::load_msst_config((dir / "config.yaml").string()), ckpt);
  models::SeparationOptions o;
  at::Tensor want = separator->separate(mix, o);
  ASSERT_EQ(want.size(0), 2);
  at::Tensor vocals = read_samples(dir / "out" / "stereo" / "song" / "vocals.wav");
  at::Tensor instrumental = read_samples(dir / "out" / "stereo" / "song" / "instrumental.wav");
  EXPECT_LT((vocals - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  EXPECT_LT((instrumental + vocals - mix).norm().item<double>() / mix.norm().item<double>(), 1e-6);

  r = run_separate("-n " + (dir / "config.yaml").string() + " " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--checkpoint"), std::string::npos) << r.output;

  // Without -b the config's inference.batch_size, as MSST; --tta as MSST's --use_tta.
  yaml += "  batch_size: 3\n";
  { std::ofstream(dir / "batch3.yaml") << yaml; }
  r = run_separate("-n " + (dir / "batch3.yaml").string() + " --checkpoint " + ckpt +
                   " --tta --float32 --clip-mode none -q -o " + (dir / "tta").string() + " --json " +
                   (dir / "tta.json").string() + " " + (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream summary_in(dir / "tta.json");
  EXPECT_EQ(nlohmann::json::parse(summary_in)["files"][0]["batch_size"], 3);
  models::SeparationOptions tta;
  tta.tta = true;
  at::Tensor want_tta = separator->separate(mix, tta);
  at::Tensor vocals_tta = read_samples(dir / "tta" / "stereo" / "song" / "vocals.wav");
  EXPECT_LT((vocals_tta - want_tta[0]).norm().item<double>() / want_tta[0].norm().item<double>(), 1e-6);
  EXPECT_GT((vocals_tta - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-4);
  r = run_separate("--tta " + (dir / "song.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--tta has no meaning for htdemucs (a demucs model): --tta is MSST's test-time "
                          "augmentation, for RoFormer configurations"),
            std::string::npos)
      << r.output;

  // --low-memory (batch 1, eager, short windows) gives the same stems.
  r = run_separate("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt +
                   " --low-memory --float32 --clip-mode none -q -o " + (dir / "low").string() + " " +
                   (dir / "song.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  at::Tensor low = read_samples(dir / "low" / "stereo" / "song" / "vocals.wav");
  EXPECT_LT((low - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  r = run_separate("-n " + (dir / "config.yaml").string() + " --checkpoint " + ckpt + " --low-memory -b 2 " +
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
  write_noise_song(dir / "song.wav", 0.5);
  Result r = run_separate("-n " + config + " --checkpoint " + ckpt + " -b 2 --float32 --clip-mode none -o " +
                          (dir / "out").string() + " " + (dir / "song.wav").string() + " --json " +
                          (dir / "summary.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("separate: stereo on cpu in fp32 (--precision auto), loaded in "), std::string::npos)
      << r.output;
  // --precision auto (the default): MSST's autocast is for GPUs, so fp32 here.
  const auto summary = nlohmann::json::parse(std::ifstream(dir / "summary.json"));
  EXPECT_EQ(summary["precision"], "fp32");
  // The process's timeline (tools/gpu/cold-start.sh): each phase once, in the order of a run.
  std::vector<std::string> phases;
  for (const auto& m : summary["timeline"]["marks"]) phases.push_back(m["phase"]);
  const std::vector<std::string> order = {"command line parsed",     "model read",
                                          "weights on the device",   "separated: song.wav",
                                          "stems written: song.wav", "stems renamed into place: song.wav"};
  size_t at = 0;
  for (const auto& phase : phases)
    if (at < order.size() && phase == order[at]) ++at;
  EXPECT_EQ(at, order.size()) << summary["timeline"].dump();
  EXPECT_EQ(std::count(phases.begin(), phases.end(), "decoded: song.wav"), 1) << summary["timeline"].dump();
  // The bench's rows are of that precision too, named as it resolved.
  r = run_separate("-n " + config + " --checkpoint " + ckpt + " --bench --bench-seconds 1 --json " +
                   (dir / "bench.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto bench = nlohmann::json::parse(std::ifstream(dir / "bench.json"));
  ASSERT_EQ(bench["rows"].size(), 1u);
  EXPECT_EQ(bench["rows"][0]["precision"], "fp32");
  // With I/O: the runner itself on four copies of the track, as files.
  EXPECT_EQ(bench["rows"][0]["io_files"], 4);
  EXPECT_GT(bench["rows"][0]["realtime_with_io"].get<double>(), 0);
  EXPECT_NE(r.output.find("x with I/O"), std::string::npos) << r.output;
  // A song given: its copies are what the with-I/O column decodes; 0 files: no such column.
  r = run_separate("-n " + config + " --checkpoint " + ckpt + " --bench " + (dir / "song.wav").string() +
                   " --bench-io-files 2 --json " + (dir / "bench-song.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir / "bench-song.json"))["rows"][0]["io_files"], 2);
  r = run_separate("-n " + config + " --checkpoint " + ckpt + " --bench --bench-seconds 1 --bench-io-files 0 --json " +
                   (dir / "bench-none.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_FALSE(nlohmann::json::parse(std::ifstream(dir / "bench-none.json"))["rows"][0].contains("realtime_with_io"));
  at::Tensor mix = read_samples(dir / "song.wav");
  auto separator = models::make_roformer_separator(models::load_msst_config(config), ckpt);
  at::Tensor want = separator->separate(mix, models::SeparationOptions{});
  ASSERT_EQ(want.size(0), 2);
  at::Tensor vocals = read_samples(dir / "out" / "stereo" / "song" / "vocals.wav");
  at::Tensor instrumental = read_samples(dir / "out" / "stereo" / "song" / "instrumental.wav");
  EXPECT_LT((vocals - want[0]).norm().item<double>() / want[0].norm().item<double>(), 1e-6);
  EXPECT_LT((instrumental + vocals - mix).norm().item<double>() / mix.norm().item<double>(), 1e-6);

  // A top-level model_type overrides the guess: read as BS-RoFormer, the bands do not fit.
  std::ifstream in(config);
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  { std::ofstream(dir / "as_bs.yaml") << "model_type: bs_roformer\n" << yaml; }
  r = run_separate("-n " + (dir / "as_bs.yaml").string() + " --checkpoint " + ckpt + " -q -o " +
                   (dir / "out2").string() + " " + (dir / "song.wav").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("as_bs.yaml: BSRoformer freqs_per_bands add up to 1025 bins"), std::string::npos) << r.output;
}

// The small stereo BS-RoFormer of tests/fixtures/bs_roformer (stft_hop_length 128) with an MSST
// configuration: chunk_size 2944, one target; `inference` is the inference section's lines.
std::string bs_roformer_config(const std::string& inference) {
  std::ifstream meta_in(std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.json");
  auto kwargs = nlohmann::json::parse(meta_in)["kwargs"];
  std::string yaml = "audio:\n  chunk_size: 2944\n  num_channels: 2\n  sample_rate: 44100\nmodel:\n";
  for (const auto& [key, value] : kwargs.items()) yaml += "  " + key + ": " + value.dump() + "\n";
  return yaml + "training:\n  instruments: [vocals, other]\n  target_instrument: vocals\ninference:\n" + inference;
}

double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).norm().item<double>() / b.norm().item<double>();
}

// --overlap, --segment and their MSST and audio-separator spellings set the
// configuration's num_overlap and chunk_size: the stems are those of a
// configuration that says the same.
TEST(SeparateCli, MsstChunkingOptionsMapOntoTheConfig) {
  separate::test::TempDir dir;
  const std::string ckpt = std::string(STEMKIT_FIXTURES) + "/bs_roformer/stereo.ckpt";
  const std::string config = (dir / "config.yaml").string();
  { std::ofstream(config) << bs_roformer_config("  num_overlap: 2\n"); }
  write_noise_song(dir / "song.wav", 0.6);
  const at::Tensor mix = read_samples(dir / "song.wav");
  // The vocals of the fixture under an MSST config with these inference lines (and chunk_size).
  auto want = [&](const std::string& name, int64_t num_overlap, int64_t chunk_size) {
    const std::string path = (dir / (name + ".yaml")).string();
    std::string yaml = bs_roformer_config("  num_overlap: " + std::to_string(num_overlap) + "\n");
    yaml.replace(yaml.find("chunk_size: 2944"), 16, "chunk_size: " + std::to_string(chunk_size));
    { std::ofstream(path) << yaml; }
    return models::make_roformer_separator(models::load_msst_config(path), ckpt)->separate(mix, {})[0];
  };
  auto got = [&](const std::string& name, const std::string& options) {
    Result r =
        run_separate("-n " + config + " --checkpoint " + ckpt + " " + options + " --float32 --clip-mode none -q -o " +
                     (dir / name).string() + " " + (dir / "song.wav").string());
    EXPECT_EQ(r.code, 0) << options << "\n" << r.output;
    return read_samples(dir / name / "stereo" / "song" / "vocals.wav");
  };
  const at::Tensor plain = got("plain", ""), overlap4 = want("overlap4", 4, 2944);
  EXPECT_LT(relative_difference(plain, want("overlap2", 2, 2944)), 1e-6);
  EXPECT_GT(relative_difference(plain, overlap4), 1e-4) << "the fixture tells num_overlap 2 from 4";
  // 1 - 1/4 = 0.75; MSST's own name; audio-separator's.
  EXPECT_LT(relative_difference(got("o75", "--overlap 0.75"), overlap4), 1e-6);
  EXPECT_LT(relative_difference(got("n4", "--num-overlap 4"), overlap4), 1e-6);
  EXPECT_LT(relative_difference(got("mdxc4", "--mdxc_overlap 4"), overlap4), 1e-6);
  EXPECT_LT(relative_difference(got("o0", "--overlap 0"), want("overlap1", 1, 2944)), 1e-6);
  // --segment in seconds, in whole hops of 128: 0.1 s = 4410 samples -> 34 hops = 4352.
  EXPECT_LT(relative_difference(got("s01", "--segment 0.1"), want("chunk4352", 2, 4352)), 1e-6);
  EXPECT_LT(relative_difference(got("c3000", "--chunk_size 3000 --overlap 0.75"), want("chunk3000", 4, 3000)), 1e-6);
  // audio-separator's segment size counts STFT frames: 128 x (20 - 1) = 2432 samples.
  EXPECT_LT(relative_difference(got("f20", "--mdxc_segment_size 20 --batch_size 3"), want("chunk2432", 2, 2432)), 1e-6);

  // --explain says what the cutting came to and from where.
  Result explained = run_separate("-n " + config + " --checkpoint " + ckpt + " --explain --segment 0.1 --overlap 0.75");
  ASSERT_EQ(explained.code, 0) << explained.output;
  EXPECT_NE(explained.output.find("chunk_size: 4352 samples (0.10 s) (--segment 0.1: seconds x 44100 Hz, in whole STFT "
                                  "hops of 128)\n"),
            std::string::npos)
      << explained.output;
  EXPECT_NE(explained.output.find("num_overlap: 4 (a chunk every 1088 samples) (--overlap 0.75)\n"), std::string::npos)
      << explained.output;
  explained = run_separate("-n " + config + " --checkpoint " + ckpt + " --explain");
  EXPECT_NE(explained.output.find("chunk_size: 2944 samples (0.07 s) (the config's)\n"), std::string::npos)
      << explained.output;
  EXPECT_NE(explained.output.find("num_overlap: 2 (a chunk every 1472 samples) (the config's inference.num_overlap)"),
            std::string::npos)
      << explained.output;

  // What does not map is refused before the model loads, naming the option and the model.
  auto refused = [&](const std::string& model_options, const std::string& message) {
    Result r = run_separate(model_options + " -o " + (dir / "refused").string() + " " + (dir / "song.wav").string());
    EXPECT_EQ(r.code, 2) << model_options << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << model_options << "\n" << r.output;
    EXPECT_EQ(r.output.find("loaded in"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "refused"));
  };
  const std::string msst = "-n " + config + " --checkpoint " + ckpt;
  refused(msst + " --overlap 0.25",
          "--overlap 0.25: " + config +
              " (an MSST configuration) starts a chunk every chunk_size / num_overlap samples, an overlap of 1 - "
              "1/num_overlap; 0.25 lies between num_overlap 1 (--overlap 0) and 2 (--overlap 0.5)");
  refused(msst + " --shifts 2", "--shifts has no meaning for " + config + " (an MSST configuration): MSST's demix");
  refused(msst + " --seed 3", "--seed has no meaning for " + config + " (an MSST configuration)");
  refused(msst + " --download", "--download has no meaning for " + config +
                                    " (an MSST configuration): the model is "
                                    "given as a file");
  refused(msst + " --segment 1 --chunk-size 3000", "excludes");
  refused(msst + " --overlap 0.5 --num-overlap 2", "excludes");
  refused("-n " + kModel + " --num-overlap 4",
          "--num-overlap has no meaning for " + kModel + " (a demucs model file): demucs' overlap is a fraction");
  refused("-n " + kModel + " --mdxc_overlap 4", "--num-overlap has no meaning for " + kModel);
  refused("-n " + kModel + " --chunk-size 4000", "--chunk-size has no meaning for " + kModel);
  refused("-n " + kModel + " --mdxc_segment_size 256", "--mdxc_segment_size has no meaning for " + kModel);
  refused("-n " + kModel + " --gemm aten", "--gemm has no meaning for " + kModel +
                                               " (a demucs model file): it "
                                               "chooses the RoFormer layers' kernels");
  refused("-n " + kModel + " --exact-gelu", "--exact-gelu has no meaning for " + kModel);
  refused("-n " + kModel + " --checkpoint " + ckpt, "--checkpoint has no meaning for " + kModel);
  refused("-n " + kModel + " --model-dir " + dir.path().string(), "--model-dir has no meaning for " + kModel);
  // The demucs spellings stay demucs': --segment above the model's is the model's error, after it loads.
  Result r = run_separate("-n " + kModel + " --segment 100 -q -o " + (dir / "long").string() + " " +
                          (dir / "song.wav").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("does not fit"), std::string::npos) << r.output;
}

// Files, folders, lists and stdin; every file once, however it is named.
TEST(SeparateCli, FoldersListsAndStdin) {
  separate::test::TempDir dir;
  fs::create_directories(dir / "music" / "sub");
  write_noise_song(dir / "music" / "b.wav", 0.3);
  write_noise_song(dir / "music" / "sub" / "a.wav", 0.3);
  { std::ofstream(dir / "music" / "cover.jpg") << "not audio"; }
  Result r = run_separate("-n " + kModel + " -o " + (dir / "out").string() + " " + (dir / "music").string() + " " +
                          (dir / "music" / "b.wav").string() + " " + (dir / "music" / "." / "b.wav").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("separate: " + (dir / "music").string() + ": 2 audio files, 1 other file skipped\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("separate: 2 files to separate\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("separate: " + (dir / "music" / "b.wav").string() + " is given twice: separated once\n"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find((dir / "music" / "." / "b.wav").string() + " is the same file as " +
                          (dir / "music" / "b.wav").string()),
            std::string::npos)
      << r.output;
  for (const char* track : {"a", "b"})
    EXPECT_TRUE(fs::exists(dir / "out" / "small" / track / "vocals.wav")) << track << "\n" << r.output;
  // The count comes before the model loads.
  EXPECT_LT(r.output.find("files to separate"), r.output.find("loaded in")) << r.output;

  // '-': the list on stdin, relative to the current folder, as find prints it.
  { std::ofstream(dir / "found.txt") << (dir / "music" / "sub" / "a.wav").string() << "\n"; }
  r = run_separate("-n " + kModel + " -q -o " + (dir / "stdin").string() + " - < " + (dir / "found.txt").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "stdin" / "small" / "a" / "vocals.wav")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "stdin" / "small" / "b")) << r.output;

  // A folder without audio, and a missing file: both said, nothing done.
  fs::create_directories(dir / "empty");
  r = run_separate("-n " + kModel + " -o " + (dir / "none").string() + " " + (dir / "empty").string() + " " +
                   (dir / "missing.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find((dir / "empty").string() + ": no audio files in this folder"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find((dir / "missing.wav").string() + ": no such file or folder"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "none"));
}

TEST(SeparateCli, UsageErrorsSayWhatToDo) {
  separate::test::TempDir dir;
  write_noise_song(dir / "a.wav", 0.5);
  Result r = run_separate("-n htdemcs " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("did you mean 'htdemucs'"), std::string::npos) << r.output;
  r = run_separate("-n htdemucs --model-dir " + (dir / "empty").string() + " " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--download"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " " + (dir / "missing.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("missing.wav: no such file or folder"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no input files"), std::string::npos) << r.output;
  // A precision the device cannot run stops --bench before it measures anything.
  r = run_separate("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-precisions fp32,fp16");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--precision fp16 needs a GPU"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("x realtime"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-precisions fp32,auto");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--bench-precisions: name the precisions (fp32, fp16, bf16)"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " --precision fp64 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--precision fp64: expected auto, fp32, fp16 or bf16"), std::string::npos) << r.output;
  // A GPU the machine lacks is named with what it has, before any model loads.
  r = run_separate("-n " + kModel + " --device cuda:99 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find(at::hasCUDA() ? "--device cuda:99: this machine has " : "--device cuda:99: this libtorch"),
            std::string::npos)
      << r.output;
  // Typed options: a value outside the list is a usage error naming the list.
  r = run_separate("-n " + kModel + " --clip-mode soft " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--clip-mode"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rescale"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " --other-method sub --two-stems vocals " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("minus"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " --attention fast " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--attention"), std::string::npos) << r.output;
  r = run_separate("-n " + kModel + " --int24 --float32 " + (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--int24 and --float32 exclude each other"), std::string::npos) << r.output;
  // Where the stems or the summary cannot be written is found before any separation.
  fs::create_directories(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  if (::access((dir / "ro").c_str(), W_OK) != 0) {  // root writes anywhere: nothing to check then
    r = run_separate("-n " + kModel + " -o " + (dir / "ro").string() + " " + (dir / "a.wav").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find((dir / "ro").string()), std::string::npos) << r.output;
    r = run_separate("-n " + kModel + " -o " + (dir / "out").string() + " --json " + (dir / "ro" / "s.json").string() +
                     " " + (dir / "a.wav").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_FALSE(fs::exists(dir / "out")) << "nothing separated before the --json path was checked";
  }
  r = run_separate("-n " + kModel + " --json " + (dir / "no" / "such" / "dir" / "s.json").string() + " " +
                   (dir / "a.wav").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("s.json"), std::string::npos) << r.output;
  r = run_separate("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("patch set"), std::string::npos) << r.output;
}

// --explain: the plan, decided as a run would decide it, and no stems.
TEST(SeparateCli, ExplainPrintsThePlan) {
  separate::test::TempDir dir;
  Result r = run_separate("-n " + kModel + " --device cpu --explain -o " + (dir / "out").string());
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* field : {"precision: fp32", "batch: 1", "segment: ", "overlap: 0.25 (--overlap (default 0.25)",
                            "shifts: 1", "graphs: off", "attention on ", "host memory: block cache (the CPU runs",
                            "htdemucs blocks: reference (the CPU"})
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " in\n" << r.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "small")) << "--explain writes no stems";
  r = run_separate("-n " + kModel + " --device cpu --explain --json " + (dir / "plan.json").string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream in(dir / "plan.json");
  const nlohmann::json plan = nlohmann::json::parse(in);
  EXPECT_EQ(plan.at("precision").at("value").get<std::string>(), "fp32") << plan.dump(2);
  EXPECT_FALSE(plan.at("precision").at("reason").get<std::string>().empty()) << plan.dump(2);
  EXPECT_FALSE(plan.at("attention_calls").empty()) << "the probe names every call shape: " << plan.dump(2);
}

// On a CPU-only libtorch whose OpenBLAS runs threads of its own (Debian's),
// separate starts itself again with OMP_WAIT_POLICY=PASSIVE unless the user
// set the variable, and --explain's "cpu threads" line says so; a value the
// user gives is left alone.
TEST(SeparateCli, CpuRunsLetIdleOpenMpWorkersSleep) {
  Result r = run_separate("-n " + kModel + " --device cpu -j 2 --explain", "unset OMP_WAIT_POLICY;");
  ASSERT_EQ(r.code, 0) << r.output;
  if (separate::blas_threads_contend_with_openmp()) {
    EXPECT_NE(r.output.find("cpu threads: 2 threads, OMP_WAIT_POLICY=PASSIVE (idle OpenMP workers sleep at once"),
              std::string::npos)
        << r.output;
  } else {
    std::printf("[ SKIPPED  ] this libtorch has GPU support or its BLAS no threads of its own: no restart expected\n");
    EXPECT_NE(r.output.find("cpu threads: 2 threads (idle OpenMP workers spin before they sleep"), std::string::npos)
        << r.output;
  }
  r = run_separate("-n " + kModel + " --device cpu -j 2 --explain", "OMP_WAIT_POLICY=active");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("cpu threads: 2 threads, OMP_WAIT_POLICY=active (the environment's)"), std::string::npos)
      << r.output;
}

// --bench-trace on the CPU: the ATen ops of one more run as a Chrome trace,
// which tools/bench/trace_summary.py --cpu reads.
TEST(SeparateCli, BenchTraceRecordsTheCpuOps) {
  separate::test::TempDir dir;
  const std::string prefix = (dir / "trace").string();
  Result r = run_separate("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-graphs off --bench-trace " +
                          prefix);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto trace = nlohmann::json::parse(std::ifstream(prefix + "-0.json"));
  size_t convolutions = 0;
  for (const auto& e : trace.at("traceEvents"))
    if (e.at("cat") == "cpu_op" && e.at("name").get<std::string>().find("convolution") != std::string::npos &&
        !e.at("args").at("Input Dims").empty())
      ++convolutions;
  EXPECT_GT(convolutions, 0u) << "the convolutions, with their input shapes";
  // A folder that cannot be written fails the row, with its reason.
  r = run_separate("-n " + kModel + " --bench --device cpu --bench-seconds 1 --bench-graphs off --bench-trace " +
                   (dir / "missing" / "trace").string());
  EXPECT_NE(r.output.find("cannot write"), std::string::npos) << r.output;
}

// --completions: the scripts cmake --install installs, made from the option
// table, checked in a real bash with bash-completion. No input is needed.
TEST(SeparateCli, CompletionsOfferTheTablesOptionsAndValues) {
  Result zsh = run_separate("--completions zsh");
  ASSERT_EQ(zsh.code, 0) << zsh.output;
  EXPECT_NE(zsh.output.find("'--attention=[Force an attention backend"), std::string::npos) << zsh.output;
  EXPECT_EQ(run_separate("--completions tcsh").code, 2);
  const std::string library = "/usr/share/bash-completion/bash_completion";
  if (!fs::exists(library)) GTEST_SKIP() << "skipped: bash-completion is not installed (" << library << ")";
  separate::test::TempDir dir;
  Result bash = run_separate("--completions bash > " + (dir / "separate.bash").string());
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
