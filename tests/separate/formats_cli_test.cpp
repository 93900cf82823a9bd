// The `separate` binary's formats end to end, with the small HTDemucs of
// tests/fixtures/htdemucs on the CPU: inputs made by the real ffmpeg tool
// (MP3, M4A, Opus, and a video's sound track) are separated and every output
// format is written, then read back here and by the tool (codec, rate,
// length); format errors are usage errors found before the model loads.
// Tests that need the ffmpeg tool skip, saying so, without it.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/audio/audio.h"
#include "tests/separate/test_support.h"
#include "tests/separate/run_command.h"

namespace {

using namespace stemkit;
namespace fs = std::filesystem;
const std::string kModel = std::string(STEMKIT_FIXTURES) + "/htdemucs/small.th";

using Result = separate::test::CliResult;
Result sh(const std::string& command) { return separate::test::run_shell(command); }
Result run(const std::string& args) { return separate::test::run_separate(args); }

bool have_ffmpeg() { return sh("ffmpeg -version >/dev/null && ffprobe -version >/dev/null").code == 0; }

std::string probe(const fs::path& path, const std::string& field) {
  Result r = sh("ffprobe -v error -select_streams a:0 -show_entries stream=" + field +
                " -of default=noprint_wrappers=1:nokey=1 '" + path.string() + "'");
  while (!r.output.empty() && r.output.back() == '\n') r.output.pop_back();
  return r.code == 0 ? r.output : "";
}

// Inputs as people have them, made by the ffmpeg tool from 1.5 s of a chord
// with noise (stereo, 44.1 kHz; Opus at 48 kHz).
void make_inputs(const fs::path& dir) {
  const std::string source =
      "ffmpeg -v error -y -f lavfi -i 'aevalsrc=0.3*sin(2*PI*220*t)+0.2*sin(2*PI*330*t)+0.05*(random(0)-0.5)|"
      "0.3*sin(2*PI*277*t)+0.05*(random(1)-0.5):s=44100:d=1.5' ";
  for (const auto& [name, args] : std::initializer_list<std::pair<const char*, const char*>>{
           {"song.mp3", "-c:a libmp3lame -b:a 192k"},
           {"song2.m4a", "-c:a aac -b:a 160k"},
           {"song3.opus", "-c:a libopus -b:a 128k"},
           {"clip.mp4", "-f lavfi -i testsrc=size=64x48:rate=10 -map 1:v -map 0:a -c:v mpeg4 -c:a aac -shortest"}}) {
    Result r = sh(source + args + " '" + (dir / name).string() + "'");
    ASSERT_EQ(r.code, 0) << name << ": " << r.output;
  }
}

TEST(SeparateFormats, LossyInputsToEveryOutputFormat) {
  if (!have_ffmpeg()) GTEST_SKIP() << "skipped: the ffmpeg tool is not installed (apt-get install ffmpeg)";
  separate::test::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(make_inputs(dir.path()));
  const std::string inputs = (dir / "song.mp3").string() + " " + (dir / "song2.m4a").string() + " " +
                             (dir / "song3.opus").string() + " " + (dir / "clip.mp4").string();
  struct Case {
    const char* format;  // --format (or the flag that says it)
    const char* args;
    const char* codec;  // ffprobe's name of what the stems hold
    int rate;
  } cases[] = {{"wav", "--format wav", "pcm_s16le", 44100},
               {"wav", "--format wav --float32", "pcm_f32le", 44100},
               {"flac", "--flac --int24", "flac", 44100},
               {"mp3", "--mp3 --mp3-bitrate 192 --mp3-preset 5", "mp3", 44100},
               {"ogg", "--format ogg --bitrate 160", "vorbis", 44100},
               {"opus", "--format opus", "opus", 48000},
               {"m4a", "--format m4a --bitrate 192", "aac", 44100}};
  for (const auto& c : cases) {
    const fs::path out = dir / (std::string("out-") + c.format + (std::strstr(c.args, "float") ? "f" : ""));
    const fs::path json = out.string() + ".json";
    Result r = run("-n " + kModel + " --shifts 0 " + c.args + " -o " + out.string() + " --json " + json.string() + " " +
                   inputs);
    ASSERT_EQ(r.code, 0) << c.args << "\n" << r.output;
    if (std::string(c.format) == "opus") EXPECT_NE(r.output.find("resampled to 48000 Hz"), std::string::npos);
    std::ifstream in(json);
    const auto files = nlohmann::json::parse(in)["files"];
    ASSERT_EQ(files.size(), 4u);
    const char* input_codecs[] = {"mp3float", "aac", "opus", "aac"};
    for (size_t k = 0; k < files.size(); ++k) {
      const auto& f = files[k];
      EXPECT_EQ(f["status"], "ok") << f.dump();
      EXPECT_EQ(f["decoder"], "ffmpeg") << f.dump();
      EXPECT_EQ(f["codec"], input_codecs[k]) << f.dump();
      EXPECT_NEAR(f["seconds"].get<double>(), 1.5, 0.01) << f.dump();
      for (const auto& [stem, path] : f["outputs"].items()) {
        const fs::path p = path.get<std::string>();
        ASSERT_TRUE(fs::exists(p)) << p;
        EXPECT_EQ(p.extension(), std::string(".") + c.format);
        // Read back here (our decoder) and by the real tool.
        audio::Audio a = audio::read_audio(p.string());
        EXPECT_EQ(a.samplerate, c.rate) << p;
        EXPECT_EQ(a.channels, 2) << p;
        EXPECT_NEAR(static_cast<double>(a.frames) / c.rate, 1.5, 1.0 / 44100 + 1e-9) << p;
        EXPECT_EQ(probe(p, "codec_name"), c.codec) << p;
        EXPECT_EQ(probe(p, "sample_rate"), std::to_string(c.rate)) << p;
        double energy = 0;
        for (float v : a.data) energy += double(v) * v;
        EXPECT_GT(energy, 0) << p << ": a stem of silence";
      }
    }
    for (const auto& e : fs::recursive_directory_iterator(out))
      EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

// Format errors exit 2 before any model loads: the model named here does not
// exist, so an error that names the model instead would mean it was tried.
TEST(SeparateFormats, FormatErrorsAreUsageErrorsBeforeTheModel) {
  separate::test::TempDir dir;
  const std::string song = (dir / "song.wav").string();
  audio::Audio a;
  a.samplerate = 44100;
  a.channels = 2;
  a.frames = 4410;
  a.data.assign(2 * 4410, 0.1f);
  audio::write_audio(song, a, audio::Encoding::pcm16);
  const std::string model = "-n " + (dir / "missing.th").string() + " -o " + (dir / "out").string() + " " + song;
  const std::pair<const char*, const char*> cases[] = {
      {"--format mp3 --int24", "--int24 is for wav and flac"},
      {"--mp3 --float32", "--float32 is for wav and flac"},
      {"--mp3 --flac", "--flac and --mp3 exclude each other"},
      {"--format ogg --mp3", "--mp3 and --format ogg exclude each other"},
      {"--format ogg --mp3-bitrate 128", "--mp3-bitrate is for --format mp3"},
      {"--mp3-preset 5", "--mp3-preset is for --format mp3"},
      {"--mp3 --mp3-preset 9", "--mp3-preset"},
      {"--mp3 --mp3-bitrate 400", "--mp3-bitrate"},
      {"--bitrate 128", "--bitrate is for mp3, ogg, opus and m4a; wav is lossless"},
      {"--format opus --bitrate 900", "opus at 900 kbit/s: expected 6 to 510"},
      {"--mp3 --bitrate 128 --mp3-bitrate 192", "give one"},
      {"--format aiff", "--format"},
  };
  for (const auto& [args, words] : cases) {
    Result r = run(std::string(args) + " " + model);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(words), std::string::npos) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("missing.th"), std::string::npos) << args << ": the model was looked at\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
}

}  // namespace
