// Writing the lossy formats through FFmpeg's libraries: MP3 (LAME), Ogg
// Vorbis (libvorbis), Opus (libopus, in Ogg) and M4A (FFmpeg's AAC encoder,
// in MP4). Internal to runtime/audio: write_audio and check_output_format
// (audio.h) call these for those extensions.
#pragma once

#include <string>

#include "runtime/audio/audio.h"

namespace stemkit::audio::detail {

// Throws stemkit::Error when this FFmpeg lacks the format's encoder or muxer,
// or refuses its settings for `samplerate` Hz and `channels` channels (the
// encoder is opened with them and closed).
void ffmpeg_check_encoder(const std::string& format, const OutputFormat& settings, int samplerate, int channels);

// Encodes `audio` into `file` (which the caller renames into place; `path` is
// the name errors give), the clip mode applied as samples are converted for
// the encoder. MP3 gets 16-bit samples, as demucs hands LAME; the others floats.
// The file is the same for the same samples (FFmpeg's bit-exact mode: no
// version strings, Ogg's stream serial fixed).
void ffmpeg_encode(const std::string& file, const std::string& path, const AudioView& audio, Clip clip,
                   const std::string& format, const OutputFormat& settings);

}  // namespace stemkit::audio::detail
