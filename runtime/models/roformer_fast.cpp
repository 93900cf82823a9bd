// The RoFormer blocks' fast paths (roformer_fast.h says what each does).
// The reference each one must match is the block's forward in
// roformer_blocks.cpp; roformer_blocks_test.cpp holds them side by side.
#include "runtime/models/roformer_fast.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"
#include "runtime/plan/kernel_plan.h"

namespace stemkit::models::roformer::fast {

// Fused weights are derived data: each remembers which tensors (storage and
// version counter) it was made from, so to(), load_state_dict and copy_ into a
// parameter all make it stale. The check is host-side only (graph capture safe);
// the first forward after a change rebuilds it (GraphRunner's warm-up runs
// eagerly before capturing, so no rebuild happens inside a capture).
struct FoldedLinear {
  at::Tensor weight, bias;
  std::vector<std::pair<const void*, int64_t>> made_from;

  static std::vector<std::pair<const void*, int64_t>> key(const std::vector<at::Tensor>& sources) {
    std::vector<std::pair<const void*, int64_t>> k;
    for (const auto& t : sources) k.emplace_back(t.defined() ? t.data_ptr() : nullptr, t.defined() ? t._version() : -1);
    return k;
  }
};

struct RotaryTable {
  at::Tensor table;  // complex64 (n, d/2)
  std::pair<const void*, int64_t> made_from{nullptr, -1};
  int64_t n = -1;
};

// What the fast paths derive from an Attention's parameters.
struct AttentionWeights {
  std::shared_ptr<FoldedLinear> qkv_gates;   // [to_qkv; to_gates] with norm.gamma folded in
  std::shared_ptr<FoldedLinear> qkv, gates;  // the same, apart (the fused kernels' path)
  RotaryTable rotary;
};

// ...and from a FeedForward's.
struct FeedForwardWeights {
  std::shared_ptr<FoldedLinear> in;  // net.1 with net.0.gamma folded in
};

namespace {

// Whether unit_rows(x) runs libtorch's fused RMS norm (x / rms(x) = sqrt(dim) x / |x|)
// or the composite x / |x| (Debian's libtorch, CPU).
bool fused_rms(const at::Tensor& x) {
#if STEMKIT_HAS_FUSED_RMS_NORM
  return x.is_cuda();
#else
  (void)x;
  return false;
#endif
}

// Whether the plan's GEMMs go through cuBLASLt for activations like x.
bool uses_lt(const at::Tensor& x, const plan::KernelPlan& plan) {
  return plan.gemm == plan::Gemm::cublaslt && kernels::lt_usable_for(x);
}

// Whether the plan runs the fused kernels on tensors like x.
bool uses_kernels(const at::Tensor& x, const plan::KernelPlan& plan) {
  return plan.fused_kernels && kernels::usable_for(x);
}

// The eps that makes a fused RMS norm's 1 / sqrt(mean(x^2) + eps) agree with
// F.normalize's clamp of |x| at 1e-12 (mean(x^2) = |x|^2 / dim).
double rms_eps(int64_t dim) { return 1e-24 / static_cast<double>(dim); }

// F.normalize(x, dim=-1) = x / max(|x|, 1e-12), or, fused, sqrt(dim) times that
// (the weights after it are folded to match).
at::Tensor unit_rows(const at::Tensor& x) {
#if STEMKIT_HAS_FUSED_RMS_NORM
  if (fused_rms(x)) return at::rms_norm(x, {x.size(-1)}, std::nullopt, rms_eps(x.size(-1)));
#endif
  return x / x.norm(2, {-1}, true).clamp_min(1e-12);
}

}  // namespace

at::Tensor rms_norm(const RMSNormImpl& norm, const at::Tensor& x) {
#if STEMKIT_HAS_FUSED_RMS_NORM
  if (fused_rms(x)) return at::rms_norm(x, {x.size(-1)}, norm.gamma, rms_eps(x.size(-1)));
#endif
  return x / x.norm(2, {-1}, true).clamp_min(1e-12) * norm.scale * norm.gamma;
}

namespace {

// W' = W * (gamma * sqrt(dim)) column by column (computed in float32), so that
// Linear(RMSNorm(x)) = Linear'(x / |x|); with the fused norm (which gives sqrt(dim)
// x / |x|) the factor is gamma alone. Weights stacked row-wise share the norm;
// biases[i] (undefined: none) belongs to weights[i].
void fold_norm(std::shared_ptr<FoldedLinear>& slot, const RMSNormImpl& norm, std::vector<at::Tensor> weights,
               std::vector<at::Tensor> biases, bool fused) {
  std::vector<at::Tensor> sources = weights;
  sources.insert(sources.end(), biases.begin(), biases.end());
  sources.push_back(norm.gamma);
  auto key = FoldedLinear::key(sources);
  key.emplace_back(nullptr, fused ? 1 : 0);
  if (slot && slot->made_from == key) return;
  auto folded = std::make_shared<FoldedLinear>();
  const at::Tensor g = norm.gamma.to(at::kFloat) * (fused ? 1.0 : norm.scale);
  std::vector<at::Tensor> ws, bs;
  for (const auto& w : weights) ws.push_back(w.to(at::kFloat) * g);
  // Rows padded with zeros to a multiple of 8: the output's row stride stays even
  // (view_as_complex needs it) and 16-byte aligned (vectorised kernels want it).
  int64_t rows = 0;
  for (const auto& w : ws) rows += w.size(0);
  const int64_t pad = (8 - rows % 8) % 8;
  if (pad) ws.push_back(at::zeros({pad, ws.front().size(1)}, ws.front().options()));
  const at::ScalarType dtype = weights.front().scalar_type();
  folded->weight = at::cat(ws, 0).to(dtype).contiguous();
  if (std::any_of(biases.begin(), biases.end(), [](const at::Tensor& b) { return b.defined(); })) {
    for (size_t i = 0; i < weights.size(); ++i)
      bs.push_back(biases[i].defined() ? biases[i].to(at::kFloat)
                                       : at::zeros({weights[i].size(0)}, ws.front().options()));
    if (pad) bs.push_back(at::zeros({pad}, ws.front().options()));
    folded->bias = at::cat(bs, 0).to(dtype);
  }
  folded->made_from = std::move(key);
  slot = std::move(folded);
}

// rotary-embedding-torch's rotate_queries_or_keys (interleaved pairs, angle(pos, i)
// = pos * freqs[i]) as one complex multiply: the pairs (x0, x1) are x0 + i x1, and
// (x0 cos - x1 sin, x1 cos + x0 sin) is their product with cos + i sin, in
// float32 as upstream computes it. t: (N, h, n, d), last dim contiguous.
// fp16 on a GPU reads and writes half directly (ComplexHalf in, float32
// arithmetic, ComplexHalf out: one pass); others go through a float32 copy.
at::Tensor rotate_complex(const at::Tensor& t_in, const at::Tensor& table) {
  const int64_t N = t_in.size(0), h = t_in.size(1), n = t_in.size(2), d = t_in.size(3);
  // view_as_complex needs even strides and offset; the folded weights keep them so.
  bool even = t_in.storage_offset() % 2 == 0 && t_in.stride(3) == 1;
  for (int i = 0; i < 3; ++i) even = even && t_in.stride(i) % 2 == 0;
  const at::Tensor t = even ? t_in : t_in.contiguous();
  if (t.scalar_type() == at::kFloat) {
    at::Tensor z = at::view_as_complex(t.view({N, h, n, d / 2, 2}));
    return at::view_as_real(z * table).view({N, h, n, d});
  }
  static bool half_direct = true;  // until the build shows it cannot (then for good)
  if (t.scalar_type() == at::kHalf && t.is_cuda() && half_direct) {
    try {
#if STEMKIT_TORCH_AT_LEAST(2, 0)
      // libtorch warns once that ComplexHalf is experimental; this one multiply is
      // covered by the GPU parity tests, so the warning is kept off users' screens.
      struct Quiet : c10::WarningHandler {
        void process(const c10::Warning&) override {}
      } quiet;
      c10::WarningUtils::WarningHandlerGuard guard(&quiet);
#endif
      // Output laid out as t is (N, n, h, d): SDPA takes q and k in that layout.
      at::Tensor out = at::empty({N, n, h, d / 2}, t.options().dtype(at::kComplexHalf)).transpose(1, 2);
      at::mul_out(out, at::view_as_complex(t.view({N, h, n, d / 2, 2})), table);
      return at::view_as_real(out).view({N, h, n, d});
    } catch (const std::exception&) {
      half_direct = false;
    }
  }
  at::Tensor z = at::view_as_complex(t.to(at::kFloat).view({N, h, n, d / 2, 2}));
  return at::view_as_real(z * table).view({N, h, n, d}).to(t.scalar_type());
}

}  // namespace

namespace {

AttentionWeights& weights_of(AttentionImpl& attn) {
  if (!attn.fast_weights) attn.fast_weights = std::make_shared<AttentionWeights>();
  return *attn.fast_weights;
}

FeedForwardWeights& weights_of(FeedForwardImpl& ff) {
  if (!ff.fast_weights) ff.fast_weights = std::make_shared<FeedForwardWeights>();
  return *ff.fast_weights;
}

// cos + i sin of the rotary angles pos * freqs[i], complex float32 (n, d/2),
// remade when n, the device or freqs change.
const at::Tensor& rotary_table(AttentionImpl& attn, int64_t n, const at::Device& device) {
  RotaryTable& rotary = weights_of(attn).rotary;
  if (rotary.n != n || rotary.made_from != FoldedLinear::key({attn.freqs}).front() || rotary.table.device() != device) {
    at::Tensor pos = at::arange(n, attn.freqs.options().dtype(at::kFloat));
    at::Tensor angles = pos.unsqueeze(1) * attn.freqs.to(at::kFloat).unsqueeze(0);  // (n, d/2)
    rotary.table = at::complex(angles.cos(), angles.sin()).to(device);
    rotary.made_from = FoldedLinear::key({attn.freqs}).front();
    rotary.n = n;
  }
  return rotary.table;
}

// Builds add_attention_rows' folded weights, or rebuilds them after a weight
// changed (else nothing): prepare_rows calls it at load, so that the first
// forward finds them made.
void prepare_attention_rows(AttentionImpl& attn) {
  AttentionWeights& w = weights_of(attn);
  fold_norm(w.qkv, *attn.norm, {attn.to_qkv->weight}, {at::Tensor()}, /*fused=*/true);
  fold_norm(w.gates, *attn.norm, {attn.to_gates->weight}, {attn.to_gates->bias}, /*fused=*/true);
}

void prepare_feed_forward_rows(FeedForwardImpl& ff) {
  fold_norm(weights_of(ff).in, *ff.norm, {ff.in->weight}, {ff.in->bias}, /*fused=*/true);
}

}  // namespace

// Upstream computes: y = norm(x); q, k, v = to_qkv(y) per head; q, k rotated;
// out = attend(q, k, v) * sigmoid(to_gates(y)) per head; to_out(out). Here the
// norm is folded into one qkv-and-gates GEMM, rotary is one complex multiply,
// the gate is written in to_out's layout and the residual added by the to_out GEMM.
void add_attention(AttentionImpl& attn, at::Tensor& x, const plan::KernelPlan& plan) {
  const int64_t heads = attn.heads, dim_head = attn.dim_head;
  const int64_t N = x.size(0), n = x.size(1), dim = x.size(2), hd = heads * dim_head;
  AttentionWeights& w = weights_of(attn);
  fold_norm(w.qkv_gates, *attn.norm, {attn.to_qkv->weight, attn.to_gates->weight}, {at::Tensor(), attn.to_gates->bias},
            fused_rms(x));
  const at::Tensor& table = rotary_table(attn, n, x.device());
  at::Tensor qkvg = at::linear(unit_rows(x), w.qkv_gates->weight, w.qkv_gates->bias);  // (N, n, 3hd + h)
  // (N, h, n, d) views of q, k and v inside qkvg
  auto part = [&](int64_t i) { return qkvg.narrow(-1, i * hd, hd).view({N, n, heads, dim_head}).transpose(1, 2); };
  at::Tensor q = rotate_complex(part(0), table), k = rotate_complex(part(1), table);
  at::Tensor out = attention::attend(plan.attention, q, k, part(2));          // (N, h, n, d)
  at::Tensor gates = qkvg.narrow(-1, 3 * hd, heads).sigmoid().unsqueeze(-1);  // (N, n, h, 1)
  at::Tensor gated = at::empty({N, n, heads, dim_head}, out.options());
  at::mul_out(gated, out.transpose(1, 2), gates);
  // x += to_out(gated), the addition done by the GEMM (beta = 1).
  x.view({N * n, dim}).addmm_(gated.view({N * n, hd}), attn.to_out->weight.t());
}

void add_attention_rows(AttentionImpl& attn, at::Tensor& rows, const kernels::Axial& layout,
                        const plan::KernelPlan& plan) {
  const int64_t heads = attn.heads, dim_head = attn.dim_head;
  const double eps = rms_eps(rows.size(1));
  // The norm folded into to_qkv and to_gates apart: qkv's GEMM is then exactly
  // 3hd wide with no bias (with the h gate columns appended it ran slower:
  // docs/benchmarks.md), and the gates' narrow GEMM costs one read of u.
  prepare_attention_rows(attn);  // built at load (to_device); rebuilt here only if a weight changed since
  const AttentionWeights& w = *attn.fast_weights;
  const at::Tensor& table = rotary_table(attn, layout.length(), rows.device());
  at::Tensor u = kernels::unit_rows_add_bias(rows, at::Tensor(), eps);   // sqrt(dim) x / |x|
  at::Tensor logits = at::addmm(w.gates->bias, u, w.gates->weight.t());  // (rows, h, padded to 8)
  const bool lt = uses_lt(rows, plan);
  at::Tensor qkv;  // (rows, 3hd)
  if (lt) {
    qkv = at::empty({rows.size(0), w.qkv->weight.size(0)}, rows.options());
    kernels::lt_linear(u, w.qkv->weight, at::Tensor(), qkv, kernels::Epilogue::none, false);
  } else {
    qkv = at::mm(u, w.qkv->weight.t());
  }
  // x += to_out(gated), the addition done by the GEMM (beta = 1).
  const at::Tensor& to_out = attn.to_out->weight;
  auto add_out = [&](const at::Tensor& gated) {
    if (lt)
      kernels::lt_linear(gated, to_out, at::Tensor(), rows, kernels::Epilogue::none, /*accumulate=*/true);
    else
      rows.addmm_(gated, to_out.t());
  };
  if (!plan.attention.forced) {
    // Rotary, attention and gate in one kernel (fp16/bf16 on CUDA, d = 64).
    const char* which = nullptr;
    at::Tensor gated = kernels::fused_attention(qkv, table, logits, layout, heads, dim_head, plan.seq_kernel, &which);
    if (gated.defined()) {  // (rows, hd)
      attention::record_fused(plan.attention, qkv, layout.length(), which);
      add_out(gated);
      return;
    }
  }
  // Along F a sequence's tokens are consecutive rows and v is one view of qkv.
  // Along T they are F rows apart: v is read in place per batch element (one
  // SDPA call each; as fast as gathering v into one tensor, with less memory:
  // docs/benchmarks.md).
  auto [q, k, v] = kernels::rotary_split(qkv, table, layout, heads, dim_head, /*copy_v=*/false);  // (N, h, n, d)
  at::Tensor gated;                                                                               // (rows, hd)
  if (v.defined()) {
    gated = kernels::gate_to_rows(attention::attend(plan.attention, q, k, v), logits, layout, heads, dim_head);
  } else {
    const int64_t per = layout.T * layout.F;
    const kernels::Axial one{1, layout.T, layout.F, layout.axis};
    gated = at::empty({layout.rows(), heads * dim_head}, qkv.options());
    for (int64_t b = 0; b < layout.B; ++b) {
      at::Tensor out =
          attention::attend(plan.attention, q.narrow(0, b * layout.F, layout.F), k.narrow(0, b * layout.F, layout.F),
                            kernels::v_along_t(qkv, layout, heads, dim_head, b));  // (F, h, T, d)
      kernels::gate_to_rows(out, logits.narrow(0, b * per, per), one, heads, dim_head, gated.narrow(0, b * per, per));
    }
  }
  add_out(gated);
}

namespace {

// Whether the feed-forward's bias and GELU run inside its first GEMM
// (at::_addmm_activation: cuBLASLt's GELU_BIAS epilogue; ROCm builds, whose
// tensors are "cuda" too, get hipBLASLt's or ATen's tanh GELU after the GEMM),
// which saves a read and a write of the largest activation (4 dim wide). That
// epilogue computes GELU's tanh form, which differs from the exact (erf) GELU
// upstream uses by at most 4.7e-4 (at x = 2.7, where fp16's spacing is 2e-3
// and bfloat16's 1.6e-2): below the resolution of the fp16 and bf16 results.
// The plan asks for it (plan::Gelu) for those on a GPU, never for fp32.
bool fused_gelu(const at::Tensor& x, const plan::KernelPlan& plan) {
  return plan.gelu == plan::Gelu::tanh_epilogue && x.is_cuda() &&
         (x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16);
}

}  // namespace

// The norm folded into net.1, the residual added by net.4's GEMM.
void add_feed_forward(FeedForwardImpl& ff, at::Tensor& x, const plan::KernelPlan& plan) {
  FeedForwardWeights& w = weights_of(ff);
  fold_norm(w.in, *ff.norm, {ff.in->weight}, {ff.in->bias}, fused_rms(x));
  at::Tensor u = unit_rows(x);
  at::Tensor h = fused_gelu(x, plan) ? at::_addmm_activation(w.in->bias, u.view({-1, u.size(-1)}), w.in->weight.t(), 1,
                                                             1, /*use_gelu=*/true)
                                     : at::gelu(at::linear(u, w.in->weight, w.in->bias));  // (..., 4 dim)
  at::Tensor rows = x.view({-1, x.size(-1)});
  rows.addmm_(h.view({rows.size(0), -1}), ff.out->weight.t()).add_(ff.out->bias);  // x += net.4(h)
}

void add_feed_forward_rows(FeedForwardImpl& ff, at::Tensor& rows, const plan::KernelPlan& plan) {
  prepare_feed_forward_rows(ff);
  const FoldedLinear& in = *ff.fast_weights->in;
  if (uses_lt(rows, plan) && fused_gelu(rows, plan)) {
    // cuBLASLt: GELU and bias in the first GEMM's epilogue; the second adds
    // a wᵀ + bias into x itself, so the norm leaves x as it is.
    at::Tensor u = kernels::unit_rows_add_bias(rows, at::Tensor(), rms_eps(rows.size(1)));
    at::Tensor h = at::empty({rows.size(0), in.weight.size(0)}, rows.options());
    kernels::lt_linear(u, in.weight, in.bias, h, kernels::Epilogue::gelu_bias, false);
    kernels::lt_linear(h, ff.out->weight, ff.out->bias, rows, kernels::Epilogue::bias, /*accumulate=*/true);
    return;
  }
  // u = norm(x), and net.4's bias added to x in the same pass, before its GEMM adds the rest.
  at::Tensor u = kernels::unit_rows_add_bias(rows, ff.out->bias, rms_eps(rows.size(1)));
  at::Tensor h = fused_gelu(rows, plan) ? at::_addmm_activation(in.bias, u, in.weight.t(), 1, 1, /*use_gelu=*/true)
                                        : at::gelu(at::addmm(in.bias, u, in.weight.t()));
  rows.addmm_(h, ff.out->weight.t());
}

namespace {
// In place only on a tensor nobody else sees: one reference to it and to its storage.
void make_own(at::Tensor& x) {
  if (!x.is_contiguous() || x.use_count() != 1 || x.storage().use_count() != 1)
    x = x.clone(at::MemoryFormat::Contiguous);
}
}  // namespace

at::Tensor transformer(TransformerImpl& t, at::Tensor x, const plan::KernelPlan& plan) {
  make_own(x);
  for (size_t j = 0; j < t.feed_forward.size(); ++j) {
    if (t.linear_attention.empty())
      add_attention(*t.attention[j], x, plan);
    else
      x.add_(t.linear_attention[j]->forward(x, plan));
    add_feed_forward(*t.feed_forward[j], x, plan);
  }
  return t.norm ? rms_norm(*t.norm, x) : x;
}

namespace {
// Whether the row path's kernels take this transformer at model width `dim`:
// their vectorised loads want the width and every head size in multiples of 8
// (unit_rows_add_bias, rotary_split). A legal configuration outside that
// (dim_head 4, dim 12) runs the ATen path; the choice is recorded with its
// reason where the plan's attention decisions are (separate --explain).
bool rows_fit(const TransformerImpl& t, int64_t dim, const at::Tensor& like, const plan::KernelPlan& plan) {
  bool fit = dim % 8 == 0;
  for (const auto& a : t.attention) fit = fit && a->dim_head % 8 == 0;
  if (!fit)
    plan.attention.log->record({like.device().str() + ", dim " + std::to_string(dim) + ", head " +
                                    std::to_string(t.attention.empty() ? 0 : t.attention.front()->dim_head),
                                "ATen (no fused kernels)",
                                "the fused kernels need the model width and head size in multiples of 8"});
  return fit;
}
}  // namespace

at::Tensor transformer_axial(TransformerImpl& t, at::Tensor x, int axis, const plan::KernelPlan& plan) {
  const int64_t B = x.size(0), T = x.size(1), F = x.size(2), d = x.size(3);
  if (!t.linear_attention.empty() || !uses_kernels(x, plan) || !rows_fit(t, d, x, plan)) {
    // The ATen path: the sequences made contiguous, (B*F, T, d) or (B*T, F, d).
    at::Tensor seqs = axis == 1 ? x.transpose(1, 2).reshape({B * F, T, d}) : x.reshape({B * T, F, d});
    x.reset();  // so that a view of a tensor the caller handed over counts as the only reference
    if (axis == 2) return transformer(t, std::move(seqs), plan).view({B, T, F, d});
    return transformer(t, std::move(seqs), plan).view({B, F, T, d}).transpose(1, 2);
  }
  make_own(x);
  const kernels::Axial layout{B, T, F, axis};
  at::Tensor rows = x.view({B * T * F, d});
  for (size_t j = 0; j < t.feed_forward.size(); ++j) {
    add_attention_rows(*t.attention[j], rows, layout, plan);
    add_feed_forward_rows(*t.feed_forward[j], rows, plan);
  }
  return t.norm ? rms_norm(*t.norm, x) : x;
}

void prepare_rows(TransformerImpl& t, const at::TensorOptions& options, const plan::KernelPlan& plan) {
  if (plan.reference_forward || !t.linear_attention.empty() || !uses_kernels(at::empty({0}, options), plan)) return;
  const int64_t dim = t.attention.empty() ? 0 : t.attention.front()->to_qkv->weight.size(1);
  if (!rows_fit(t, dim, at::empty({0}, options), plan)) return;
  at::NoGradGuard no_grad;
  for (auto& a : t.attention) prepare_attention_rows(*a);
  for (auto& f : t.feed_forward) prepare_feed_forward_rows(*f);
}

std::vector<BandRun> band_runs(const std::vector<int64_t>& widths) {
  std::vector<BandRun> runs;
  int64_t offset = 0;
  for (size_t b = 0; b < widths.size(); ++b) {
    if (!runs.empty() && runs.back().width == widths[b])
      ++runs.back().count;
    else
      runs.push_back({static_cast<int64_t>(b), 1, widths[b], offset});
    offset += widths[b];
  }
  return runs;
}

// A BandSplit's stacked parameters, per run of bands of equal width (none for
// a run of one band).
struct BandSplitRuns {
  struct Run {
    BandRun bands;
    at::Tensor gamma, weight, bias;  // (k, w), (k, dim, w), (k, dim)
  };
  std::vector<Run> runs;
};

// A MaskEstimator's: every band's hidden layers, and the last layer per run.
struct MaskEstimatorRuns {
  std::vector<at::Tensor> hidden_weight, hidden_bias;  // per hidden layer: (bands, out, in), (bands, out)
  struct Run {
    BandRun bands;
    at::Tensor weight, bias;  // the last layer: (k, 2w, in), (k, 2w)
  };
  std::vector<Run> runs;
};

namespace {

// Stacks `params` (equal shapes) into one (k, ...) tensor and makes each
// parameter a view of its slice: a run's GEMMs then read the stacked tensor
// as one batched operand, and load_state_dict's copy_ into a parameter writes
// the stacked tensor. Outside inference mode (constructors and to_device).
// Without copy_values the stacked tensor is left uninitialised, as the
// constructors' Linear layers are (a copy of 80 million unset numbers saved).
at::Tensor stack_in_place(const std::vector<at::Tensor>& params, bool copy_values = true) {
  at::NoGradGuard no_grad;  // the stacked tensor is data, not part of an autograd graph
  std::vector<int64_t> shape = params.front().sizes().vec();
  shape.insert(shape.begin(), static_cast<int64_t>(params.size()));
  at::Tensor stacked = copy_values ? at::stack(params) : at::empty(shape, params.front().options());
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i];
    p.set_data(stacked[static_cast<int64_t>(i)]);
  }
  return stacked;
}

// Whether each of `params` still is slice i of `stacked` (to() replaces parameters).
bool views_of(const at::Tensor& stacked, const std::vector<at::Tensor>& params) {
  if (!stacked.defined() || stacked.size(0) != static_cast<int64_t>(params.size())) return false;
  const auto* base = static_cast<const char*>(stacked.data_ptr());
  const int64_t step = stacked.stride(0) * static_cast<int64_t>(stacked.element_size());
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].data_ptr() != base + static_cast<int64_t>(i) * step) return false;
  return true;
}

bool run_stacked(const BandSplitImpl& split, const BandSplitRuns::Run& run) {
  if (run.bands.count < 2) return false;
  std::vector<at::Tensor> g, w, b;
  for (int64_t i = run.bands.first; i < run.bands.first + run.bands.count; ++i)
    g.push_back(split.norms[i]->gamma), w.push_back(split.linears[i]->weight), b.push_back(split.linears[i]->bias);
  return views_of(run.gamma, g) && views_of(run.weight, w) && views_of(run.bias, b);
}

}  // namespace

void stack_parameters(BandSplitImpl& split, bool copy_values) {
  if (copy_values && stacked(split)) return;  // still views of the stacked tensors: to() kept device and dtype
  auto stacks = std::make_shared<BandSplitRuns>();
  for (const BandRun& r : band_runs(split.dim_inputs)) {
    BandSplitRuns::Run run{r, {}, {}, {}};
    if (r.count > 1) {
      std::vector<at::Tensor> g, w, b;
      for (int64_t i = r.first; i < r.first + r.count; ++i)
        g.push_back(split.norms[i]->gamma), w.push_back(split.linears[i]->weight), b.push_back(split.linears[i]->bias);
      run.gamma = stack_in_place(g), run.weight = stack_in_place(w, copy_values),
      run.bias = stack_in_place(b, copy_values);
    }
    stacks->runs.push_back(run);
  }
  split.fast_runs = std::move(stacks);
}

bool stacked(const BandSplitImpl& split) {
  if (!split.fast_runs) return false;
  bool any = false;
  for (const auto& run : split.fast_runs->runs) {
    if (run.bands.count < 2) continue;
    if (!run_stacked(split, run)) return false;
    any = true;
  }
  return any;
}

at::Tensor band_split(BandSplitImpl& split, const at::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), nb = static_cast<int64_t>(split.linears.size());
  const int64_t dim = split.linears.front()->weight.size(0);
  at::Tensor out = at::empty({B, T, nb, dim}, x.options());
  for (const auto& run : split.fast_runs->runs) {
    const BandRun& r = run.bands;
    const int64_t first = r.first, k = r.count, w = r.width;
    if (run_stacked(split, run)) {
      // The run's k bands at once: RMSNorm per band (gamma (k, w)), then one
      // batched GEMM (k, B*T, w) x (k, w, dim) with the biases added by it.
      at::Tensor part = x.narrow(-1, r.offset, k * w).reshape({B * T, k, w});
      at::Tensor u = unit_rows(part);
      if (!fused_rms(part)) u = u * split.norms[first]->scale;  // the fused norm includes sqrt(w)
      u = u * run.gamma;
      at::Tensor y =
          at::baddbmm(run.bias.unsqueeze(1), u.transpose(0, 1), run.weight.transpose(1, 2));  // (k, B*T, dim)
      out.narrow(2, first, k).copy_(y.view({k, B, T, dim}).permute({1, 2, 0, 3}));
      continue;
    }
    for (int64_t i = first; i < first + k; ++i) {
      // addmm on the rows: the bias in the GEMM's epilogue (a 3-D Linear adds it apart).
      at::Tensor u = rms_norm(*split.norms[i], x.narrow(-1, r.offset + (i - first) * w, w));
      at::Tensor y = at::addmm(split.linears[i]->bias, u.reshape({-1, w}), split.linears[i]->weight.t());
      out.select(2, i).copy_(y.view({B, T, dim}));
    }
  }
  return out;
}

void stack_parameters(MaskEstimatorImpl& masks, bool copy_values) {
  if (copy_values && stacked(masks)) return;  // as BandSplit's
  auto stacks = std::make_shared<MaskEstimatorRuns>();
  const auto& mlps = masks.mlps;
  const size_t layers = mlps.front().size();
  for (size_t l = 0; l + 1 < layers; ++l) {
    std::vector<at::Tensor> w, b;
    for (const auto& mlp : mlps) w.push_back(mlp[l]->weight), b.push_back(mlp[l]->bias);
    stacks->hidden_weight.push_back(stack_in_place(w, copy_values));
    stacks->hidden_bias.push_back(stack_in_place(b, copy_values));
  }
  std::vector<int64_t> widths;
  for (const auto& mlp : mlps) widths.push_back(mlp.back()->weight.size(0) / 2);
  for (const BandRun& r : band_runs(widths)) {
    std::vector<at::Tensor> w, b;
    for (int64_t i = r.first; i < r.first + r.count; ++i)
      w.push_back(mlps[i].back()->weight), b.push_back(mlps[i].back()->bias);
    stacks->runs.push_back({r, stack_in_place(w, copy_values), stack_in_place(b, copy_values)});
  }
  masks.fast_runs = std::move(stacks);
}

bool stacked(const MaskEstimatorImpl& masks) {
  if (!masks.fast_runs) return false;
  const MaskEstimatorRuns& s = *masks.fast_runs;
  for (size_t l = 0; l < s.hidden_weight.size(); ++l) {
    std::vector<at::Tensor> w, b;
    for (const auto& mlp : masks.mlps) w.push_back(mlp[l]->weight), b.push_back(mlp[l]->bias);
    if (!views_of(s.hidden_weight[l], w) || !views_of(s.hidden_bias[l], b)) return false;
  }
  for (const auto& run : s.runs) {
    std::vector<at::Tensor> w, b;
    for (int64_t i = run.bands.first; i < run.bands.first + run.bands.count; ++i)
      w.push_back(masks.mlps[i].back()->weight), b.push_back(masks.mlps[i].back()->bias);
    if (!views_of(run.weight, w) || !views_of(run.bias, b)) return false;
  }
  return !s.runs.empty();
}

at::Tensor mask_estimator(MaskEstimatorImpl& masks, const at::Tensor& x) {
  const auto& mlps = masks.mlps;
  const int64_t B = x.size(0), T = x.size(1), nb = x.size(2), dim = x.size(3);
  int64_t width = 0;
  for (const auto& mlp : mlps) width += mlp.back()->weight.size(0) / 2;
  at::Tensor out = at::empty({B, T, width}, x.options());
  if (stacked(masks)) {
    const MaskEstimatorRuns& s = *masks.fast_runs;
    // Every band's hidden layers as one batched GEMM each, (bands, B*T, in):
    // band b's tokens are rows nb*dim apart in x, a view, no copy.
    at::Tensor h = x.reshape({B * T, nb, dim}).transpose(0, 1);
    for (size_t l = 0; l < s.hidden_weight.size(); ++l) {
      h = at::baddbmm(s.hidden_bias[l].unsqueeze(1), h, s.hidden_weight[l].transpose(1, 2));  // (nb, B*T, hidden)
      h.tanh_();
    }
    for (const auto& run : s.runs) {
      const BandRun& r = run.bands;
      at::Tensor y = at::baddbmm(run.bias.unsqueeze(1), h.narrow(0, r.first, r.count),
                                 run.weight.transpose(1, 2));  // (k, B*T, 2w)
      at::Tensor dst = out.narrow(-1, r.offset, r.count * r.width).view({B * T, r.count, r.width}).transpose(0, 1);
      at::glu_out(dst, y, -1);  // written in place into the concatenated output
    }
    return out;
  }
  int64_t offset = 0;
  for (size_t b = 0; b < mlps.size(); ++b) {
    // A band's tokens as a (B*T, dim) matrix with row stride nb*dim, no copy: each
    // Linear is one addmm with its bias in the GEMM's epilogue.
    at::Tensor h = x.select(2, static_cast<int64_t>(b)).view({B * T, dim});
    for (size_t l = 0; l < mlps[b].size(); ++l) {
      h = at::addmm(mlps[b][l]->bias, h, mlps[b][l]->weight.t());
      if (l + 1 < mlps[b].size()) h.tanh_();
    }
    const int64_t dim_in = h.size(1) / 2;
    at::Tensor dst = out.narrow(-1, offset, dim_in).view({B * T, dim_in});
    at::glu_out(dst, h, -1);  // written in place into the concatenated output
    offset += dim_in;
  }
  return out;
}

}  // namespace stemkit::models::roformer::fast
