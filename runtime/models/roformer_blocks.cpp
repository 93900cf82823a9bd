#include "runtime/models/roformer_blocks.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "runtime/attention/attention.h"
#include "runtime/compat/torch_compat.h"
#include "runtime/kernels/lt_gemm.h"
#include "runtime/kernels/roformer_kernels.h"
#include "runtime/plan/kernel_plan.h"

namespace stemkit::models::roformer {

namespace nn = torch::nn;

RMSNormImpl::RMSNormImpl(int64_t dim) : scale(std::sqrt(static_cast<double>(dim))) {
  gamma = register_parameter("gamma", at::ones({dim}), false);
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads, int64_t dim_head) : heads(heads), dim_head(dim_head) {
  auto rotary = register_module("rotary_embed", std::make_shared<nn::Module>());
  freqs = rotary->register_parameter("freqs", at::zeros({dim_head / 2}), false);
  norm = register_module("norm", RMSNorm(dim));
  to_qkv = register_module("to_qkv", Linear(dim, 3 * heads * dim_head, /*with_bias=*/false));
  to_gates = register_module("to_gates", Linear(dim, heads));
  auto out = register_module("to_out", std::make_shared<nn::Module>());
  to_out = out->register_module("0", Linear(heads * dim_head, dim, /*with_bias=*/false));
}

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

// F.normalize(x, dim=-1) * sqrt(dim) * gamma; on a GPU libtorch's fused RMS norm
// computes the same in one pass.
at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
#if STEMKIT_HAS_FUSED_RMS_NORM
  if (fused_rms(x)) return at::rms_norm(x, {x.size(-1)}, gamma, rms_eps(x.size(-1)));
#endif
  return x / x.norm(2, {-1}, true).clamp_min(1e-12) * scale * gamma;
}

namespace {

// W' = W * (gamma * sqrt(dim)) column by column (computed in float32), so that
// Linear(RMSNorm(x)) = Linear'(x / |x|); with the fused norm (which gives sqrt(dim)
// x / |x|) the factor is gamma alone. Weights stacked row-wise share the norm;
// biases[i] (undefined: none) belongs to weights[i].
void fold_norm(std::shared_ptr<FoldedLinear>& slot, const RMSNorm& norm, std::vector<at::Tensor> weights,
               std::vector<at::Tensor> biases, bool fused) {
  std::vector<at::Tensor> sources = weights;
  sources.insert(sources.end(), biases.begin(), biases.end());
  sources.push_back(norm->gamma);
  auto key = FoldedLinear::key(sources);
  key.emplace_back(nullptr, fused ? 1 : 0);
  if (slot && slot->made_from == key) return;
  auto folded = std::make_shared<FoldedLinear>();
  const at::Tensor g = norm->gamma.to(at::kFloat) * (fused ? 1.0 : norm->scale);
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
      bs.push_back(biases[i].defined() ? biases[i].to(at::kFloat) : at::zeros({weights[i].size(0)}, ws.front().options()));
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

const at::Tensor& AttentionImpl::rotary_table(int64_t n, const at::Device& device) {
  if (!rotary_) rotary_ = std::make_shared<RotaryTable>();
  if (rotary_->n != n || rotary_->made_from != FoldedLinear::key({freqs}).front() || rotary_->table.device() != device) {
    at::Tensor pos = at::arange(n, freqs.options().dtype(at::kFloat));
    at::Tensor angles = pos.unsqueeze(1) * freqs.to(at::kFloat).unsqueeze(0);  // (n, d/2)
    rotary_->table = at::complex(angles.cos(), angles.sin()).to(device);
    rotary_->made_from = FoldedLinear::key({freqs}).front();
    rotary_->n = n;
  }
  return rotary_->table;
}

void AttentionImpl::add_to_inplace(at::Tensor& x, const plan::KernelPlan& plan) {
  const int64_t N = x.size(0), n = x.size(1), dim = x.size(2), hd = heads * dim_head;
  fold_norm(qkv_gates_, norm, {to_qkv->weight, to_gates->weight}, {at::Tensor(), to_gates->bias}, fused_rms(x));
  rotary_table(n, x.device());
  at::Tensor qkvg = at::linear(unit_rows(x), qkv_gates_->weight, qkv_gates_->bias);  // (N, n, 3hd + h)
  // (N, h, n, d) views of q, k and v inside qkvg
  auto part = [&](int64_t i) { return qkvg.narrow(-1, i * hd, hd).view({N, n, heads, dim_head}).transpose(1, 2); };
  at::Tensor q = rotate_complex(part(0), rotary_->table), k = rotate_complex(part(1), rotary_->table);
  at::Tensor out = attention::attend(plan.attention, q, k, part(2));                            // (N, h, n, d)
  at::Tensor gates = qkvg.narrow(-1, 3 * hd, heads).sigmoid().unsqueeze(-1);    // (N, n, h, 1)
  at::Tensor gated = at::empty({N, n, heads, dim_head}, out.options());
  at::mul_out(gated, out.transpose(1, 2), gates);
  // x += to_out(gated), the addition done by the GEMM (beta = 1).
  x.view({N * n, dim}).addmm_(gated.view({N * n, hd}), to_out->weight.t());
}

void AttentionImpl::add_to_inplace_rows(at::Tensor& rows, const kernels::Axial& layout, const plan::KernelPlan& plan) {
  const double eps = rms_eps(rows.size(1));
  // The norm folded into to_qkv and to_gates apart: qkv's GEMM is then exactly
  // 3hd wide with no bias (with the h gate columns appended it ran slower:
  // docs/benchmarks.md), and the gates' narrow GEMM costs one read of u.
  prepare_rows();  // built at load (to_device); rebuilt here only if a weight changed since
  const at::Tensor& table = rotary_table(layout.length(), rows.device());
  at::Tensor u = kernels::unit_rows_add_bias(rows, at::Tensor(), eps);  // sqrt(dim) x / |x|
  at::Tensor logits = at::addmm(gates_->bias, u, gates_->weight.t());  // (rows, h, padded to 8)
  const bool lt = uses_lt(rows, plan);
  at::Tensor qkv;  // (rows, 3hd)
  if (lt) {
    qkv = at::empty({rows.size(0), qkv_->weight.size(0)}, rows.options());
    kernels::lt_linear(u, qkv_->weight, at::Tensor(), qkv, kernels::Epilogue::none, false);
  } else {
    qkv = at::mm(u, qkv_->weight.t());
  }
  // x += to_out(gated), the addition done by the GEMM (beta = 1).
  auto add_out = [&](const at::Tensor& gated) {
    if (lt)
      kernels::lt_linear(gated, to_out->weight, at::Tensor(), rows, kernels::Epilogue::none, /*accumulate=*/true);
    else
      rows.addmm_(gated, to_out->weight.t());
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
  at::Tensor gated;                                                                      // (rows, hd)
  if (v.defined()) {
    gated = kernels::gate_to_rows(attention::attend(plan.attention, q, k, v), logits, layout, heads, dim_head);
  } else {
    const int64_t per = layout.T * layout.F;
    const kernels::Axial one{1, layout.T, layout.F, layout.axis};
    gated = at::empty({layout.rows(), heads * dim_head}, qkv.options());
    for (int64_t b = 0; b < layout.B; ++b) {
      at::Tensor out = attention::attend(plan.attention, q.narrow(0, b * layout.F, layout.F), k.narrow(0, b * layout.F, layout.F),
                                         kernels::v_along_t(qkv, layout, heads, dim_head, b));  // (F, h, T, d)
      kernels::gate_to_rows(out, logits.narrow(0, b * per, per), one, heads, dim_head, gated.narrow(0, b * per, per));
    }
  }
  add_out(gated);
}

void AttentionImpl::prepare_rows() {
  fold_norm(qkv_, norm, {to_qkv->weight}, {at::Tensor()}, /*fused=*/true);
  fold_norm(gates_, norm, {to_gates->weight}, {to_gates->bias}, /*fused=*/true);
}

LinearAttentionImpl::LinearAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head) : heads(heads), dim_head(dim_head) {
  norm = register_module("norm", RMSNorm(dim));
  auto qkv = register_module("to_qkv", std::make_shared<nn::Module>());  // Sequential(Linear, Rearrange)
  to_qkv = qkv->register_module("0", Linear(dim, 3 * heads * dim_head, /*with_bias=*/false));
  temperature = register_parameter("temperature", at::zeros({heads, 1, 1}), false);
  auto out = register_module("to_out", std::make_shared<nn::Module>());  // Sequential(Rearrange, Linear)
  to_out = out->register_module("1", Linear(heads * dim_head, dim, /*with_bias=*/false));
}

at::Tensor LinearAttentionImpl::forward(at::Tensor x) {
  x = norm(x);
  const int64_t N = x.size(0), n = x.size(1);
  // 'b n (qkv h d) -> qkv b h d n'
  at::Tensor qkv = to_qkv(x).view({N, n, 3, heads, dim_head}).permute({2, 0, 3, 4, 1});  // (3, N, h, d, n)
  auto l2norm = [](const at::Tensor& t) { return t / t.norm(2, {-1}, true).clamp_min(1e-12); };  // F.normalize
  at::Tensor q = l2norm(qkv[0]) * temperature.exp(), k = l2norm(qkv[1]), v = qkv[2];
  at::Tensor out = attention::attend_math(q, k, v, 8.0);                                 // (N, h, d, n)
  return to_out(out.permute({0, 3, 1, 2}).reshape({N, n, heads * dim_head}));            // 'b h d n -> b n (h d)'
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  auto net = register_module("net", std::make_shared<nn::Module>());
  norm = net->register_module("0", RMSNorm(dim));
  in = net->register_module("1", Linear(dim, dim * mult));
  out = net->register_module("4", Linear(dim * mult, dim));
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

void FeedForwardImpl::add_to_inplace(at::Tensor& x, const plan::KernelPlan& plan) {
  fold_norm(in_, norm, {in->weight}, {in->bias}, fused_rms(x));
  at::Tensor u = unit_rows(x);
  at::Tensor h = fused_gelu(x, plan) ? at::_addmm_activation(in_->bias, u.view({-1, u.size(-1)}), in_->weight.t(), 1, 1, /*use_gelu=*/true)
                               : at::gelu(at::linear(u, in_->weight, in_->bias));  // (..., 4 dim)
  at::Tensor rows = x.view({-1, x.size(-1)});
  rows.addmm_(h.view({rows.size(0), -1}), out->weight.t()).add_(out->bias);  // x += net.4(h)
}

void FeedForwardImpl::prepare_rows() { fold_norm(in_, norm, {in->weight}, {in->bias}, /*fused=*/true); }

void FeedForwardImpl::add_to_inplace_rows(at::Tensor& rows, const plan::KernelPlan& plan) {
  prepare_rows();
  if (uses_lt(rows, plan) && fused_gelu(rows, plan)) {
    // cuBLASLt: GELU and bias in the first GEMM's epilogue; the second adds
    // a wᵀ + bias into x itself, so the norm leaves x as it is.
    at::Tensor u = kernels::unit_rows_add_bias(rows, at::Tensor(), rms_eps(rows.size(1)));
    at::Tensor h = at::empty({rows.size(0), in_->weight.size(0)}, rows.options());
    kernels::lt_linear(u, in_->weight, in_->bias, h, kernels::Epilogue::gelu_bias, false);
    kernels::lt_linear(h, out->weight, out->bias, rows, kernels::Epilogue::bias, /*accumulate=*/true);
    return;
  }
  // u = norm(x), and net.4's bias added to x in the same pass, before its GEMM adds the rest.
  at::Tensor u = kernels::unit_rows_add_bias(rows, out->bias, rms_eps(rows.size(1)));
  at::Tensor h = fused_gelu(rows, plan) ? at::_addmm_activation(in_->bias, u, in_->weight.t(), 1, 1, /*use_gelu=*/true)
                                  : at::gelu(at::addmm(in_->bias, u, in_->weight.t()));
  rows.addmm_(h, out->weight.t());
}

TransformerImpl::TransformerImpl(int64_t depth, int64_t dim, int64_t heads, int64_t dim_head, bool norm_output,
                                 bool linear_attn) {
  auto layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i) {
    auto pair = std::make_shared<nn::Module>();
    if (linear_attn)
      linear_attention.push_back(pair->register_module("0", LinearAttention(dim, heads, dim_head)));
    else
      attention.push_back(pair->register_module("0", Attention(dim, heads, dim_head)));
    feed_forward.push_back(pair->register_module("1", FeedForward(dim, 4)));
    layers->push_back(pair);
  }
  if (norm_output) norm = register_module("norm", RMSNorm(dim));
}

namespace {
// In place only on a tensor nobody else sees: one reference to it and to its storage.
void make_own(at::Tensor& x) {
  if (!x.is_contiguous() || x.use_count() != 1 || x.storage().use_count() != 1) x = x.clone(at::MemoryFormat::Contiguous);
}
}  // namespace

at::Tensor TransformerImpl::forward(at::Tensor x, const plan::KernelPlan& plan) {
  make_own(x);
  for (size_t j = 0; j < feed_forward.size(); ++j) {
    if (linear_attention.empty())
      attention[j]->add_to_inplace(x, plan);
    else
      x.add_(linear_attention[j](x));
    feed_forward[j]->add_to_inplace(x, plan);
  }
  return norm ? norm(x) : x;
}

at::Tensor TransformerImpl::forward_axial(at::Tensor x, int axis, const plan::KernelPlan& plan) {
  TORCH_CHECK(x.dim() == 4 && (axis == 1 || axis == 2), "Transformer::forward_axial: x must be (B, T, F, dim), axis 1 or 2");
  const int64_t B = x.size(0), T = x.size(1), F = x.size(2), d = x.size(3);
  if (!linear_attention.empty() || !uses_kernels(x, plan)) {
    // The ATen path: the sequences made contiguous, (B*F, T, d) or (B*T, F, d).
    at::Tensor seqs = axis == 1 ? x.transpose(1, 2).reshape({B * F, T, d}) : x.reshape({B * T, F, d});
    x.reset();  // so that a view of a tensor the caller handed over counts as the only reference
    if (axis == 2) return forward(std::move(seqs), plan).view({B, T, F, d});
    return forward(std::move(seqs), plan).view({B, F, T, d}).transpose(1, 2);
  }
  make_own(x);
  const kernels::Axial layout{B, T, F, axis};
  at::Tensor rows = x.view({B * T * F, d});
  for (size_t j = 0; j < feed_forward.size(); ++j) {
    attention[j]->add_to_inplace_rows(rows, layout, plan);
    feed_forward[j]->add_to_inplace_rows(rows, plan);
  }
  return norm ? norm(x) : x;
}

void TransformerImpl::prepare_rows(const at::TensorOptions& options, const plan::KernelPlan& plan) {
  if (!linear_attention.empty() || !uses_kernels(at::empty({0}, options), plan)) return;
  at::NoGradGuard no_grad;
  for (auto& a : attention) a->prepare_rows();
  for (auto& f : feed_forward) f->prepare_rows();
}

at::Tensor run_axial_layers(std::vector<AxialLayer>& layers, at::Tensor x, bool skip_connection,
                            const plan::KernelPlan& plan) {
  const int64_t B = x.size(0), T = x.size(1), F = x.size(2), d = x.size(3);
  std::vector<at::Tensor> earlier;  // each layer's output, for the skip connections
  for (AxialLayer& layer : layers) {
    if (layer.linear) x = layer.linear->forward(x.reshape({B, T * F, d}), plan).view({B, T, F, d});  // over all tokens
    for (size_t j = 0; j < earlier.size(); ++j) {
      if (j == 0)
        x = x + earlier[0];  // a new tensor: the stored outputs stay as they are
      else
        x.add_(earlier[j]);
    }
    x = layer.time->forward_axial(std::move(x), 1, plan);  // over frames
    x = layer.freq->forward_axial(std::move(x), 2, plan);  // over bands
    if (skip_connection) earlier.push_back(x);
  }
  return x;
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

}  // namespace

BandSplitImpl::BandSplitImpl(int64_t dim, std::vector<int64_t> dims) : dim_inputs(std::move(dims)) {
  auto features = register_module("to_features", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    auto seq = std::make_shared<nn::Module>();
    norms.push_back(seq->register_module("0", RMSNorm(dim_in)));
    linears.push_back(seq->register_module("1", Linear(dim_in, dim)));
    features->push_back(seq);
  }
  stack_parameters(/*copy_values=*/false);  // the Linear layers are not set yet
}

void BandSplitImpl::stack_parameters(bool copy_values) {
  if (copy_values && stacked()) return;  // still views of the stacked tensors: to() kept device and dtype
  runs_.clear();
  for (const BandRun& r : band_runs(dim_inputs)) {
    Run run{r, {}, {}, {}};
    if (r.count > 1) {
      std::vector<at::Tensor> g, w, b;
      for (int64_t i = r.first; i < r.first + r.count; ++i)
        g.push_back(norms[i]->gamma), w.push_back(linears[i]->weight), b.push_back(linears[i]->bias);
      run.gamma = stack_in_place(g), run.weight = stack_in_place(w, copy_values), run.bias = stack_in_place(b, copy_values);
    }
    runs_.push_back(run);
  }
}

bool BandSplitImpl::run_stacked(const Run& run) const {
  if (run.bands.count < 2) return false;
  std::vector<at::Tensor> g, w, b;
  for (int64_t i = run.bands.first; i < run.bands.first + run.bands.count; ++i)
    g.push_back(norms[i]->gamma), w.push_back(linears[i]->weight), b.push_back(linears[i]->bias);
  return views_of(run.gamma, g) && views_of(run.weight, w) && views_of(run.bias, b);
}

bool BandSplitImpl::stacked() const {
  bool any = false;
  for (const Run& run : runs_) {
    if (run.bands.count < 2) continue;
    if (!run_stacked(run)) return false;
    any = true;
  }
  return any;
}

at::Tensor BandSplitImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), nb = static_cast<int64_t>(linears.size());
  const int64_t dim = linears.front()->weight.size(0);
  at::Tensor out = at::empty({B, T, nb, dim}, x.options());
  for (const Run& run : runs_) {
    const BandRun& r = run.bands;
    const int64_t first = r.first, k = r.count, w = r.width;
    if (run_stacked(run)) {
      // The run's k bands at once: RMSNorm per band (gamma (k, w)), then one
      // batched GEMM (k, B*T, w) x (k, w, dim) with the biases added by it.
      at::Tensor part = x.narrow(-1, r.offset, k * w).reshape({B * T, k, w});
      at::Tensor u = unit_rows(part);
      if (!fused_rms(part)) u = u * norms[first]->scale;  // the fused norm includes sqrt(w)
      u = u * run.gamma;
      at::Tensor y = at::baddbmm(run.bias.unsqueeze(1), u.transpose(0, 1), run.weight.transpose(1, 2));  // (k, B*T, dim)
      out.narrow(2, first, k).copy_(y.view({k, B, T, dim}).permute({1, 2, 0, 3}));
      continue;
    }
    for (int64_t i = first; i < first + k; ++i) {
      // addmm on the rows: the bias in the GEMM's epilogue (a 3-D Linear adds it apart).
      at::Tensor u = norms[i](x.narrow(-1, r.offset + (i - first) * w, w));
      at::Tensor y = at::addmm(linears[i]->bias, u.reshape({-1, w}), linears[i]->weight.t());
      out.select(2, i).copy_(y.view({B, T, dim}));
    }
  }
  return out;
}

MaskEstimatorImpl::MaskEstimatorImpl(int64_t dim, const std::vector<int64_t>& dim_inputs, int64_t linear_layers,
                                     int64_t hidden) {
  auto to_freqs = register_module("to_freqs", nn::ModuleList());
  for (int64_t dim_in : dim_inputs) {
    // Sequential(MLP, GLU): the MLP's Linear layers at even indices, Tanh between.
    auto outer = std::make_shared<nn::Module>();
    auto mlp = outer->register_module("0", std::make_shared<nn::Module>());
    std::vector<Linear> linears;
    for (int64_t l = 0; l < linear_layers; ++l) {
      const int64_t in = l == 0 ? dim : hidden, out = l + 1 == linear_layers ? dim_in * 2 : hidden;
      linears.push_back(mlp->register_module(std::to_string(2 * l), Linear(in, out)));
    }
    mlps.push_back(linears);
    to_freqs->push_back(outer);
  }
  stack_parameters(/*copy_values=*/false);  // the Linear layers are not set yet
}

void MaskEstimatorImpl::stack_parameters(bool copy_values) {
  if (copy_values && stacked()) return;  // as BandSplit's
  hidden_weight_.clear(), hidden_bias_.clear(), runs_.clear();
  const size_t layers = mlps.front().size();
  for (size_t l = 0; l + 1 < layers; ++l) {
    std::vector<at::Tensor> w, b;
    for (const auto& mlp : mlps) w.push_back(mlp[l]->weight), b.push_back(mlp[l]->bias);
    hidden_weight_.push_back(stack_in_place(w, copy_values));
    hidden_bias_.push_back(stack_in_place(b, copy_values));
  }
  std::vector<int64_t> widths;
  for (const auto& mlp : mlps) widths.push_back(mlp.back()->weight.size(0) / 2);
  for (const BandRun& r : band_runs(widths)) {
    std::vector<at::Tensor> w, b;
    for (int64_t i = r.first; i < r.first + r.count; ++i) w.push_back(mlps[i].back()->weight), b.push_back(mlps[i].back()->bias);
    runs_.push_back({r, stack_in_place(w, copy_values), stack_in_place(b, copy_values)});
  }
}

bool MaskEstimatorImpl::stacked() const {
  for (size_t l = 0; l < hidden_weight_.size(); ++l) {
    std::vector<at::Tensor> w, b;
    for (const auto& mlp : mlps) w.push_back(mlp[l]->weight), b.push_back(mlp[l]->bias);
    if (!views_of(hidden_weight_[l], w) || !views_of(hidden_bias_[l], b)) return false;
  }
  for (const Run& run : runs_) {
    std::vector<at::Tensor> w, b;
    for (int64_t i = run.bands.first; i < run.bands.first + run.bands.count; ++i)
      w.push_back(mlps[i].back()->weight), b.push_back(mlps[i].back()->bias);
    if (!views_of(run.weight, w) || !views_of(run.bias, b)) return false;
  }
  return !runs_.empty();
}

at::Tensor MaskEstimatorImpl::forward(const at::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), nb = x.size(2), dim = x.size(3);
  int64_t width = 0;
  for (const auto& mlp : mlps) width += mlp.back()->weight.size(0) / 2;
  at::Tensor out = at::empty({B, T, width}, x.options());
  if (stacked()) {
    // Every band's hidden layers as one batched GEMM each, (bands, B*T, in):
    // band b's tokens are rows nb*dim apart in x, a view, no copy.
    at::Tensor h = x.reshape({B * T, nb, dim}).transpose(0, 1);
    for (size_t l = 0; l < hidden_weight_.size(); ++l) {
      h = at::baddbmm(hidden_bias_[l].unsqueeze(1), h, hidden_weight_[l].transpose(1, 2));  // (nb, B*T, hidden)
      h.tanh_();
    }
    for (const Run& run : runs_) {
      const BandRun& r = run.bands;
      at::Tensor y = at::baddbmm(run.bias.unsqueeze(1), h.narrow(0, r.first, r.count), run.weight.transpose(1, 2));  // (k, B*T, 2w)
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

void to_device(nn::Module& module, const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& plan) {
  // Moved as they are, then converted where they are: on a GPU the conversion
  // of 160 million numbers is the device's, not a CPU pass before the copy; and
  // the rotary frequencies, which stay float32, keep every bit (converted with
  // the rest and back, fp16 rounded them to 11 bits).
  module.to(device);
  const std::string rotary = "rotary_embed.freqs";
  auto is_rotary = [&](const std::string& key) {
    return key.size() >= rotary.size() && key.compare(key.size() - rotary.size(), rotary.size(), rotary) == 0;
  };
  {
    at::NoGradGuard no_grad;
    for (auto& item : module.named_parameters())
      if (!is_rotary(item.key()) && item.value().scalar_type() != dtype) item.value().set_data(item.value().to(dtype));
    for (auto& item : module.named_buffers())
      if (at::isFloatingType(item.value().scalar_type()) && item.value().scalar_type() != dtype)
        item.value().set_data(item.value().to(dtype));
  }
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  auto prepare = [&](nn::Module* m) {
    if (auto* split = dynamic_cast<BandSplitImpl*>(m)) split->stack_parameters();
    if (auto* masks = dynamic_cast<MaskEstimatorImpl*>(m)) masks->stack_parameters();
    if (auto* transformer = dynamic_cast<TransformerImpl*>(m)) transformer->prepare_rows(options, plan);
  };
  prepare(&module);  // (modules() can list the module itself only when it is held by a shared_ptr)
  for (const auto& m : module.modules(/*include_self=*/false)) prepare(m.get());
}

}  // namespace stemkit::models::roformer
