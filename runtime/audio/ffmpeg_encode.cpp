#include "runtime/audio/ffmpeg_encode.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
}

#include <algorithm>
#include <memory>

#include "runtime/audio/ffmpeg_util.h"
#include "runtime/audio/sample_convert.h"
#include "runtime/error.h"

namespace stemkit::audio::detail {
namespace {

struct Target {
  const char* format;   // --format
  const char* encoder;  // libavcodec's encoder
  const char* muxer;    // libavformat's muxer
  const char* package;  // where Debian's FFmpeg gets the encoder, for the error that it is missing
};
// The encoders the ffmpeg tool picks for these extensions, except Vorbis and
// Opus: FFmpeg's own encoders of those are experimental (lower quality), the
// reference libraries are what people mean.
constexpr Target kTargets[] = {
    {"mp3", "libmp3lame", "mp3", "libmp3lame0"},
    {"ogg", "libvorbis", "ogg", "libvorbisenc2"},
    {"opus", "libopus", "opus", "libopus0"},
    {"m4a", "aac", "ipod", "libavcodec59"},
};

const Target* find_target(const std::string& format) {
  for (const auto& t : kTargets)
    if (format == t.format) return &t;
  return nullptr;
}

struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct OutputCloser {
  void operator()(AVFormatContext* c) const {
    if (c->pb) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};

// The encoder's sample format: 16-bit planar for LAME (demucs gives it
// 16-bit integers), else floats; the first of those the encoder takes.
AVSampleFormat pick_sample_format(const AVCodec* codec, bool want_int16) {
  const AVSampleFormat prefer_int[] = {AV_SAMPLE_FMT_S16P, AV_SAMPLE_FMT_S16, AV_SAMPLE_FMT_FLTP, AV_SAMPLE_FMT_FLT};
  const AVSampleFormat prefer_float[] = {AV_SAMPLE_FMT_FLTP, AV_SAMPLE_FMT_FLT, AV_SAMPLE_FMT_S16P, AV_SAMPLE_FMT_S16};
  for (AVSampleFormat want : want_int16 ? prefer_int : prefer_float) {
    if (!codec->sample_fmts) return want;
    for (const AVSampleFormat* f = codec->sample_fmts; *f != AV_SAMPLE_FMT_NONE; ++f)
      if (*f == want) return want;
  }
  return AV_SAMPLE_FMT_NONE;
}

// The encoder opened for `samplerate` and `channels`; `global_header` when the
// container wants the codec's setup in its header (Ogg, MP4).
std::unique_ptr<AVCodecContext, CodecCloser> open_encoder(const Target& t, const OutputFormat& settings, int samplerate,
                                                          int channels, bool global_header, const std::string& path) {
  prepare_ffmpeg();
  clear_ffmpeg_log();
  const AVCodec* codec = avcodec_find_encoder_by_name(t.encoder);
  if (!codec)
    throw Error("{}: this FFmpeg (libavcodec {}) has no {} encoder for .{} files; install {} or write wav or flac",
                path, LIBAVCODEC_IDENT, t.encoder, t.format, t.package);
  const AVSampleFormat sample_format = pick_sample_format(codec, std::string(t.format) == "mp3");
  if (sample_format == AV_SAMPLE_FMT_NONE)
    throw Error("{}: the {} encoder takes none of the sample formats stemkit converts to", path, t.encoder);
  if (codec->supported_samplerates) {
    bool ok = false;
    std::string rates;
    for (const int* r = codec->supported_samplerates; *r; ++r) {
      ok |= *r == samplerate;
      rates += (rates.empty() ? "" : ", ") + std::to_string(*r);
    }
    if (!ok)
      throw Error(
          "{}: .{} cannot hold {} Hz (it takes {} Hz); write the stems at the model's rate (no "
          "--keep-samplerate), or as wav or flac",
          path, t.format, samplerate, rates);
  }
  std::unique_ptr<AVCodecContext, CodecCloser> c(avcodec_alloc_context3(codec));
  if (!c) throw Error("{}: out of memory opening the {} encoder", path, t.encoder);
  c->sample_fmt = sample_format;
  c->sample_rate = samplerate;
  av_channel_layout_default(&c->ch_layout, channels);
  c->time_base = AVRational{1, samplerate};
  c->bit_rate = int64_t{1000} * (settings.bitrate_kbps > 0 ? settings.bitrate_kbps : default_bitrate_kbps(t.format));
  // LAME's quality, demucs' --mp3-preset (lameenc's set_quality): libavcodec passes it to lame_set_quality.
  if (std::string(t.format) == "mp3") c->compression_level = settings.mp3_preset;
  c->flags |= AV_CODEC_FLAG_BITEXACT;
  if (global_header) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int e = avcodec_open2(c.get(), codec, nullptr);
  if (e < 0)
    throw Error("{}: the {} encoder refuses {} Hz, {} channel{}, {} kbit/s: {}", path, t.encoder, samplerate, channels,
                channels == 1 ? "" : "s", c->bit_rate / 1000, ffmpeg_error(e));
  return c;
}

// Frames [first, first + n) of `a`, through the clip transform `f`, into the
// frame's buffers in the encoder's sample format.
template <class F>
void fill(const AudioView& a, int64_t first, int n, const F& f, AVFrame* frame) {
  const int ch = a.channels;
  for (int c = 0; c < ch; ++c) {
    const float* src = a.data + static_cast<size_t>(c) * a.frames + first;
    switch (static_cast<AVSampleFormat>(frame->format)) {
      case AV_SAMPLE_FMT_FLTP: {
        float* dst = reinterpret_cast<float*>(frame->extended_data[c]);
        for (int i = 0; i < n; ++i) dst[i] = f(src[i]);
        break;
      }
      case AV_SAMPLE_FMT_FLT: {
        float* dst = reinterpret_cast<float*>(frame->extended_data[0]) + c;
        for (int i = 0; i < n; ++i) dst[i * ch] = f(src[i]);
        break;
      }
      case AV_SAMPLE_FMT_S16P: {
        int16_t* dst = reinterpret_cast<int16_t*>(frame->extended_data[c]);
        for (int i = 0; i < n; ++i) dst[i] = to_int16(f(src[i]));
        break;
      }
      default: {  // AV_SAMPLE_FMT_S16
        int16_t* dst = reinterpret_cast<int16_t*>(frame->extended_data[0]) + c;
        for (int i = 0; i < n; ++i) dst[i * ch] = to_int16(f(src[i]));
        break;
      }
    }
  }
}

}  // namespace

void ffmpeg_check_encoder(const std::string& format, const OutputFormat& settings, int samplerate, int channels) {
  const Target* t = find_target(format);
  if (!t) throw Error("--format {}: not written through FFmpeg", format);
  if (!av_guess_format(t->muxer, nullptr, nullptr))
    throw Error("--format {}: this FFmpeg (libavformat {}) has no {} muxer", format, LIBAVFORMAT_IDENT, t->muxer);
  open_encoder(*t, settings, samplerate, channels, true, "--format " + format);
}

void ffmpeg_encode(const std::string& file, const std::string& path, const AudioView& a, Clip clip,
                   const std::string& format, const OutputFormat& settings) {
  const Target* t = find_target(format);
  if (!t) throw Error("{}: .{} is not written through FFmpeg", path, format);
  prepare_ffmpeg();
  clear_ffmpeg_log();
  AVFormatContext* raw = nullptr;
  int e = avformat_alloc_output_context2(&raw, nullptr, t->muxer, nullptr);
  if (e < 0 || !raw) throw Error("{}: this FFmpeg has no {} muxer: {}", path, t->muxer, ffmpeg_error(e));
  std::unique_ptr<AVFormatContext, OutputCloser> out(raw);
  out->flags |= AVFMT_FLAG_BITEXACT;
  auto encoder =
      open_encoder(*t, settings, a.samplerate, a.channels, (out->oformat->flags & AVFMT_GLOBALHEADER) != 0, path);
  AVStream* stream = avformat_new_stream(raw, nullptr);
  if (!stream) throw Error("{}: out of memory adding the audio stream", path);
  stream->time_base = encoder->time_base;
  if ((e = avcodec_parameters_from_context(stream->codecpar, encoder.get())) < 0)
    throw Error("{}: {}", path, ffmpeg_error(e));
  AVDictionary* io_options = nullptr;
  av_dict_set(&io_options, "protocol_whitelist", "file", 0);
  e = avio_open2(&out->pb, ("file:" + file).c_str(), AVIO_FLAG_WRITE, nullptr, &io_options);
  av_dict_free(&io_options);
  if (e < 0) throw Error("{}: cannot create the file ({})", path, ffmpeg_error(e));
  if ((e = avformat_write_header(raw, nullptr)) < 0)
    throw Error("{}: cannot write the {} header: {}", path, t->muxer, ffmpeg_error(e));

  std::unique_ptr<AVPacket, PacketFree> packet(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameFree> frame(av_frame_alloc());
  if (!packet || !frame) throw Error("{}: out of memory encoding it", path);
  auto write_packets = [&] {
    for (;;) {
      int r = avcodec_receive_packet(encoder.get(), packet.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return;
      if (r < 0) throw Error("{}: the {} encoder failed: {}", path, t->encoder, ffmpeg_error(r));
      // libavcodec pads the last frame to the encoder's frame size and the AAC
      // encoder then gives its packet a whole frame's duration, which MP4's
      // edit list would keep as silence at the end: the packets end where the
      // samples do (MP3 and Ogg record the padding their own way).
      if (packet->pts != AV_NOPTS_VALUE && packet->duration > 0 && packet->pts + packet->duration > a.frames)
        packet->duration = std::max<int64_t>(a.frames - packet->pts, 0);
      av_packet_rescale_ts(packet.get(), encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      if ((r = av_interleaved_write_frame(raw, packet.get())) < 0)
        throw Error("{}: write failed ({})", path, ffmpeg_error(r));
    }
  };
  // The encoder's frame size (LAME 1152, AAC 1024, Opus 960), or any for
  // Vorbis; libavcodec pads a short last frame where the encoder needs it.
  const int frame_size = encoder->frame_size > 0 ? encoder->frame_size : 4096;
  with_clip(a, clip, [&](const auto& transform) {
    for (int64_t first = 0; first < a.frames; first += frame_size) {
      const int n = static_cast<int>(std::min<int64_t>(frame_size, a.frames - first));
      av_frame_unref(frame.get());
      frame->nb_samples = n;
      frame->format = encoder->sample_fmt;
      frame->sample_rate = encoder->sample_rate;
      if ((e = av_channel_layout_copy(&frame->ch_layout, &encoder->ch_layout)) < 0 ||
          (e = av_frame_get_buffer(frame.get(), 0)) < 0)
        throw Error("{}: out of memory encoding it ({})", path, ffmpeg_error(e));
      fill(a, first, n, transform, frame.get());
      frame->pts = first;
      if ((e = avcodec_send_frame(encoder.get(), frame.get())) < 0)
        throw Error("{}: the {} encoder failed: {}", path, t->encoder, ffmpeg_error(e));
      write_packets();
    }
  });
  if ((e = avcodec_send_frame(encoder.get(), nullptr)) < 0)
    throw Error("{}: the {} encoder failed at the end: {}", path, t->encoder, ffmpeg_error(e));
  write_packets();
  if ((e = av_write_trailer(raw)) < 0) throw Error("{}: write failed ({})", path, ffmpeg_error(e));
  avio_flush(out->pb);  // av_write_trailer flushes too; a full disk shows in pb->error
  if (out->pb->error < 0) throw Error("{}: write failed ({})", path, ffmpeg_error(out->pb->error));
  if ((e = avio_closep(&out->pb)) < 0) throw Error("{}: write failed ({})", path, ffmpeg_error(e));
}

}  // namespace stemkit::audio::detail
