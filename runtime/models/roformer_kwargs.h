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
  // Throws std::invalid_argument unless j is a mapping.
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

 private:
  const nlohmann::json& j_;
  std::string where_, model_;
  std::set<std::string> used_;
};

}  // namespace stemkit::models::roformer
