#include "runtime/segment/overlap_add.h"

#include <ATen/ATen.h>

#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace stemkit::segment {
namespace {

// A window [offset, offset + length) of `tensor` (..., total): demucs' TensorChunk.
struct Chunk {
  const at::Tensor* tensor;
  int64_t offset;
  int64_t length;

  Chunk sub(int64_t at, int64_t len) const {
    // TensorChunk(self, at, len): capped at this chunk's length, absolute offset.
    return {tensor, offset + at, std::min(length - at, len)};
  }
  // TensorChunk.padded: `target` samples centred on the chunk, real audio where
  // the underlying tensor has it, zeros past its ends.
  at::Tensor padded(int64_t target) const {
    int64_t delta = target - length;
    int64_t total = tensor->size(-1);
    int64_t start = offset - delta / 2;
    int64_t end = start + target;
    int64_t correct_start = std::max<int64_t>(0, start), correct_end = std::min(total, end);
    at::Tensor slice = tensor->slice(-1, correct_start, correct_end);
    return at::constant_pad_nd(slice, {correct_start - start, end - correct_end});
  }
};

// demucs.utils.center_trim
at::Tensor center_trim(const at::Tensor& t, int64_t length) {
  int64_t delta = t.size(-1) - length;
  if (delta < 0) throw std::logic_error("center_trim: output shorter than its input");
  return delta ? t.slice(-1, delta / 2, t.size(-1) - (delta - delta / 2)) : t;
}

// The weighted outputs of overlapping chunks summed over the samples [base,
// base + cap) of a signal, and the sum of their weights: the buffers both
// demucs' and MSST's overlap-add keep. Final samples leave from the front
// (slide), so memory is bounded by cap whatever the track's length.
class WeightedSum {
 public:
  WeightedSum(int64_t base, int64_t cap) : base_(base), cap_(cap) {}
  bool started() const { return values_.defined(); }
  // The buffers, made at the first output (its shape is known only then):
  // values (..., cap), weights (..., cap), zero.
  void start(at::Tensor values, at::Tensor weights) {
    values_ = std::move(values);
    weights_ = std::move(weights);
  }
  // Adds `weighted` into the values and `w` into the weights over the signal's samples [from, to).
  void add(int64_t from, int64_t to, const at::Tensor& weighted, const at::Tensor& w) {
    values_.slice(-1, from - base_, to - base_).add_(weighted);
    weights_.slice(-1, from - base_, to - base_).add_(w);
  }
  at::Tensor values(int64_t from, int64_t to) const { return values_.narrow(-1, from - base_, to - from); }
  at::Tensor weights(int64_t from, int64_t to) const { return weights_.narrow(-1, from - base_, to - from); }
  // The samples before `to` leave the buffers; the freed tail is zero again.
  void slide(int64_t to) {
    const int64_t drop = to - base_, keep = cap_ - drop;
    base_ = to;
    if (!values_.defined() || drop <= 0) return;
    for (at::Tensor* t : {&values_, &weights_}) {
      if (keep > 0) t->narrow(-1, 0, keep).copy_(t->narrow(-1, drop, keep).clone());
      t->narrow(-1, std::max<int64_t>(keep, 0), std::min(drop, cap_)).zero_();
    }
  }
  int64_t cap() const { return cap_; }

 private:
  int64_t base_, cap_;
  at::Tensor values_, weights_;
};

// One pass of apply_model's split branch (one shift) over `whole`: every chunk
// of it in order, batch_size at a time (a batch cut short only at the end),
// each output centre-trimmed and added with its triangular weight into `sum_`,
// which holds the samples [begin, begin + cap) of `whole` at first, and only
// the samples [begin, end) (the track's) are kept:
// the caller takes each window's final samples out and slides the buffers on,
// so that no chunk runs twice and memory is bounded by the window.
class SplitPass {
 public:
  SplitPass(const Forward& model, Chunk whole, const DemucsSplit& o, const at::Tensor& weight, int64_t begin,
            int64_t end, int64_t cap)
      : model_(model), whole_(whole), o_(o), weight_(weight), begin_(begin), end_(end), sum_(begin, cap) {
    model_length_ = o.model_length ? o.model_length : o.segment;
    stride_ = static_cast<int64_t>((1 - o.overlap) * static_cast<double>(o.segment));
  }

  // Runs chunks until every sample of `whole` before `until` is final (no chunk still to run reaches it).
  void advance(int64_t until) {
    while (next_ < whole_.length && (next_ < until || !pending_.empty())) {
      if (next_ + o_.segment > begin_)
        pending_.push_back(whole_.sub(next_, o_.segment));  // else it ends before the track
      next_ += stride_;
      if (static_cast<int64_t>(pending_.size()) == o_.batch_size) flush();
    }
    if (next_ >= whole_.length) flush();  // the last, short batch
  }
  // The result over the final samples [from, to) of `whole`: (sources, channels, to - from), a new tensor.
  at::Tensor result(int64_t from, int64_t to) const { return sum_.values(from, to) / sum_.weights(from, to); }
  // The samples before `to` leave the buffers.
  void slide(int64_t to) { sum_.slide(to); }

 private:
  void flush() {
    if (pending_.empty()) return;
    std::vector<at::Tensor> inputs;
    for (const auto& c : pending_) inputs.push_back(c.padded(model_length_));
    // The last batch is topped up with silence: every call has one shape.
    while (static_cast<int64_t>(inputs.size()) < o_.batch_size) inputs.push_back(at::zeros_like(inputs[0]));
    at::Tensor batch_out = model_(at::stack(inputs));  // (batch, sources, channels, model_length)
    // Accumulated in float32 whatever the model's dtype, as demucs does.
    if (!sum_.started())
      sum_.start(at::zeros({batch_out.size(1), batch_out.size(2), sum_.cap()}, weight_.options()),
                 at::zeros({sum_.cap()}, weight_.options()));
    for (size_t i = 0; i < pending_.size(); ++i) {
      const Chunk& c = pending_[i];
      const int64_t start = c.offset - whole_.offset;  // in `whole`
      at::Tensor chunk_out = center_trim(batch_out[static_cast<int64_t>(i)], c.length);
      const int64_t from = std::max(start, begin_), to = std::min(start + c.length, end_);
      if (to <= from) continue;
      at::Tensor w = weight_.slice(0, from - start, to - start);
      sum_.add(from, to, w * chunk_out.slice(-1, from - start, to - start), w);
    }
    pending_.clear();
  }

  const Forward& model_;
  Chunk whole_;
  const DemucsSplit& o_;
  at::Tensor weight_;
  int64_t begin_, end_, model_length_ = 0, stride_ = 0, next_ = 0;
  std::vector<Chunk> pending_;
  WeightedSum sum_;  // (sources, channels, cap) and (cap)
};

}  // namespace

at::Tensor run_static(const Forward& model, const at::Tensor& input, int64_t segment) {
  int64_t length = input.size(-1);
  if (length > segment)
    throw std::invalid_argument("run_static: " + std::to_string(length) + " samples do not fit the segment of " +
                                std::to_string(segment));
  at::Tensor padded = length < segment ? at::constant_pad_nd(input, {0, segment - length}) : input;
  return model(padded).slice(-1, 0, length);
}

void apply_demucs_streaming(const Forward& model, const at::Tensor& mix, const DemucsSplit& o, int64_t window,
                            const Sink& sink) {
  if (mix.dim() != 2) throw std::invalid_argument("apply_demucs: mix must be (channels, length)");
  if (o.segment <= 0 || o.batch_size <= 0 || window <= 0)
    throw std::invalid_argument("apply_demucs: segment, batch_size and window must be positive");
  const int64_t seg = o.segment, model_length = o.model_length ? o.model_length : o.segment;
  if (model_length < seg) throw std::invalid_argument("apply_demucs: model_length shorter than the segment");
  const int64_t stride = static_cast<int64_t>((1 - o.overlap) * static_cast<double>(seg));
  if (stride <= 0) throw std::invalid_argument("overlap must be below 1");
  const int64_t length = mix.size(-1);
  // Triangular weights: 1..seg/2, then seg - seg/2 .. 1, normalised, to the
  // power; in float32 whatever the audio's dtype, as demucs computes them.
  auto f32 = mix.options().dtype(at::kFloat);
  at::Tensor weight = at::cat({at::arange(1, seg / 2 + 1, f32), at::arange(seg - seg / 2, 0, -1, f32)});
  weight = (weight / weight.max()).pow(o.transition_power);
  // In flight per pass: a window, a segment and a batch of strides; never more than the track.
  const int64_t cap = std::min(length, window + seg + o.batch_size * stride);

  // One pass over the track, or with shifts one per offset over the track
  // zero-padded by max_shift on both sides (the offsets drawn once for the
  // whole track): track sample t is sample t + delta of its pass.
  at::Tensor padded;
  std::vector<int64_t> offsets = o.shift_offsets;
  if (o.shifts > 0) {
    padded = Chunk{&mix, 0, length}.padded(length + 2 * o.max_shift);
    if (offsets.empty()) {
      std::mt19937_64 rng(o.seed);
      std::uniform_int_distribution<int64_t> pick(0, o.max_shift);
      for (int i = 0; i < o.shifts; ++i) offsets.push_back(pick(rng));
    }
  }
  std::vector<SplitPass> passes;
  passes.reserve(std::max<size_t>(1, offsets.size()));
  std::vector<int64_t> deltas;
  if (o.shifts <= 0) {
    passes.emplace_back(model, Chunk{&mix, 0, length}, o, weight, 0, length, cap);
    deltas.push_back(0);
  } else {
    for (int64_t shift : offsets) {
      const int64_t delta = o.max_shift - shift;
      passes.emplace_back(model, Chunk{&padded, shift, length + delta}, o, weight, delta, length + delta, cap);
      deltas.push_back(delta);
    }
  }
  for (int64_t ws = 0; ws < length; ws += window) {
    const int64_t we = std::min(length, ws + window);
    at::Tensor out;
    for (size_t p = 0; p < passes.size(); ++p) {
      passes[p].advance(we + deltas[p]);
      at::Tensor part = passes[p].result(ws + deltas[p], we + deltas[p]);
      out = out.defined() ? out + part : part;
      passes[p].slide(we + deltas[p]);
    }
    sink(ws, o.shifts > 0 ? out / static_cast<double>(offsets.size()) : out);
  }
}

at::Tensor apply_demucs(const Forward& model, const at::Tensor& mix, const DemucsSplit& o) {
  at::Tensor out;
  apply_demucs_streaming(model, mix, o, std::max<int64_t>(mix.size(-1), 1),
                         [&](int64_t, const at::Tensor& block) { out = block; });
  return out;
}

void apply_msst_streaming(const Forward& model, const at::Tensor& mix_in, const MsstChunking& o, int64_t window,
                          const Sink& sink) {
  if (mix_in.dim() != 2) throw std::invalid_argument("apply_msst: mix must be (channels, length)");
  if (o.chunk_size <= 0 || o.num_overlap <= 0 || o.batch_size <= 0 || window <= 0)
    throw std::invalid_argument("apply_msst: chunk_size, num_overlap, batch_size and window must be positive");
  const int64_t chunk = o.chunk_size, fade = chunk / 10, step = chunk / o.num_overlap, border = chunk - step;
  if (step <= 0) throw std::invalid_argument("apply_msst: num_overlap larger than the chunk");
  auto f32 = mix_in.options().dtype(at::kFloat);
  at::Tensor mix = mix_in.to(at::kFloat);
  const int64_t length_init = mix.size(-1);
  const bool bordered = length_init > 2 * border && border > 0;
  if (bordered) mix = at::reflection_pad1d(mix.unsqueeze(0), {border, border}).squeeze(0);
  const int64_t length = mix.size(-1);
  const int64_t shift = bordered ? border : 0;  // track sample t is sample t + shift of `mix`

  // Linear fades: linspace(0, 1, fade) in, linspace(1, 0, fade) out.
  at::Tensor window_fn = at::ones({chunk}, f32);
  if (fade > 0) {
    window_fn.slice(0, chunk - fade, chunk).copy_(at::linspace(1, 0, fade, f32));
    window_fn.slice(0, 0, fade).copy_(at::linspace(0, 1, fade, f32));
  }

  // Every chunk runs once, in order. Its weighted output and its window are
  // added into `sum` (MSST's `result` and `counter`), which holds the samples
  // [track_begin, track_begin + cap) of `mix` at first. A sample no chunk still to run reaches is final; each
  // window of the track goes to the sink once all its samples are, and leaves
  // the buffers. A window shorter than the track so bounds device memory (cap
  // is a window and a batch of chunks) at no extra work; per sample the sums
  // run over the same chunks in the same order whatever the window.
  const int64_t track_begin = shift, track_end = shift + length_init;  // the track, in samples of `mix`
  const int64_t cap = std::min(length_init, window + chunk + o.batch_size * step);
  int64_t emitted = 0;                // track samples given to the sink
  WeightedSum sum(track_begin, cap);  // both (sources, channels, cap)
  struct Pending {
    int64_t start, len;
    at::Tensor window;
  };
  std::vector<at::Tensor> inputs;
  std::vector<Pending> pending;
  auto flush = [&]() {
    if (pending.empty()) return;
    at::Tensor out = model(at::stack(inputs)).to(at::kFloat);
    if (out.dim() == 3) out = out.unsqueeze(1);  // one target: (batch, channels, chunk)
    if (!sum.started())
      sum.start(at::zeros({out.size(1), mix.size(0), cap}, f32), at::zeros({out.size(1), mix.size(0), cap}, f32));
    for (size_t j = 0; j < pending.size(); ++j) {
      const auto& p = pending[j];
      const int64_t from = std::max(p.start, track_begin), to = std::min(p.start + p.len, track_end);
      if (to <= from) continue;
      at::Tensor w = p.window.slice(0, from - p.start, to - p.start);
      sum.add(from, to, out[j].slice(-1, from - p.start, to - p.start) * w, w);
    }
    inputs.clear();
    pending.clear();
  };
  // The windows whose samples all lie before `final_end` (in samples of `mix`)
  // to the sink, then the buffers slid past them.
  auto emit = [&](int64_t final_end) {
    int64_t emitted_end = -1;  // in samples of `mix`
    while (emitted < length_init && std::min(length_init, emitted + window) + shift <= final_end) {
      const int64_t we = std::min(length_init, emitted + window);
      at::Tensor r = sum.values(emitted + shift, we + shift), c = sum.weights(emitted + shift, we + shift);
      sink(emitted, at::where(c == 0, at::zeros_like(r), r / c));  // nan_to_num, as MSST; a new tensor
      emitted = we;
      emitted_end = we + shift;
    }
    if (emitted_end >= 0 && emitted < length_init) sum.slide(emitted_end);
  };
  for (int64_t i = 0; i < length; i += step) {
    const int64_t len = std::min(i + chunk, length) - i;
    if (i + len <= track_begin) continue;  // ends before the track
    // Starts after the track: all of its output lands in the reflected border
    // that is cut off. MSST runs it; skipping it changes no output sample
    // (its window only ever weighted its own samples) and, at two overlaps,
    // saves one chunk in every track (47 -> 46 for 180 s of 8 s chunks).
    if (i >= track_end) break;
    at::Tensor part = mix.slice(-1, i, i + len);
    if (len < chunk)
      part = len > chunk / 2 ? at::reflection_pad1d(part.unsqueeze(0), {0, chunk - len}).squeeze(0)
                             : at::constant_pad_nd(part, {0, chunk - len});
    at::Tensor w = window_fn;
    if (i == 0 || i + step >= length) {
      w = window_fn.clone();
      if (i == 0 && fade > 0) w.slice(0, 0, fade).fill_(1);                          // first chunk: no fade-in
      if (i + step >= length && fade > 0) w.slice(0, chunk - fade, chunk).fill_(1);  // last chunk: no fade-out
    }
    inputs.push_back(part);
    pending.push_back({i, len, w});
    if (static_cast<int64_t>(pending.size()) == o.batch_size) {
      flush();
      if (sum.started()) emit(i + step);  // every chunk still to run starts at i + step or later
    }
  }
  flush();
  if (sum.started()) emit(track_end);
}

at::Tensor apply_msst(const Forward& model, const at::Tensor& mix, const MsstChunking& o) {
  at::Tensor out;
  apply_msst_streaming(model, mix, o, std::max<int64_t>(mix.size(-1), 1),
                       [&](int64_t, const at::Tensor& block) { out = block; });
  return out;
}

}  // namespace stemkit::segment
