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

#if STEMKIT_HAVE_FFMPEG
#include "runtime/audio/ffmpeg_decode.h"
#include "runtime/audio/ffmpeg_encode.h"
#endif
#include "runtime/audio/sample_convert.h"
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

// Planar float samples as interleaved 16-bit integers (to_int16), `f` the
// clip mode's transform, applied first. Frames [first, first + n) into out.
template <class F>
void to_pcm16(const AudioView& a, int64_t first, int64_t n, const F& f, int16_t* out) {
  for (int c = 0; c < a.channels; ++c) {
    const float* src = a.data + static_cast<size_t>(c) * a.frames + first;
    int16_t* dst = out + c;
    for (int64_t i = 0; i < n; ++i) dst[i * a.channels] = detail::to_int16(f(src[i]));
  }
}

template <class F>
void interleave(const AudioView& a, int64_t first, int64_t n, const F& f, float* out) {
  for (int c = 0; c < a.channels; ++c) {
    const float* src = a.data + static_cast<size_t>(c) * a.frames + first;
    for (int64_t i = 0; i < n; ++i) out[i * a.channels + c] = f(src[i]);
  }
}

#if STEMKIT_HAVE_FFMPEG
// Whether the file begins as WAV (RIFF, RIFX, RF64, Wave64), AIFF, CAF, AU or
// FLAC do: only those are offered to libsndfile. Others never reach it (its
// MP3 reader, mpg123, prints its warnings on stderr).
bool sndfile_container(const std::string& path) {
  char head[4] = {};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  if (n < sizeof head) return false;
  const std::string magic(head, sizeof head);
  for (const char* m : {"RIFF", "RIFX", "RF64", "riff", "FORM", "caff", ".snd", "fLaC"})
    if (magic == m) return true;
  return false;
}

// What read_audio leaves to libsndfile: PCM and float samples in the
// containers it reads whole and exactly (and where it notices a truncated
// WAV). Vorbis, Opus and MP3 go to FFmpeg, which trims their encoder delay as
// the ffmpeg tool (and so demucs) does.
bool sndfile_is_exact(int format) {
  switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV:
    case SF_FORMAT_WAVEX:
    case SF_FORMAT_W64:
    case SF_FORMAT_RF64:
    case SF_FORMAT_AIFF:
    case SF_FORMAT_CAF:
    case SF_FORMAT_AU:
    case SF_FORMAT_FLAC: break;
    default: return false;
  }
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_PCM_16:
    case SF_FORMAT_PCM_24:
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_FLOAT:
    case SF_FORMAT_DOUBLE: return true;
    default: return false;
  }
}
#endif

std::string sndfile_codec(int format) {
  const char* samples = "pcm";
  switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8: samples = "pcm_s8"; break;
    case SF_FORMAT_PCM_U8: samples = "pcm_u8"; break;
    case SF_FORMAT_PCM_16: samples = "pcm_s16"; break;
    case SF_FORMAT_PCM_24: samples = "pcm_s24"; break;
    case SF_FORMAT_PCM_32: samples = "pcm_s32"; break;
    case SF_FORMAT_FLOAT: samples = "pcm_f32"; break;
    case SF_FORMAT_DOUBLE: samples = "pcm_f64"; break;
  }
  return (format & SF_FORMAT_TYPEMASK) == SF_FORMAT_FLAC ? std::string("flac (") + samples + ")" : samples;
}

struct BitrateRange {
  const char* format;
  int low, high;  // kbit/s
  int default_kbps;
};
// What each encoder takes for stereo music (LAME picks the nearest bitrate
// its MPEG layer allows at the stream's rate).
constexpr BitrateRange kLossy[] = {
    {"mp3", 8, 320, 320}, {"ogg", 32, 500, 256}, {"opus", 6, 510, 192}, {"m4a", 16, 512, 256}};

const BitrateRange* lossy(const std::string& format) {
  for (const auto& r : kLossy)
    if (format == r.format) return &r;
  return nullptr;
}

// Makes `tmp`, the finished file, durable and gives it the name `path`.
void commit(const std::string& tmp, const std::string& path) {
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

}  // namespace

const std::vector<std::string>& output_formats() {
  static const std::vector<std::string> names{"wav", "flac", "mp3", "ogg", "opus", "m4a"};
  return names;
}

bool is_lossy(const std::string& format) { return lossy(format) != nullptr; }

int default_bitrate_kbps(const std::string& format) {
  const BitrateRange* r = lossy(format);
  return r ? r->default_kbps : 0;
}

int output_samplerate(const std::string& format, int samplerate) { return format == "opus" ? 48000 : samplerate; }

void check_output_format(const std::string& format, const OutputFormat& s) {
  const auto& names = output_formats();
  if (std::find(names.begin(), names.end(), format) == names.end())
    throw Error("format \"{}\": expected wav, flac, mp3, ogg, opus or m4a", format);
  const BitrateRange* r = lossy(format);
  if (!r) {
    if (s.bitrate_kbps > 0) throw Error("{} is lossless: a bitrate is for mp3, ogg, opus or m4a", format);
    if (format == "flac" && s.encoding == Encoding::float32)
      throw Error("FLAC stores integers; use 16 or 24 bits, or wav for float");
    return;
  }
  if (s.encoding != Encoding::pcm16)
    throw Error("{} has no 24-bit or float samples (those are wav's and flac's); it has a bitrate", format);
  if (s.bitrate_kbps != 0 && (s.bitrate_kbps < r->low || s.bitrate_kbps > r->high))
    throw Error("{} at {} kbit/s: expected {} to {} (default {})", format, s.bitrate_kbps, r->low, r->high,
                r->default_kbps);
  if (format == "mp3" && (s.mp3_preset < 2 || s.mp3_preset > 7))
    throw Error("mp3 preset {}: expected 2 (best quality) to 7 (fastest), as demucs", s.mp3_preset);
#if STEMKIT_HAVE_FFMPEG
  detail::ffmpeg_check_encoder(format, s, output_samplerate(format, 44100), 2);
#else
  throw Error(
      "{}: this build of stemkit has no FFmpeg, which writes it; write wav or flac, or install "
      "libavformat-dev libavcodec-dev libswresample-dev libavutil-dev and rebuild",
      format);
#endif
}

Audio read_audio(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("{}: is a folder, not an audio file", path);
  if (!std::filesystem::exists(path, ec)) throw Error("{}: no such file", path);
  SF_INFO info{};
#if STEMKIT_HAVE_FFMPEG
  if (!sndfile_container(path)) return detail::ffmpeg_decode(path);
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f || !sndfile_is_exact(info.format)) {
    if (f) sf_close(f);
    return detail::ffmpeg_decode(path);
  }
#else  // a build without FFmpeg's libraries (the GPU machine's): what libsndfile reads
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f)
    throw Error(
        "{}: cannot read it as audio ({}); this build reads WAV, FLAC, OGG/Vorbis, MP3 and the other formats "
        "libsndfile reads (built with FFmpeg's libraries, everything FFmpeg reads)",
        path, sf_strerror(nullptr));
#endif
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
  if (info.samplerate < detail::kMinSampleRate || info.samplerate > detail::kMaxSampleRate ||
      info.channels > detail::kMaxChannels) {
    sf_close(f);
    throw Error("{}: its header says {} Hz, {} channels, which no audio has; the file is damaged", path,
                info.samplerate, info.channels);
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
  a.decoder = "libsndfile";
  a.codec = sndfile_codec(info.format);
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
  if (out.frames == 0) return out;  // fewer samples than one at the new rate (soxr would write through null)
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
      const float div = detail::rescale_divisor(a.data.data(), a.data.size());
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

void write_audio(const std::string& path, const Audio& a, const OutputFormat& format) {
  if (a.data.size() != static_cast<size_t>(a.channels) * static_cast<size_t>(a.frames))
    throw std::invalid_argument(path + ": write_audio: " + std::to_string(a.data.size()) + " samples for " +
                                std::to_string(a.channels) + " channels of " + std::to_string(a.frames) + " frames");
  write_audio(path, view(a), format, Clip::none);
}

void write_audio(const std::string& path, const AudioView& a, const OutputFormat& format, Clip clip) {
  std::string ext = lower_extension(path);
  const std::string name = ext.empty() ? ext : ext.substr(1);
  // Written beside the target, then renamed: readers never see a partial stem.
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  if (is_lossy(name)) {
#if !STEMKIT_HAVE_FFMPEG
    throw Error("{}: this build of stemkit has no FFmpeg, which writes .{}; write .wav or .flac", path, name);
#else
    if (format.encoding != Encoding::pcm16)
      throw Error("{}: .{} has no 24-bit or float samples; use .wav or .flac for those", path, name);
    try {
      if (const int rate = output_samplerate(name, a.samplerate); rate != a.samplerate) {
        Audio copy;
        copy.samplerate = a.samplerate;
        copy.channels = a.channels;
        copy.frames = a.frames;
        copy.data.assign(a.data, a.data + static_cast<size_t>(a.channels) * static_cast<size_t>(a.frames));
        copy = resample(std::move(copy), rate);
        detail::ffmpeg_encode(tmp, path, view(copy), clip, name, format);
      } else {
        detail::ffmpeg_encode(tmp, path, a, clip, name, format);
      }
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
    commit(tmp, path);
    return;
#endif
  }
  const Encoding encoding = format.encoding;
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
    throw Error("{}: unsupported output extension \"{}\"; use .wav, .flac, .mp3, .ogg, .opus or .m4a", path, ext);
  if (!sf_format_check(&info)) throw Error("{}: libsndfile cannot write this format with these settings", path);
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw Error("{}: cannot create the file ({})", path, sf_strerror(nullptr));
  sf_count_t written = 0;
  // 16-bit: converted here and written as integers, which libsndfile writes
  // as they are. Else interleaved floats, which it converts (saturating).
  if (encoding != Encoding::pcm16) sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const size_t block = static_cast<size_t>(std::min(a.frames, kBlockFrames)) * static_cast<size_t>(a.channels);
  std::vector<int16_t> pcm(encoding == Encoding::pcm16 ? block : 0);
  std::vector<float> interleaved(encoding == Encoding::pcm16 ? 0 : block);
  detail::with_clip(a, clip, [&](const auto& transform) {
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
  commit(tmp, path);
}

}  // namespace stemkit::audio
