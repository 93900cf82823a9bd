// Audio in and out, without libtorch: reading (WAV and FLAC through
// libsndfile, everything else FFmpeg reads through its libraries, the audio
// track of video files included), resampling (soxr), channel conversion,
// demucs' clipping modes, and writing WAV (16/24-bit, 32-bit float), FLAC
// (16/24-bit), MP3, Ogg Vorbis, Opus and M4A (AAC) atomically: a temporary
// file renamed into place, so a crash never leaves a truncated stem. The
// FFmpeg code is in ffmpeg_decode.cpp and ffmpeg_encode.cpp; this header is
// the one entry point.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"  // a file that cannot be read or written: stemkit::Error naming it and the fix

namespace stemkit::audio {

// Planar float samples: data[channel * frames + i], as a (channels, frames) tensor lays them out.
struct Audio {
  int samplerate = 0;
  int channels = 0;
  int64_t frames = 0;
  std::vector<float> data;
  // read_audio: the library that decoded the file ("libsndfile" or "ffmpeg")
  // and its name for the codec ("pcm_16", "flac", "mp3", "aac", "opus", ...).
  std::string decoder, codec;
  float* channel(int c) { return data.data() + static_cast<size_t>(c) * frames; }
  const float* channel(int c) const { return data.data() + static_cast<size_t>(c) * frames; }
};

// The whole file as planar floats at its own rate and channel count.
// libsndfile reads WAV, AIFF and FLAC holding PCM or float samples (exact,
// and it detects a truncated WAV); FFmpeg reads everything else it knows
// (MP3, AAC/M4A, Opus, Vorbis, ALAC, WMA, video files' audio, ...), trimming
// the encoder delay the file records, as the ffmpeg tool does. Throws
// stemkit::Error naming the file and the fix.
Audio read_audio(const std::string& path);

// Resampled to `samplerate` with soxr's high quality; `in` itself when the rate
// already matches (pass it with std::move to spare the copy).
Audio resample(Audio in, int samplerate);

// Mono to stereo (duplicated) and stereo or more to mono (averaged), or to
// stereo (first two kept); `in` itself when it has `channels` already.
Audio to_channels(Audio in, int channels);

enum class Clip { rescale, clamp, tanh, none };
Clip parse_clip(const std::string& name);  // "rescale", "clamp", "tanh", "none"; throws stemkit::Error
// demucs.audio.prevent_clip: rescale divides by max(1.01 * peak, 1); clamp to +-0.99; tanh.
void prevent_clip(Audio& audio, Clip mode);

// Planar float samples owned elsewhere (a tensor's memory, an Audio), laid
// out as Audio's: data[channel * frames + i].
struct AudioView {
  int samplerate = 0;
  int channels = 0;
  int64_t frames = 0;
  const float* data = nullptr;
};
inline AudioView view(const Audio& a) { return {a.samplerate, a.channels, a.frames, a.data.data()}; }

enum class Encoding { pcm16, pcm24, float32 };

// The formats write_audio writes, by file extension (separate --format):
// wav, flac (libsndfile), mp3 (LAME), ogg (Vorbis), opus (Opus in Ogg), m4a
// (FFmpeg's AAC encoder in MP4), through FFmpeg's libraries.
const std::vector<std::string>& output_formats();
bool is_lossy(const std::string& format);  // mp3, ogg, opus, m4a
// A lossy format's bitrate when none is given: mp3 320 kbit/s (demucs'
// --mp3-bitrate default), ogg 256, m4a 256, opus 192.
int default_bitrate_kbps(const std::string& format);
// The rate a stem of `samplerate` Hz is written at: Opus holds 48 kHz only
// (resampled with soxr), the others keep it.
int output_samplerate(const std::string& format, int samplerate);

// How the samples are stored: WAV's and FLAC's encoding, a lossy format's
// bitrate and MP3's preset. An Encoding alone is WAV's or FLAC's.
struct OutputFormat {
  OutputFormat(Encoding e = Encoding::pcm16) : encoding(e) {}
  Encoding encoding;
  int bitrate_kbps = 0;  // lossy formats, kbit/s; 0: default_bitrate_kbps
  int mp3_preset = 2;    // LAME's quality, 2 (best) to 7 (fastest): demucs' --mp3-preset
};

// Throws stemkit::Error when `format` cannot be written with `settings` by
// this build (an unknown format, float FLAC, a lossy format with an encoding,
// a bitrate or preset out of range, an encoder missing from this FFmpeg or
// refusing the settings for stereo at 44.1 kHz): separate calls it while it
// parses its options, before any model loads.
void check_output_format(const std::string& format, const OutputFormat& settings);

// The format follows the extension (output_formats()).
void write_audio(const std::string& path, const Audio& audio, const OutputFormat& format);
// The same file as prevent_clip(copy, clip) then write_audio(copy): the clip
// mode is applied while the samples are converted for the file, so a stem
// needs no copy of its own and one pass less (a tensor's memory, as is).
void write_audio(const std::string& path, const AudioView& audio, const OutputFormat& format, Clip clip = Clip::none);

}  // namespace stemkit::audio
