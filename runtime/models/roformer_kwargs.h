// Reading the keyword arguments of the two RoFormers (BSRoformer and
// MelBandRoformer, as an MSST config's `model:` section gives them): every
// error names the file, the model and the argument, and what nothing read is
// left over for the caller to list as ignored.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/error.h"

namespace stemkit::models::roformer {

// The options MSST's copies of both models add to the pin that change the
// network; their defaults are the pin's behaviour.
struct MsstOptions {
  int64_t linear_transformer_depth = 0;  // > 0: a linear-attention Transformer first in every layer
  int64_t mlp_expansion_factor = 4;      // the mask estimators' hidden width: dim * this
  bool skip_connection = false;          // every earlier layer's output added before a layer
  bool zero_dc = false;                  // the DC bin zeroed before the iSTFT (MSST's copies default to true)
};

class Kwargs {
 public:
  // Throws stemkit::Error unless j is a mapping.
  Kwargs(const nlohmann::json& j, std::string where, std::string model);

  // A positive integer (zero too with zero_ok); absent or null keeps `out`,
  // unless required.
  void integer(const char* key, int64_t& out, bool required = false, bool zero_ok = false);
  void boolean(const char* key, bool& out);
  // An option not implemented here: fine when absent, null or equal to `fine`.
  void refuse_unless(const char* key, const nlohmann::json& fine, const std::string& why);
  // MSST's options (MsstOptions), the refused ones (PoPE, another STFT window)
  // and the arguments without effect at inference (dropouts, attention kernel
  // switches, the training losses, activation checkpointing).
  void msst_options(MsstOptions& out);
  void use(const char* key) { used_.insert(key); }
  bool has(const char* key) const;  // present and not null
  const nlohmann::json& at(const char* key) const;
  [[noreturn]] void bad(const std::string& key, const std::string& what) const;
  // The keys nothing above read, in the mapping's order.
  std::vector<std::string> unused() const;
  const std::string& where() const { return where_; }
  const std::string& model() const { return model_; }

 private:
  const nlohmann::json& j_;
  std::string where_, model_;
  std::set<std::string> used_;
};

// The arguments both models take under the same names and meanings, and MSST's
// options; each model reads its own (bands, the mask MLP's depth) besides.
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
  k.msst_options(c.msst);
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
