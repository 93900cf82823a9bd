#include "runtime/audio/ffmpeg_decode.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <cstring>
#include <memory>
#include <vector>

#include "runtime/audio/ffmpeg_util.h"
#include "runtime/audio/sample_convert.h"
#include "runtime/error.h"

namespace stemkit::audio::detail {
namespace {

// 12 hours of stereo at 192 kHz: beyond this a file is damaged or not music.
constexpr int64_t kMaxSamples = int64_t{192000} * 2 * 3600 * 12;
// The most padding an encoder adds to its last frame (AAC's frame is 1024
// samples, HE-AAC's 2048): beyond it a declared length is not about padding.
constexpr int64_t kMaxEndPadding = 4096;

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct IoCloser {
  void operator()(AVIOContext* c) const { avio_closep(&c); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwrFree {
  void operator()(SwrContext* s) const { swr_free(&s); }
};

// Demuxers that open other files by name (HLS and DASH playlists, concat
// lists, MOV's external references) open them through this: refused, so
// reading a file never reads another one, local or remote.
int refuse_other_files(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) { return AVERROR(EPERM); }

// Decoded samples, one growing vector per channel.
class Collector {
 public:
  Collector(const std::string& path, double expected_seconds) : path_(path), expected_seconds_(expected_seconds) {}

  void add(const AVFrame* f) {
    const int channels = f->ch_layout.nb_channels;
    if (rate_ == 0) {
      if (f->sample_rate < kMinSampleRate || f->sample_rate > kMaxSampleRate)
        throw Error("{}: the audio stream's sample rate {} Hz is not one audio can have; the file is damaged", path_,
                    f->sample_rate);
      if (channels <= 0 || channels > kMaxChannels)
        throw Error("{}: the audio stream has {} channels (at most {} are read); the file is damaged", path_, channels,
                    kMaxChannels);
      rate_ = f->sample_rate;
      planes_.resize(static_cast<size_t>(channels));
      // Room for the length the container states (a little more: an estimate
      // from the bitrate may be short), so that the planes are not copied as
      // they grow; a claim beyond 2^28 frames reserves nothing.
      if (expected_seconds_ > 0 && expected_seconds_ * rate_ < double(int64_t{1} << 28))
        for (auto& p : planes_) p.reserve(static_cast<size_t>(expected_seconds_ * rate_ * 1.01) + 4096);
    } else if (f->sample_rate != rate_ || channels != static_cast<int>(planes_.size())) {
      throw Error(
          "{}: the audio changes from {} Hz, {} channels to {} Hz, {} channels after {:.2f} s; convert it to one "
          "format first (ffmpeg -i FILE -ar {} -ac {} out.flac)",
          path_, rate_, planes_.size(), f->sample_rate, channels, seconds(), rate_, planes_.size());
    }
    if (f->nb_samples <= 0) return;
    if (frames_ + f->nb_samples > kMaxSamples / static_cast<int64_t>(planes_.size()))
      throw Error("{}: more than {} hours of audio; the file is damaged or not a song", path_,
                  kMaxSamples / (int64_t{192000} * 2 * 3600));
    const size_t n = static_cast<size_t>(f->nb_samples);
    const size_t at = static_cast<size_t>(frames_);
    for (auto& p : planes_) p.resize(at + n);
    const auto format = static_cast<AVSampleFormat>(f->format);
    if (format == AV_SAMPLE_FMT_FLTP) {  // most lossy decoders' output: copied as it is
      for (size_t c = 0; c < planes_.size(); ++c)
        std::memcpy(planes_[c].data() + at, f->extended_data[c], n * sizeof(float));
    } else {
      convert(f, format, at, n);
    }
    frames_ += f->nb_samples;
  }

  Audio finish() {
    Audio a;
    a.samplerate = rate_;
    a.channels = static_cast<int>(planes_.size());
    a.frames = frames_;
    a.data.resize(planes_.size() * static_cast<size_t>(frames_));
    for (size_t c = 0; c < planes_.size(); ++c) {
      std::copy(planes_[c].begin(), planes_[c].end(), a.data.begin() + static_cast<ptrdiff_t>(c * frames_));
      std::vector<float>().swap(planes_[c]);
    }
    return a;
  }

  // Keeps the first `frames` frames (fewer than there are).
  void truncate(int64_t frames) {
    for (auto& p : planes_) p.resize(static_cast<size_t>(frames));
    frames_ = frames;
  }
  int rate() const { return rate_; }
  int64_t frames() const { return frames_; }

  double seconds() const { return rate_ > 0 ? static_cast<double>(frames_) / rate_ : 0.0; }

 private:
  // Integer and interleaved formats to planar floats with libswresample (the
  // same rate and layout in and out: a conversion, no resampling, no delay).
  void convert(const AVFrame* f, AVSampleFormat format, size_t at, size_t n) {
    if (!swr_ || format != swr_format_) {
      AVChannelLayout layout{};
      av_channel_layout_default(&layout, static_cast<int>(planes_.size()));
      SwrContext* s = nullptr;
      int e = swr_alloc_set_opts2(&s, &layout, AV_SAMPLE_FMT_FLTP, rate_, &layout, format, rate_, 0, nullptr);
      if (e >= 0) e = swr_init(s);
      av_channel_layout_uninit(&layout);
      if (e < 0) {
        swr_free(&s);
        throw Error("{}: cannot convert its {} samples to floats: {}", path_, av_get_sample_fmt_name(format),
                    ffmpeg_error(e));
      }
      swr_.reset(s);
      swr_format_ = format;
    }
    std::vector<uint8_t*> out(planes_.size());
    for (size_t c = 0; c < planes_.size(); ++c) out[c] = reinterpret_cast<uint8_t*>(planes_[c].data() + at);
    const int got = swr_convert(swr_.get(), out.data(), static_cast<int>(n),
                                const_cast<const uint8_t**>(f->extended_data), static_cast<int>(n));
    if (got != static_cast<int>(n))
      throw Error("{}: converting its {} samples failed: {}", path_, av_get_sample_fmt_name(format),
                  got < 0 ? ffmpeg_error(got) : "fewer samples came back");
  }

  const std::string& path_;
  double expected_seconds_;
  int rate_ = 0;
  int64_t frames_ = 0;
  std::vector<std::vector<float>> planes_;
  std::unique_ptr<SwrContext, SwrFree> swr_;
  AVSampleFormat swr_format_ = AV_SAMPLE_FMT_NONE;
};

}  // namespace

Audio ffmpeg_decode(const std::string& path) {
  prepare_ffmpeg();
  clear_ffmpeg_log();
  const std::string unreadable = "cannot read it as audio";
  // Opened here, as a file only ("file:": a name such as "a:b.mp3" is not a
  // URL of protocol "a"), and handed to libavformat as its input.
  AVIOContext* io = nullptr;
  AVDictionary* io_options = nullptr;
  av_dict_set(&io_options, "protocol_whitelist", "file", 0);
  int e = avio_open2(&io, ("file:" + path).c_str(), AVIO_FLAG_READ, nullptr, &io_options);
  av_dict_free(&io_options);
  if (e < 0) throw Error("{}: cannot open it: {}", path, ffmpeg_error(e));
  std::unique_ptr<AVIOContext, IoCloser> io_owner(io);

  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw Error("{}: out of memory opening it", path);
  raw->pb = io;
  raw->io_open = refuse_other_files;
  raw->protocol_whitelist = av_strdup("file");
  if ((e = avformat_open_input(&raw, path.c_str(), nullptr, nullptr)) < 0)  // frees raw on failure
    throw Error("{}: {} ({}): not an audio or video file FFmpeg knows, or a damaged or truncated one", path, unreadable,
                e == AVERROR_EOF ? "the file ends inside its header" : ffmpeg_error(e));
  std::unique_ptr<AVFormatContext, FormatCloser> format(raw);
  if ((e = avformat_find_stream_info(raw, nullptr)) < 0)
    throw Error("{}: {} ({} file: {})", path, unreadable, raw->iformat->name, ffmpeg_error(e));
  const AVCodec* codec = nullptr;
  const int index = av_find_best_stream(raw, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (index == AVERROR_STREAM_NOT_FOUND)
    throw Error("{}: {}: this {} file has no audio track", path, unreadable, raw->iformat->name);
  if (index < 0 || !codec) {
    const AVStream* s = index >= 0 ? raw->streams[index] : nullptr;
    throw Error("{}: {}: this FFmpeg has no decoder for its audio ({})", path, unreadable,
                s ? avcodec_get_name(s->codecpar->codec_id) : ffmpeg_error(index));
  }
  AVStream* stream = raw->streams[index];
  for (unsigned i = 0; i < raw->nb_streams; ++i)  // a video's pictures are skipped, not parsed
    if (static_cast<int>(i) != index) raw->streams[i]->discard = AVDISCARD_ALL;

  std::unique_ptr<AVCodecContext, CodecCloser> decoder(avcodec_alloc_context3(codec));
  if (!decoder) throw Error("{}: out of memory opening its decoder", path);
  if ((e = avcodec_parameters_to_context(decoder.get(), stream->codecpar)) < 0)
    throw Error("{}: {} ({}: {})", path, unreadable, codec->name, ffmpeg_error(e));
  decoder->pkt_timebase = stream->time_base;  // for the decoder to trim the delay the container records
  if ((e = avcodec_open2(decoder.get(), codec, nullptr)) < 0)
    throw Error("{}: {}: its {} audio cannot be decoded ({})", path, unreadable, codec->name, ffmpeg_error(e));

  const double stated = stream->duration > 0 && stream->duration != AV_NOPTS_VALUE
                            ? static_cast<double>(stream->duration) * av_q2d(stream->time_base)
                        : raw->duration > 0 ? static_cast<double>(raw->duration) / AV_TIME_BASE
                                            : 0.0;
  Collector samples(path, stated);
  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  if (!packet || !frame) throw Error("{}: out of memory decoding it", path);
  auto damaged = [&](int code) {
    return Error(
        "{}: damaged {} audio after {:.2f} s: {}; to accept a gap there, convert it first (ffmpeg -i FILE out.flac "
        "skips damaged frames)",
        path, codec->name, samples.seconds(), ffmpeg_error(code));
  };
  auto drain = [&] {
    for (;;) {
      const int r = avcodec_receive_frame(decoder.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw damaged(r);
      samples.add(frame.get());
      av_frame_unref(frame.get());
    }
  };
  while ((e = av_read_frame(raw, packet.get())) >= 0) {
    if (packet->stream_index == index) {
      clear_ffmpeg_log();
      const int r = avcodec_send_packet(decoder.get(), packet.get());
      av_packet_unref(packet.get());
      if (r < 0) throw damaged(r);
      drain();
    } else {
      av_packet_unref(packet.get());
    }
  }
  if (e != AVERROR_EOF)
    throw Error("{}: read error after {:.2f} s of audio: {}", path, samples.seconds(), ffmpeg_error(e));
  if ((e = avcodec_send_packet(decoder.get(), nullptr)) < 0) throw damaged(e);
  drain();
  if (samples.seconds() == 0) throw Error("{}: the file holds no audio", path);
  // MP4's edit list says where the audio ends; this libavformat trims the
  // encoder's delay at the start but leaves the padding of the last frame (up
  // to 1023 samples of AAC) at the end. Trimmed here to the length the file
  // declares, which MP4 records exactly (where other containers' durations
  // may be estimates, so they are left alone).
  const bool declares_length = raw->duration_estimation_method == AVFMT_DURATION_FROM_STREAM && stream->duration > 0 &&
                               stream->duration != AV_NOPTS_VALUE;
  const int64_t declared =
      declares_length ? av_rescale_q(stream->duration, stream->time_base, AVRational{1, samples.rate()}) : 0;
  if (std::strstr(raw->iformat->name, "mp4") && declared > 0 && declared < samples.frames() &&
      samples.frames() - declared <= kMaxEndPadding)
    samples.truncate(declared);
  // A file cut short whose header says how long it is (MP3's Xing/LAME
  // header, MP4): the decoders stop where the bytes do, without an error.
  if (declared - samples.frames() > kMaxEndPadding)
    throw Error(
        "{}: truncated: its header announces {:.2f} s of audio, the file holds {:.2f} s; the file was cut "
        "short, export or download it again",
        path, static_cast<double>(declared) / samples.rate(), samples.seconds());
  Audio a = samples.finish();
  a.decoder = "ffmpeg";
  a.codec = codec->name;
  return a;
}

}  // namespace stemkit::audio::detail
