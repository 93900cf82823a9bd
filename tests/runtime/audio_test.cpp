// Audio in and out: round trips per format, resampling, channels, demucs'
// clipping modes, damaged files, atomic writes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <sndfile.h>

#include "runtime/audio/audio.h"

namespace fs = std::filesystem;
using namespace stemkit::audio;

namespace {

struct Tmp {
  fs::path dir = fs::temp_directory_path() / ("stemkit-audio-" + std::to_string(::getpid()));
  Tmp() { fs::create_directories(dir); }
  ~Tmp() { fs::remove_all(dir); }
  std::string operator()(const std::string& name) const { return (dir / name).string(); }
};

Audio sine(int rate, int channels, double seconds, double freq, float amplitude = 0.5f) {
  Audio a;
  a.samplerate = rate;
  a.channels = channels;
  a.frames = static_cast<int64_t>(rate * seconds);
  a.data.resize(static_cast<size_t>(channels) * a.frames);
  for (int c = 0; c < channels; ++c)
    for (int64_t i = 0; i < a.frames; ++i) a.channel(c)[i] = amplitude * std::sin(2 * M_PI * freq * i / rate + c);
  return a;
}

float max_diff(const Audio& a, const Audio& b) {
  float d = 0;
  for (size_t i = 0; i < a.data.size(); ++i) d = std::max(d, std::fabs(a.data[i] - b.data[i]));
  return d;
}

TEST(Audio, RoundTripsEveryOutputFormat) {
  Tmp tmp;
  Audio a = sine(44100, 2, 0.5, 440);
  struct Case {
    const char* name;
    Encoding enc;
    float tolerance;
  } cases[] = {{"a.wav", Encoding::pcm16, 1.0f / 32768 + 1e-6f},
               {"b.wav", Encoding::pcm24, 1.0f / 8388608 + 1e-7f},
               {"c.wav", Encoding::float32, 0.0f},
               {"d.flac", Encoding::pcm16, 1.0f / 32768 + 1e-6f},
               {"e.flac", Encoding::pcm24, 1.0f / 8388608 + 1e-7f}};
  for (const auto& c : cases) {
    write_audio(tmp(c.name), a, c.enc);
    Audio b = read_audio(tmp(c.name));
    EXPECT_EQ(b.samplerate, 44100) << c.name;
    EXPECT_EQ(b.channels, 2) << c.name;
    ASSERT_EQ(b.frames, a.frames) << c.name;
    EXPECT_LE(max_diff(a, b), c.tolerance) << c.name;
  }
  EXPECT_FALSE(fs::exists(tmp("a.wav.tmp-" + std::to_string(::getpid()))));  // no temporary left
}

// 16-bit output: x * 32768 rounded to nearest (ties to even), saturated to
// [-32768, 32767], NaN written as 0, the same in WAV and FLAC.
TEST(Audio, Pcm16RoundsToNearestAndSaturates) {
  Tmp tmp;
  Audio a;
  a.samplerate = 44100;
  a.channels = 2;
  const std::vector<float> left = {0.25f / 32768, 0.75f / 32768, 0.5f / 32768,  1.5f / 32768,
                                   -2.5f / 32768, -0.6f / 32768, 1.0f,          2.0f,
                                   -1.0f,         -3.0f,         std::nanf(""), 0.123456f};
  a.frames = static_cast<int64_t>(left.size());
  a.data = left;
  for (float v : left) a.data.push_back(-v);  // the right channel: the left negated
  const std::vector<float> want = {0, 1, 0, 2, -2, -1, 32767, 32767, -32768, -32768, 0, 4045};  // x 1/32768
  for (const char* name : {"r.wav", "r.flac"}) {
    write_audio(tmp(name), a, Encoding::pcm16);
    Audio b = read_audio(tmp(name));
    ASSERT_EQ(b.frames, a.frames) << name;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(b.channel(0)[i] * 32768, want[i]) << name << " left " << i;
      const float right = want[i] == 32767 ? -32768 : want[i] == -32768 ? 32767 : -want[i];
      EXPECT_EQ(b.channel(1)[i] * 32768, right) << name << " right " << i;
    }
  }
}

// 16-bit input is read as integers and scaled by 2^-15 here: the same floats
// as libsndfile's own float read, for every sample value, in both channels.
TEST(Audio, Pcm16ReadsAsLibsndfilesFloats) {
  Tmp tmp;
  std::vector<short> ints;
  for (int v = -32768; v <= 32767; ++v)
    ints.push_back(static_cast<short>(v)), ints.push_back(static_cast<short>(-1 - v));
  SF_INFO info{};
  info.samplerate = 44100;
  info.channels = 2;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(tmp("all.wav").c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(sf_writef_short(f, ints.data(), 65536), 65536);
  sf_close(f);
  Audio a = read_audio(tmp("all.wav"));
  ASSERT_EQ(a.frames, 65536);
  SF_INFO back{};
  f = sf_open(tmp("all.wav").c_str(), SFM_READ, &back);
  std::vector<float> floats(2 * 65536);
  ASSERT_EQ(sf_readf_float(f, floats.data(), 65536), 65536);
  sf_close(f);
  for (int64_t i = 0; i < a.frames; ++i)
    for (int c = 0; c < 2; ++c) {
      ASSERT_EQ(a.channel(c)[i], floats[2 * i + c]) << "frame " << i << " channel " << c;
      ASSERT_EQ(a.channel(c)[i] * 32768, ints[2 * i + c]);
    }
}

TEST(Audio, ResamplesKeepingPitchAndLevel) {
  Audio a = sine(48000, 2, 1.0, 1000);
  Audio b = resample(a, 44100);
  EXPECT_EQ(b.samplerate, 44100);
  EXPECT_EQ(b.frames, 44100);
  // Level: the RMS of a 0.5 sine is 0.354; pitch: 2 zero crossings per period.
  double rms = 0;
  int crossings = 0;
  for (int64_t i = 1000; i < 43100; ++i) {
    rms += b.channel(0)[i] * b.channel(0)[i];
    if ((b.channel(0)[i - 1] < 0) != (b.channel(0)[i] < 0)) ++crossings;
  }
  rms = std::sqrt(rms / 42100);
  EXPECT_NEAR(rms, 0.5 / std::sqrt(2.0), 0.005);
  EXPECT_NEAR(crossings, 2 * 1000 * 42100 / 44100.0, 3);
  EXPECT_EQ(resample(b, 44100).data, b.data);  // same rate: unchanged
}

TEST(Audio, ChannelsConvert) {
  Audio mono = sine(8000, 1, 0.1, 300);
  Audio stereo = to_channels(mono, 2);
  ASSERT_EQ(stereo.channels, 2);
  EXPECT_TRUE(std::equal(stereo.channel(1), stereo.channel(1) + stereo.frames, mono.channel(0)));
  Audio back = to_channels(stereo, 1);
  EXPECT_LE(max_diff(back, mono), 1e-7f);
  EXPECT_THROW(to_channels(stereo, 3), stemkit::Error);
}

TEST(Audio, ClippingModesAreDemucs) {
  Audio a = sine(8000, 1, 0.01, 300, 2.0f);  // peaks near 2
  float peak = 0;
  for (float v : a.data) peak = std::max(peak, std::fabs(v));
  Audio r = a;
  prevent_clip(r, Clip::rescale);
  EXPECT_NEAR(r.data[5], a.data[5] / (1.01f * peak), 1e-6);
  Audio c = a;
  prevent_clip(c, Clip::clamp);
  EXPECT_LE(*std::max_element(c.data.begin(), c.data.end()), 0.99f);
  Audio quiet = sine(8000, 1, 0.01, 300, 0.5f), q2 = quiet;
  prevent_clip(q2, Clip::rescale);  // max(1.01 * 0.5, 1) = 1: unchanged
  EXPECT_EQ(q2.data, quiet.data);
  EXPECT_EQ(parse_clip("none"), Clip::none);
  EXPECT_THROW(parse_clip("soft"), stemkit::Error);
}

// Writing from a view with a clip mode gives the same file as clipping a
// copy and writing that: every encoding and mode, over several of the
// writer's blocks (65536 frames) and a short last one.
TEST(Audio, ClippingWhileWritingGivesTheSameFile) {
  Tmp tmp;
  Audio a = sine(44100, 2, 3.4, 440, 1.7f);  // 149940 frames, peaks near 1.7
  a.data[7] = std::nanf("");
  // The file's bytes, but for the time stamp libsndfile writes into a float
  // WAV's PEAK chunk ("PEAK", size, version, time stamp in seconds): two
  // writes a second apart differ there and nowhere else.
  auto bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string b(std::istreambuf_iterator<char>(in), {});
    if (const size_t peak = b.find("PEAK"); peak != std::string::npos && peak + 16 <= b.size())
      b.replace(peak + 12, 4, 4, '\0');
    return b;
  };
  struct Case {
    const char* ext;
    Encoding enc;
  } cases[] = {
      {".wav", Encoding::pcm16}, {".wav", Encoding::pcm24}, {".wav", Encoding::float32}, {".flac", Encoding::pcm16}};
  for (const auto& c : cases)
    for (Clip clip : {Clip::none, Clip::rescale, Clip::clamp, Clip::tanh}) {
      const std::string tag = std::string(c.ext) + " encoding " + std::to_string(static_cast<int>(c.enc)) + " clip " +
                              std::to_string(static_cast<int>(clip));
      Audio copy = a;
      prevent_clip(copy, clip);
      write_audio(tmp("copy" + std::string(c.ext)), copy, c.enc);
      write_audio(tmp("view" + std::string(c.ext)), view(a), c.enc, clip);
      const std::string want = bytes(tmp("copy" + std::string(c.ext)));
      ASSERT_GT(want.size(), 1000u) << tag;  // a file with the samples in it
      EXPECT_TRUE(want == bytes(tmp("view" + std::string(c.ext)))) << tag;
    }
  EXPECT_TRUE(a.data[8] == sine(44100, 2, 3.4, 440, 1.7f).data[8]);  // the view's samples untouched
}

// A FLAC whose header does not say how long it is (as an encoder writing to a
// pipe leaves it; libsndfile reports SF_COUNT_MAX frames): read whole, over
// several of the reader's growing blocks, with no room reserved for the claim.
TEST(Audio, ReadsAFlacOfUnknownLength) {
  Tmp tmp;
  Audio a = sine(44100, 2, 30.0, 440);  // 1323000 frames: more than one block of 2^20
  write_audio(tmp("unknown.flac"), a, Encoding::pcm16);
  Audio want = read_audio(tmp("unknown.flac"));
  {
    // STREAMINFO's 36-bit total sample count (bytes 21 to 25, low nibble first) to 0: unknown.
    std::fstream f(tmp("unknown.flac"), std::ios::in | std::ios::out | std::ios::binary);
    char b[26];
    f.read(b, 26);
    ASSERT_EQ(std::string(b, 4), "fLaC");
    b[21] = static_cast<char>(b[21] & 0xf0);
    b[22] = b[23] = b[24] = b[25] = 0;
    f.seekp(0);
    f.write(b, 26);
  }
  SF_INFO info{};
  SNDFILE* s = sf_open(tmp("unknown.flac").c_str(), SFM_READ, &info);
  ASSERT_NE(s, nullptr);
  sf_close(s);
  EXPECT_GE(info.frames, sf_count_t{1} << 28);  // the header no longer says
  Audio b = read_audio(tmp("unknown.flac"));
  ASSERT_EQ(b.frames, a.frames);
  EXPECT_EQ(b.data, want.data);
}

TEST(Audio, DamagedAndMissingFilesNameTheFile) {
  Tmp tmp;
  auto expect_error = [](const std::string& path, const std::string& words) {
    try {
      read_audio(path);
      FAIL() << path << " was read";
    } catch (const stemkit::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error(tmp("missing.wav"), "no such file");
  { std::ofstream(tmp("empty.wav")); }
  expect_error(tmp("empty.wav"), "cannot read it as audio");
  std::mt19937 rng(7);
  {
    std::ofstream out(tmp("noise.flac"), std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>(rng()));
  }
  expect_error(tmp("noise.flac"), "cannot read it as audio");
  // A WAV cut in half: the header announces more frames than there are.
  write_audio(tmp("full.wav"), sine(44100, 2, 0.5, 440), Encoding::pcm16);
  fs::copy_file(tmp("full.wav"), tmp("cut.wav"));
  fs::resize_file(tmp("cut.wav"), fs::file_size(tmp("full.wav")) / 2);
  expect_error(tmp("cut.wav"), "truncated");
}

TEST(Audio, WritesAreAtomicAndRefuseWhatTheyCannotDo) {
  Tmp tmp;
  Audio a = sine(44100, 2, 0.1, 440);
  write_audio(tmp("stem.wav"), a, Encoding::pcm16);
  auto before = fs::file_size(tmp("stem.wav"));
  EXPECT_THROW(write_audio(tmp("stem.flac"), a, Encoding::float32), stemkit::Error);
  EXPECT_THROW(write_audio(tmp("stem.mp4"), a, Encoding::pcm16), stemkit::Error);
  EXPECT_THROW(write_audio(tmp("no/such/dir/stem.wav"), a, Encoding::pcm16), stemkit::Error);
  EXPECT_EQ(fs::file_size(tmp("stem.wav")), before);
  for (const auto& e : fs::directory_iterator(tmp.dir))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST(Audio, ReadsOggAndMp3WhenLibsndfileCanMakeThem) {
  Tmp tmp;
  Audio a = sine(44100, 2, 0.5, 440);
  for (auto [name, format] :
       {std::pair{"x.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS}, {"x.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III}}) {
    SF_INFO info{};
    info.samplerate = 44100;
    info.channels = 2;
    info.format = format;
    SNDFILE* f = sf_open(tmp(name).c_str(), SFM_WRITE, &info);
    if (!f) {
      std::printf("skipped %s: this libsndfile cannot write it (%s)\n", name, sf_strerror(nullptr));
      continue;
    }
    std::vector<float> inter(a.data.size());
    for (int64_t i = 0; i < a.frames; ++i)
      for (int c = 0; c < 2; ++c) inter[i * 2 + c] = a.channel(c)[i];
    sf_writef_float(f, inter.data(), a.frames);
    sf_close(f);
    Audio b = read_audio(tmp(name));
    EXPECT_EQ(b.channels, 2) << name;
    EXPECT_EQ(b.samplerate, 44100) << name;
    EXPECT_GT(b.frames, a.frames * 9 / 10) << name;  // lossy codecs add or drop a little
  }
}

}  // namespace
