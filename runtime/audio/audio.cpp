#include "runtime/audio/audio.h"

#include <sndfile.h>
#include <soxr.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "runtime/error.h"

namespace stemkit::audio {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// Frames converted and handed to libsndfile at a time: 256 KB of 16-bit
// stereo, a buffer that stays in the cache (a whole stem's buffer would be
// tens of MB of fresh pages) and a few hundred writes for a 3-minute stem
// (from floats, libsndfile itself writes 8 KB at a time: about 3900).
constexpr int64_t kBlockFrames = int64_t{1} << 16;

// Planar float samples in [-1, 1) as interleaved 16-bit integers: x * 32768,
// saturated to [-32768, 32767], rounded to nearest (ties to even, as lrintf
// and libsndfile 1.2.1 and later round; 1.2.0 rounds down), NaN to 0. Adding
// and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an
// integer in the FPU's rounding mode, without lrintf's call per sample
// (three times faster on the development machine). `f` is the clip mode's
// transform, applied first. Frames [first, first + n) into out.
template <class F>
void to_pcm16(const AudioView& a, int64_t first, int64_t n, const F& f, int16_t* out) {
  for (int c = 0; c < a.channels; ++c) {
    const float* src = a.data + static_cast<size_t>(c) * a.frames + first;
    int16_t* dst = out + c;
    for (int64_t i = 0; i < n; ++i) {
      float v = f(src[i]) * 32768.0f;
      v = v == v ? std::min(std::max(v, -32768.0f), 32767.0f) : 0.0f;
      dst[i * a.channels] = static_cast<int16_t>((v + 12582912.0f) - 12582912.0f);
    }
  }
}

template <class F>
void interleave(const AudioView& a, int64_t first, int64_t n, const F& f, float* out) {
  for (int c = 0; c < a.channels; ++c) {
    const float* src = a.data + static_cast<size_t>(c) * a.frames + first;
    for (int64_t i = 0; i < n; ++i) out[i * a.channels + c] = f(src[i]);
  }
}

// demucs' rescale divisor: max(1.01 * peak, 1).
float rescale_divisor(const float* data, size_t n) {
  float peak = 0;
  for (size_t i = 0; i < n; ++i) peak = std::max(peak, std::fabs(data[i]));
  return std::max(1.01f * peak, 1.0f);
}

// Calls body(transform) with the clip mode as a per-sample transform: the
// same operation prevent_clip applies in place, so the same values.
template <class Body>
void with_clip(const AudioView& a, Clip mode, const Body& body) {
  switch (mode) {
    case Clip::none: return body([](float v) { return v; });
    case Clip::rescale: {
      const float div = rescale_divisor(a.data, static_cast<size_t>(a.channels) * static_cast<size_t>(a.frames));
      return body([div](float v) { return v / div; });
    }
    case Clip::clamp: return body([](float v) { return std::clamp(v, -0.99f, 0.99f); });
    case Clip::tanh: return body([](float v) { return std::tanh(v); });
  }
}

}  // namespace

Audio read_audio(const std::string& path) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw Error("{}: no such file", path);
    throw Error(
        "{}: cannot read it as audio ({}); "
        "supported: WAV, FLAC, OGG/Vorbis, MP3 and the other formats libsndfile reads",
        path, sf_strerror(nullptr));
  }
  // A truncated WAV/AIFF: libsndfile shortens the stream to what is there and
  // only says so in its log ("data : 88200 (should be 44078)").
  char log[8192] = {};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
  std::string log_text = log;
  for (size_t pos = 0; (pos = log_text.find("\ndata", pos)) != std::string::npos; ++pos) {
    size_t end = log_text.find('\n', pos + 1);
    std::string line = log_text.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    if (line.find("(should be") != std::string::npos) {
      sf_close(f);
      throw Error("{}: truncated: {} bytes of audio data; the file was cut short, export it again", path, line);
    }
  }
  Audio a;
  a.samplerate = info.samplerate;
  a.channels = info.channels;
  if (info.frames <= 0 || info.channels <= 0) {
    sf_close(f);
    throw Error("{}: the file holds no audio", path);
  }
  // Read interleaved in blocks (the declared length may be wrong for damaged
  // files), then de-interleaved into planes. 16-bit PCM is read as integers
  // and scaled here: libsndfile then reads each block in one call, where for
  // floats it reads and converts 8 KB at a time; the samples are the same
  // (libsndfile's float is the integer times 2^-15 too).
  const bool pcm16 = (info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_PCM_16;
  const size_t ch = static_cast<size_t>(info.channels);
  const sf_count_t block = sf_count_t{1} << 20;  // frames per call
  std::vector<int16_t> ints;
  std::vector<float> floats;
  size_t have = 0;  // samples read
  // A stream whose header does not say its length (a FLAC written to a pipe:
  // libsndfile reports SF_COUNT_MAX), or claims more than 2^28 frames (about
  // 100 minutes at 44.1 kHz), gets no room reserved for that claim.
  const bool length_known = info.frames < (sf_count_t{1} << 28);
  auto read_all = [&](auto& buffer, auto read) {
    // Room for the declared length and one frame more, grown (doubling) only
    // when a file holds more: each call reads at most what fits, so a
    // well-formed file is read in place, never copied.
    buffer.resize(static_cast<size_t>(length_known ? info.frames + 1 : block) * ch);
    for (sf_count_t got;; have += static_cast<size_t>(got) * ch) {
      if (buffer.size() - have < ch) buffer.resize(std::max(2 * buffer.size(), have + static_cast<size_t>(block) * ch));
      const sf_count_t room = static_cast<sf_count_t>((buffer.size() - have) / ch);
      if ((got = read(f, buffer.data() + have, std::min(block, room))) <= 0) break;
    }
  };
  if (pcm16)
    read_all(ints, sf_readf_short);
  else
    read_all(floats, sf_readf_float);
  int err = sf_error(f);
  std::string why = err ? sf_strerror(f) : "";
  sf_close(f);
  a.frames = static_cast<int64_t>(have / ch);
  if (err) throw Error("{}: read error after {} frames: {}", path, a.frames, why);
  if (a.frames == 0) throw Error("{}: the file holds no audio", path);
  if (length_known && a.frames < info.frames)
    throw Error("{}: truncated: the header announces {} frames, the file holds {}", path, info.frames, a.frames);
  a.data.resize(have);
  for (size_t c = 0; c < ch; ++c) {
    float* dst = a.data.data() + c * static_cast<size_t>(a.frames);
    if (pcm16)
      for (int64_t i = 0; i < a.frames; ++i) dst[i] = static_cast<float>(ints[i * ch + c]) * (1.0f / 32768);
    else
      for (int64_t i = 0; i < a.frames; ++i) dst[i] = floats[i * ch + c];
  }
  return a;
}

Audio resample(Audio in, int samplerate) {
  if (samplerate <= 0) throw std::invalid_argument("resample: the sample rate must be positive");
  if (in.samplerate == samplerate) return in;  // moved out, no copy
  Audio out;
  out.samplerate = samplerate;
  out.channels = in.channels;
  double ratio = double(samplerate) / in.samplerate;
  out.frames = static_cast<int64_t>(std::llround(in.frames * ratio));
  out.data.assign(static_cast<size_t>(out.frames) * out.channels, 0.f);
  soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  for (int c = 0; c < in.channels; ++c) {
    size_t done = 0;
    soxr_error_t e = soxr_oneshot(in.samplerate, samplerate, 1, in.channel(c), in.frames, nullptr, out.channel(c),
                                  out.frames, &done, nullptr, &quality, nullptr);
    if (e) throw Error("resampling failed: {}", e);
  }
  return out;
}

Audio to_channels(Audio in, int channels) {
  if (in.channels == channels) return in;  // moved out, no copy
  Audio out;
  out.samplerate = in.samplerate;
  out.channels = channels;
  out.frames = in.frames;
  out.data.resize(static_cast<size_t>(channels) * in.frames);
  if (channels == 1) {
    for (int64_t i = 0; i < in.frames; ++i) {
      float sum = 0;
      for (int c = 0; c < in.channels; ++c) sum += in.channel(c)[i];
      out.channel(0)[i] = sum / in.channels;
    }
  } else if (in.channels == 1) {
    for (int c = 0; c < channels; ++c) std::copy(in.channel(0), in.channel(0) + in.frames, out.channel(c));
  } else if (in.channels > channels) {
    std::copy(in.data.begin(), in.data.begin() + out.data.size(), out.data.begin());
  } else {
    throw Error("cannot turn {} channels into {}", in.channels, channels);
  }
  return out;
}

Clip parse_clip(const std::string& name) {
  if (name == "rescale") return Clip::rescale;
  if (name == "clamp") return Clip::clamp;
  if (name == "tanh") return Clip::tanh;
  if (name == "none") return Clip::none;
  throw Error("clip mode \"{}\": expected rescale, clamp, tanh or none", name);
}

void prevent_clip(Audio& a, Clip mode) {
  switch (mode) {
    case Clip::none: return;
    case Clip::rescale: {
      const float div = rescale_divisor(a.data.data(), a.data.size());
      for (float& v : a.data) v /= div;
      return;
    }
    case Clip::clamp:
      for (float& v : a.data) v = std::clamp(v, -0.99f, 0.99f);
      return;
    case Clip::tanh:
      for (float& v : a.data) v = std::tanh(v);
      return;
  }
}

void write_audio(const std::string& path, const Audio& a, Encoding encoding) {
  if (a.data.size() != static_cast<size_t>(a.channels) * static_cast<size_t>(a.frames))
    throw std::invalid_argument(path + ": write_audio: " + std::to_string(a.data.size()) + " samples for " +
                                std::to_string(a.channels) + " channels of " + std::to_string(a.frames) + " frames");
  write_audio(path, view(a), encoding, Clip::none);
}

void write_audio(const std::string& path, const AudioView& a, Encoding encoding, Clip clip) {
  std::string ext = lower_extension(path);
  SF_INFO info{};
  info.samplerate = a.samplerate;
  info.channels = a.channels;
  int sub = encoding == Encoding::pcm16   ? SF_FORMAT_PCM_16
            : encoding == Encoding::pcm24 ? SF_FORMAT_PCM_24
                                          : SF_FORMAT_FLOAT;
  if (ext == ".wav")
    info.format = SF_FORMAT_WAV | sub;
  else if (ext == ".flac" && encoding != Encoding::float32)
    info.format = SF_FORMAT_FLAC | sub;
  else if (ext == ".flac")
    throw Error("{}: FLAC stores integers; use 16 or 24 bits, or a .wav file for float", path);
  else
    throw Error("{}: unsupported output extension \"{}\"; use .wav or .flac", path, ext);
  if (!sf_format_check(&info)) throw Error("{}: libsndfile cannot write this format with these settings", path);
  // Write beside the target, then rename: readers never see a partial stem.
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw Error("{}: cannot create the file ({})", path, sf_strerror(nullptr));
  sf_count_t written = 0;
  // 16-bit: converted here and written as integers, which libsndfile writes
  // as they are. Else interleaved floats, which it converts (saturating).
  if (encoding != Encoding::pcm16) sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const size_t block = static_cast<size_t>(std::min(a.frames, kBlockFrames)) * static_cast<size_t>(a.channels);
  std::vector<int16_t> pcm(encoding == Encoding::pcm16 ? block : 0);
  std::vector<float> interleaved(encoding == Encoding::pcm16 ? 0 : block);
  with_clip(a, clip, [&](const auto& transform) {
    for (int64_t first = 0; first < a.frames; first += kBlockFrames) {
      const int64_t n = std::min(kBlockFrames, a.frames - first);
      sf_count_t done;
      if (encoding == Encoding::pcm16) {
        to_pcm16(a, first, n, transform, pcm.data());
        done = sf_writef_short(f, pcm.data(), n);
      } else {
        interleave(a, first, n, transform, interleaved.data());
        done = sf_writef_float(f, interleaved.data(), n);
      }
      written += done;
      if (done != n) return;
    }
  });
  std::string why = written != a.frames ? sf_strerror(f) : "";
  int closed = sf_close(f);
  if (written != a.frames || closed != 0) {
    std::remove(tmp.c_str());
    throw Error("{}: write failed ({}); nothing was replaced", path, why.empty() ? "close failed" : why);
  }
  if (int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {  // on disk before it gets its name
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error("{}: cannot move the finished file into place: {}", path, ec.message());
  }
}

}  // namespace stemkit::audio
