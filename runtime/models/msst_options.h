// The options MSST's copies of BSRoformer and MelBandRoformer add to the pin
// that change the network; their defaults are the pin's behaviour.
#pragma once

#include <cstdint>

namespace stemkit::models::roformer {

struct MsstOptions {
  int64_t linear_transformer_depth = 0;  // > 0: a linear-attention Transformer first in every layer
  int64_t mlp_expansion_factor = 4;      // the mask estimators' hidden width: dim * this
  bool skip_connection = false;          // every earlier layer's output added before a layer
  bool zero_dc = false;                  // the DC bin zeroed before the iSTFT (MSST's copies default to true)
};

}  // namespace stemkit::models::roformer
