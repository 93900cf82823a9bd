#include "runtime/models/roformer_kwargs.h"

namespace stemkit::models::roformer {

void read_msst_options(Kwargs& k, MsstOptions& o) {
  k.integer("linear_transformer_depth", o.linear_transformer_depth, false, true);
  k.integer("mlp_expansion_factor", o.mlp_expansion_factor);
  k.boolean("skip_connection", o.skip_connection);
  k.boolean("zero_dc", o.zero_dc);
  k.refuse_unless("use_pope", false, "MSST's PoPE positional embedding is not implemented (rotary only)");
  k.refuse_unless("stft_window_fn", nullptr, "only the default Hann window is implemented");
  // Without effect at inference: flash_attn, linear_flash_attn and sage_attention
  // pick attention kernels (the attention policy decides here, and attention is
  // exact), use_torch_checkpoint saves training memory, dim_freqs_in is unused
  // upstream, the rest is training.
  for (const char* key :
       {"attn_dropout", "ff_dropout", "flash_attn", "linear_flash_attn", "sage_attention", "use_torch_checkpoint",
        "dim_freqs_in", "multi_stft_resolution_loss_weight", "multi_stft_resolutions_window_sizes",
        "multi_stft_hop_size", "multi_stft_normalized", "multi_stft_window_fn"})
    k.use(key);
}

}  // namespace stemkit::models::roformer
