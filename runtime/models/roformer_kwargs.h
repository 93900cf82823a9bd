// Reading the keyword arguments the two RoFormers (BSRoformer and
// MelBandRoformer, as an MSST config's `model:` section gives them) share,
// with the generic reader (kwargs.h); each model reads its own (bands, the
// mask MLP's depth) besides.
#pragma once

#include "runtime/models/kwargs.h"
#include "runtime/models/msst_options.h"

namespace stemkit::models::roformer {

// MSST's options (MsstOptions), the refused ones (PoPE, another STFT window)
// and the arguments without effect at inference (dropouts, attention kernel
// switches, the training losses, activation checkpointing).
void read_msst_options(Kwargs& k, MsstOptions& out);

// The arguments both models take under the same names and meanings, and MSST's options.
template <typename Config>
void read_shared_arguments(Kwargs& k, Config& c) {
  k.integer("dim", c.dim, true);
  k.integer("depth", c.depth, true);
  k.boolean("stereo", c.stereo);
  k.integer("num_stems", c.num_stems);
  k.integer("time_transformer_depth", c.time_transformer_depth);
  k.integer("freq_transformer_depth", c.freq_transformer_depth);
  k.integer("dim_head", c.dim_head);
  k.integer("heads", c.heads);
  k.integer("stft_n_fft", c.stft_n_fft);
  k.integer("stft_hop_length", c.stft_hop_length);
  k.integer("stft_win_length", c.stft_win_length);
  k.boolean("stft_normalized", c.stft_normalized);
  k.boolean("match_input_audio_length", c.match_input_audio_length);
  read_msst_options(k, c.msst);
}

// What this runtime needs of those arguments in both models.
template <typename Config>
void check_shared_arguments(const Kwargs& k, const Config& c) {
  const std::string what = k.where() + ": " + k.model();
  if (c.dim_head % 2) throw Error("{} dim_head must be even (rotary embedding pairs)", what);
  if (c.stft_win_length != c.stft_n_fft)
    throw Error("{} stft_win_length {} differs from stft_n_fft {}; this runtime needs them equal", what,
                c.stft_win_length, c.stft_n_fft);
}

}  // namespace stemkit::models::roformer
