// Audio through FFmpeg's libraries, checked against the real ffmpeg tool
// (Debian's `ffmpeg` package): files it makes are read here to the same
// samples it decodes them to, files written here are what it reads back
// (codec, rate, length), and what FFmpeg cannot or must not read is refused
// with the file's name. Tests that need the tool skip, saying so, without it.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "runtime/audio/audio.h"

namespace fs = std::filesystem;
using namespace stemkit::audio;

namespace {

struct Tmp {
  fs::path dir = fs::temp_directory_path() / ("stemkit-audio-ffmpeg-" + std::to_string(::getpid()));
  Tmp() { fs::create_directories(dir); }
  ~Tmp() { fs::remove_all(dir); }
  std::string operator()(const std::string& name) const { return (dir / name).string(); }
};

// `command`'s exit status and stdout (stderr discarded).
std::pair<int, std::string> sh(const std::string& command) {
  std::string out;
  std::array<char, 65536> buf{};
  FILE* p = popen(command.c_str(), "r");
  if (!p) return {-1, ""};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool have_ffmpeg() { return sh("ffmpeg -version >/dev/null 2>&1 && ffprobe -version >/dev/null 2>&1").first == 0; }
#define REQUIRE_FFMPEG() \
  if (!have_ffmpeg()) GTEST_SKIP() << "skipped: the ffmpeg tool is not installed (apt-get install ffmpeg)"

std::string quote(const std::string& s) { return "'" + s + "'"; }

bool mp4_family(const std::string& name) {
  return name.size() > 4 && (name.substr(name.size() - 4) == ".m4a" || name.substr(name.size() - 4) == ".mp4");
}

// The ffmpeg tool's decoding of `path`: planar floats at the file's rate and channels.
Audio ffmpeg_tool_decode(const std::string& path, int channels) {
  auto [code, bytes] = sh("ffmpeg -v error -i " + quote(path) + " -map 0:a:0 -f f32le -c:a pcm_f32le -");
  EXPECT_EQ(code, 0) << path;
  Audio a;
  a.channels = channels;
  a.frames = static_cast<int64_t>(bytes.size() / sizeof(float) / static_cast<size_t>(channels));
  a.data.resize(static_cast<size_t>(a.frames) * channels);
  const float* inter = reinterpret_cast<const float*>(bytes.data());
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < a.frames; ++i) a.channel(c)[i] = inter[i * channels + c];
  return a;
}

// ffprobe's value of one field of the first audio stream ("codec_name", "sample_rate", ...).
std::string probe(const std::string& path, const std::string& field) {
  auto [code, out] = sh("ffprobe -v error -select_streams a:0 -show_entries stream=" + field +
                        " -of default=noprint_wrappers=1:nokey=1 " + quote(path));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return code == 0 ? out : "";
}

Audio sine(int rate, int channels, double seconds, double freq, float amplitude = 0.5f) {
  Audio a;
  a.samplerate = rate;
  a.channels = channels;
  a.frames = static_cast<int64_t>(rate * seconds);
  a.data.resize(static_cast<size_t>(channels) * a.frames);
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < a.frames; ++i)
      a.channel(c)[i] = amplitude * static_cast<float>(std::sin(2 * M_PI * freq * (c + 1) * i / rate));
  return a;
}

// The error's energy relative to the signal's, over the frames both have.
double relative_error(const Audio& want, const Audio& got) {
  double err = 0, sig = 0;
  const int64_t n = std::min(want.frames, got.frames);
  for (int c = 0; c < std::min(want.channels, got.channels); ++c)
    for (int64_t i = 0; i < n; ++i) {
      const double d = got.channel(c)[i] - want.channel(c)[i];
      err += d * d;
      sig += double(want.channel(c)[i]) * want.channel(c)[i];
    }
  return std::sqrt(err / sig);
}

void expect_error(const std::function<void()>& f, const std::string& name, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one with \"" << words << "\"";
  } catch (const stemkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

// Files the ffmpeg tool makes (lossy codecs, a video with a sound track) are
// read to the very samples the tool decodes them to: same length (encoder
// delay and padding trimmed alike; MP4 also the last frame's padding, which
// the tool keeps), same values.
TEST(AudioFfmpeg, ReadsWhatTheFfmpegToolMakesAsTheToolDecodesIt) {
  REQUIRE_FFMPEG();
  Tmp tmp;
  struct Case {
    const char* name;
    const char* args;
    const char* codec;
    int rate, channels;
  } cases[] = {
      {"a.mp3", "-c:a libmp3lame -b:a 192k", "mp3float", 44100, 2},
      {"b.m4a", "-c:a aac -b:a 128k", "aac", 44100, 2},
      {"c.opus", "-c:a libopus -b:a 96k", "opus", 48000, 2},
      {"d.ogg", "-c:a libvorbis", "vorbis", 44100, 2},
      {"e.mp3", "-c:a libmp3lame -ac 1 -ar 22050", "mp3float", 22050, 1},
      // A video file: its sound track, the pictures skipped.
      {"f.mp4", "-f lavfi -i testsrc=size=64x48:rate=10 -map 1:v -map 0:a -c:v mpeg4 -c:a aac -shortest", "aac", 44100,
       2},
      {"g.mkv", "-c:a flac", "flac", 44100, 2},  // FLAC in Matroska: not libsndfile's
  };
  for (const auto& c : cases) {
    const std::string path = tmp(c.name);
    const std::string make = "ffmpeg -v error -y -f lavfi -i 'sine=frequency=440:duration=1.3:sample_rate=44100' " +
                             std::string(c.args) + " -ac " + std::to_string(c.channels) + " " + quote(path) + " 2>&1";
    ASSERT_EQ(sh(make).first, 0) << make;
    Audio got = read_audio(path);
    EXPECT_EQ(got.decoder, "ffmpeg") << c.name;
    EXPECT_EQ(got.codec, c.codec) << c.name;
    EXPECT_EQ(got.samplerate, c.rate) << c.name;
    ASSERT_EQ(got.channels, c.channels) << c.name;
    Audio want = ffmpeg_tool_decode(path, c.channels);
    if (mp4_family(c.name)) {
      // The length MP4 declares, where the tool (libavformat 59) keeps the last AAC frame's padding.
      EXPECT_EQ(std::to_string(got.frames), probe(path, "duration_ts")) << c.name;
      EXPECT_LT(got.frames, want.frames) << c.name;
      EXPECT_GE(got.frames + 1024, want.frames) << c.name;
    } else {
      ASSERT_EQ(got.frames, want.frames) << c.name;
    }
    float diff = 0;
    for (int ch = 0; ch < got.channels; ++ch)
      for (int64_t i = 0; i < got.frames; ++i)
        diff = std::max(diff, std::fabs(got.channel(ch)[i] - want.channel(ch)[i]));
    EXPECT_LE(diff, 1e-6f) << c.name;
  }
}

// Every lossy format written here is what the ffmpeg tool reads back: the
// codec, the rate (Opus: 48 kHz), the length to the frame (the encoder's delay
// and padding recorded in the file), and the signal within the codec's loss.
// A WAV of 98 bytes whose LIST chunk claims 2 GB (found by the audio fuzzer):
// libavformat 59 sized a buffer from the claim and took 2 GB of memory. It is
// refused, naming the file, at no more memory than a small file costs.
// Measured in a child process, so that the peak is this read's alone.
TEST(AudioFfmpeg, AHeaderClaimingGigabytesCostsNoMemory) {
  Tmp tmp;
  const unsigned char wav[] = {
      'R',  'I',  'F',  'F',  0x80, 0x11, 0,    0,   'W',  'A',  'V', 'E', 'f',  'm', 't',  ' ',  0x10, 0,   0,    0,
      1,    0,    1,    0,    0x22, 0x56, 0,    0,   0x44, 0xac, 0,   0,   2,    0,   0x10, 0,    'L',  'I', 'S',  'T',
      0x1a, 0,    0,    0x7b, 'I',  'N',  'F',  'O', 'I',  'S',  'F', 'T', 0x0e, 0,   0,    0,    'L',  'a', 'v',  'f',
      '5',  0xde, '.',  '2',  '7',  '.',  '1',  '0', '0',  0,    'd', 'a', 't',  'h', ':',  0xf3, 0xf5, 'x', 0xf4, ',',
      0xf3, 0x14, 0xf2, '4',  0xf1, 0x8f, 0xf0, 'n', 'o',  'r',  'm', 'a', 'l',  9,   8,    0x87, 8,    0xfe};
  const std::string path = tmp("claims-2gb.wav");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(wav), sizeof wav);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      read_audio(path);
      ::_exit(1);  // read as audio: it is not
    } catch (const stemkit::Error& e) {
      ::_exit(std::string(e.what()).find("claims-2gb.wav") != std::string::npos ? 0 : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  int status = 0;
  struct rusage usage {};
  ASSERT_EQ(::wait4(child, &status, 0, &usage), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "0: refused naming the file";
  EXPECT_LT(usage.ru_maxrss, 256 * 1024) << "peak resident memory of the read, KiB";
}

TEST(AudioFfmpeg, WritesEveryLossyFormatTheToolReadsBack) {
  REQUIRE_FFMPEG();
  Tmp tmp;
  const Audio a = sine(44100, 2, 1.1, 440);
  struct Case {
    const char* name;
    const char* codec;
    int rate;
    double max_error;
  } cases[] = {{"s.mp3", "mp3", 44100, 0.05},
               {"s.ogg", "vorbis", 44100, 0.05},
               {"s.opus", "opus", 48000, 0.1},
               {"s.m4a", "aac", 44100, 0.05}};
  for (const auto& c : cases) {
    const std::string path = tmp(c.name);
    write_audio(path, a, Encoding::pcm16);
    EXPECT_EQ(probe(path, "codec_name"), c.codec) << c.name;
    EXPECT_EQ(probe(path, "sample_rate"), std::to_string(c.rate)) << c.name;
    Audio tool = ffmpeg_tool_decode(path, 2);
    const int64_t frames = c.rate == 44100 ? a.frames : std::llround(a.frames * double(c.rate) / 44100);
    Audio ours = read_audio(path);
    EXPECT_EQ(ours.frames, frames) << c.name;
    if (mp4_family(c.name)) {  // the tool keeps the last frame's padding; the file declares the length
      EXPECT_EQ(probe(path, "duration_ts"), std::to_string(frames));
      EXPECT_EQ(tool.frames, (frames + 1023) / 1024 * 1024) << c.name;
    } else {
      EXPECT_EQ(tool.frames, frames) << c.name;
    }
    tool.samplerate = c.rate;
    const Audio want = resample(Audio(a), c.rate);
    EXPECT_LT(relative_error(want, tool), c.max_error) << c.name;
  }
  EXPECT_TRUE(fs::is_empty(tmp.dir) ||
              std::none_of(fs::directory_iterator(tmp.dir), fs::directory_iterator(), [](const fs::directory_entry& e) {
                return e.path().string().find(".tmp-") != std::string::npos;
              }));
}

// --mp3-bitrate and --mp3-preset reach LAME: the tool sees the bitrate, and
// demucs' presets 2 and 7 (lame_set_quality) give different streams. The same
// samples give the same file (no version strings, no random Ogg serials).
TEST(AudioFfmpeg, BitrateAndPresetReachTheEncoder) {
  REQUIRE_FFMPEG();
  Tmp tmp;
  const Audio a = sine(44100, 2, 1.0, 440);
  OutputFormat f;
  f.bitrate_kbps = 128;
  write_audio(tmp("128.mp3"), a, f);
  EXPECT_EQ(probe(tmp("128.mp3"), "bit_rate"), "128000");
  f.mp3_preset = 7;
  write_audio(tmp("128-7.mp3"), a, f);
  std::ifstream p2(tmp("128.mp3"), std::ios::binary), p7(tmp("128-7.mp3"), std::ios::binary);
  const std::string b2((std::istreambuf_iterator<char>(p2)), {}), b7((std::istreambuf_iterator<char>(p7)), {});
  EXPECT_NE(b2, b7);
  for (const char* name : {"x.ogg", "y.opus", "z.m4a"}) {
    OutputFormat g;
    g.bitrate_kbps = 96;
    write_audio(tmp(std::string("1") + name), a, g);
    write_audio(tmp(std::string("2") + name), a, g);
    std::ifstream x(tmp(std::string("1") + name), std::ios::binary), y(tmp(std::string("2") + name), std::ios::binary);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(x)), {}),
              std::string((std::istreambuf_iterator<char>(y)), {}))
        << name;
    const double kbps = fs::file_size(tmp(std::string("1") + name)) * 8 / 1000.0 / 1.0;
    EXPECT_GT(kbps, 96 * 0.6) << name;
    EXPECT_LT(kbps, 96 * 1.6) << name;
  }
}

TEST(AudioFfmpeg, OutputFormatsAreCheckedUpFront) {
  EXPECT_NO_THROW(check_output_format("mp3", OutputFormat{}));
  for (const auto& f : output_formats()) EXPECT_NO_THROW(check_output_format(f, OutputFormat{})) << f;
  expect_error([] { check_output_format("aiff", OutputFormat{}); }, "aiff", "expected wav, flac, mp3");
  expect_error([] { check_output_format("mp3", OutputFormat(Encoding::pcm24)); }, "mp3", "24-bit or float");
  expect_error([] { check_output_format("flac", OutputFormat(Encoding::float32)); }, "FLAC", "integers");
  OutputFormat f;
  f.bitrate_kbps = 128;
  expect_error([&] { check_output_format("wav", f); }, "wav", "lossless");
  f.bitrate_kbps = 1000;
  expect_error([&] { check_output_format("opus", f); }, "opus at 1000 kbit/s", "expected 6 to 510");
  f.bitrate_kbps = 0;
  f.mp3_preset = 9;
  expect_error([&] { check_output_format("mp3", f); }, "mp3 preset 9", "2 (best quality) to 7");
  EXPECT_EQ(output_samplerate("opus", 44100), 48000);
  EXPECT_EQ(output_samplerate("mp3", 44100), 44100);
  EXPECT_EQ(default_bitrate_kbps("mp3"), 320);  // demucs' --mp3-bitrate default
}

// A write the encoder refuses (MP3 holds no 96 kHz) or that asks for float
// samples loses nothing: the file that was there stays, no temporary is left.
TEST(AudioFfmpeg, RefusedWritesLeaveTheOldFile) {
  Tmp tmp;
  write_audio(tmp("stem.mp3"), sine(44100, 2, 0.2, 440), Encoding::pcm16);
  const auto size = fs::file_size(tmp("stem.mp3"));
  expect_error([&] { write_audio(tmp("stem.mp3"), sine(96000, 2, 0.2, 440), Encoding::pcm16); }, "stem.mp3",
               "cannot hold 96000 Hz");
  expect_error([&] { write_audio(tmp("stem.mp3"), sine(44100, 2, 0.2, 440), Encoding::float32); }, "stem.mp3",
               "24-bit or float");
  expect_error([&] { write_audio(tmp("no/such/dir/stem.m4a"), sine(44100, 2, 0.2, 440), Encoding::pcm16); }, "stem.m4a",
               "cannot create the file");
  EXPECT_EQ(fs::file_size(tmp("stem.mp3")), size);
  for (const auto& e : fs::directory_iterator(tmp.dir))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(AudioFfmpeg, ChoosesLibsndfileWhereItIsExact) {
  Tmp tmp;
  const Audio a = sine(44100, 2, 0.2, 440);
  write_audio(tmp("a.wav"), a, Encoding::pcm24);
  write_audio(tmp("a.flac"), a, Encoding::pcm16);
  write_audio(tmp("a.mp3"), a, Encoding::pcm16);
  EXPECT_EQ(read_audio(tmp("a.wav")).decoder, "libsndfile");
  EXPECT_EQ(read_audio(tmp("a.wav")).codec, "pcm_s24");
  EXPECT_EQ(read_audio(tmp("a.flac")).codec, "flac (pcm_s16)");
  EXPECT_EQ(read_audio(tmp("a.mp3")).decoder, "ffmpeg");
  // The content decides, not the name: an MP3 named .wav is still read.
  fs::copy_file(tmp("a.mp3"), tmp("mislabelled.wav"));
  EXPECT_EQ(read_audio(tmp("mislabelled.wav")).codec, "mp3float");
  // A name with a colon is a file, not a URL of protocol "a".
  fs::copy_file(tmp("a.mp3"), tmp("a:b.mp3"));
  EXPECT_GT(read_audio(tmp("a:b.mp3")).frames, 0);
}

// Found by tests/fuzz/fuzz_audio: an AIFF header claiming 67108864 Hz made
// the resampling to 44.1 kHz zero frames long, and soxr wrote through null.
TEST(AudioFfmpeg, AbsurdRatesAreRefusedAndTinyResamplesAreEmpty) {
  Tmp tmp;
  for (const int rate : {67108864, 10}) {
    write_audio(tmp("x.wav"), sine(44100, 1, 0.01, 440), Encoding::pcm16);
    std::fstream f(tmp("x.wav"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24);  // the fmt chunk's sample rate, little-endian
    for (int i = 0; i < 4; ++i) f.put(static_cast<char>((rate >> (8 * i)) & 0xff));
    f.close();
    expect_error([&] { read_audio(tmp("x.wav")); }, "x.wav", "which no audio has; the file is damaged");
  }
  Audio one = sine(1536000, 2, 1.0 / 1536000, 440);
  Audio none = resample(std::move(one), 44100);
  EXPECT_EQ(none.frames, 0);
  EXPECT_EQ(none.channels, 2);
}

TEST(AudioFfmpeg, BadFilesNameTheFileAndTheProblem) {
  REQUIRE_FFMPEG();
  Tmp tmp;
  expect_error([&] { read_audio(tmp.dir.string()); }, tmp.dir.string(), "is a folder");
  // A video without sound.
  ASSERT_EQ(sh("ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=10:duration=1 -c:v mpeg4 " +
               quote(tmp("silent.mp4")) + " 2>&1")
                .first,
            0);
  expect_error([&] { read_audio(tmp("silent.mp4")); }, "silent.mp4", "has no audio track");
  // An MP3 cut short and one with a damaged frame in the middle.
  ASSERT_EQ(
      sh("ffmpeg -v error -y -f lavfi -i 'sine=duration=2' -c:a libmp3lame -b:a 128k " + quote(tmp("x.mp3")) + " 2>&1")
          .first,
      0);
  std::string bytes;
  {
    std::ifstream in(tmp("x.mp3"), std::ios::binary);
    bytes.assign((std::istreambuf_iterator<char>(in)), {});
  }
  std::mt19937 rng(3);
  std::string damaged = bytes;
  for (size_t i = damaged.size() / 2; i < damaged.size() / 2 + 600; ++i) damaged[i] = static_cast<char>(rng());
  std::ofstream(tmp("damaged.mp3"), std::ios::binary) << damaged;
  expect_error([&] { read_audio(tmp("damaged.mp3")); }, "damaged.mp3", "damaged mp3float audio after");
  std::ofstream(tmp("cut.mp3"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);  // its LAME header says 2 s
  expect_error([&] { read_audio(tmp("cut.mp3")); }, "cut.mp3", "truncated: its header announces 2.0");
  ASSERT_EQ(sh("ffmpeg -v error -y -f lavfi -i 'sine=duration=2' -c:a aac " + quote(tmp("x.m4a")) + " 2>&1").first, 0);
  fs::copy_file(tmp("x.m4a"), tmp("cut.m4a"), fs::copy_options::overwrite_existing);
  fs::resize_file(tmp("cut.m4a"), fs::file_size(tmp("x.m4a")) / 2);  // the index (moov) is at the end: lost
  expect_error([&] { read_audio(tmp("cut.m4a")); }, "cut.m4a", "moov atom not found");
  // A playlist naming another file: never opened (reading a file reads that file only).
  write_audio(tmp("secret.wav"), sine(44100, 2, 0.5, 440), Encoding::pcm16);
  std::ofstream(tmp("list.m3u8")) << "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n"
                                  << tmp("secret.wav") << "\n#EXT-X-ENDLIST\n";
  expect_error([&] { read_audio(tmp("list.m3u8")); }, "list.m3u8", "");
  std::ofstream(tmp("concat.txt")) << "ffconcat version 1.0\nfile '" << tmp("secret.wav") << "'\n";
  expect_error([&] { read_audio(tmp("concat.txt")); }, "concat.txt", "cannot read it as audio");
}

}  // namespace
