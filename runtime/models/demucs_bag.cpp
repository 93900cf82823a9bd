#include "runtime/models/demucs_bag.h"

#include <ATen/ATen.h>

#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>

#include "runtime/capture/graph_runner.h"
#include "runtime/error.h"
#include "runtime/segment/host_copy.h"
#include "runtime/segment/overlap_add.h"

namespace stemkit::models {

void DemucsBag::to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) {
  runners.clear();  // graphs captured for another device or dtype
  for (auto& m : models) m.to(device, dtype, kernels);
}

DemucsBag load_demucs_bag(const std::string& name, const std::vector<std::string>& member_paths,
                          std::vector<std::vector<double>> weights, std::optional<double> segment) {
  if (member_paths.empty()) throw Error("{}: a model needs at least one .th file", name);
  DemucsBag bag;
  bag.name = name;
  bag.segment = segment;
  for (const auto& path : member_paths) {
    bag.models.push_back(load_htdemucs(path));
    const auto& first = bag.models.front().config();
    const auto& c = bag.models.back().config();
    if (c.sources != first.sources || c.samplerate != first.samplerate || c.audio_channels != first.audio_channels)
      throw Error("{}: its sources, sample rate or channels differ from {}'s; the members of one model must agree",
                  path, member_paths.front());
  }
  const size_t sources = bag.sources().size();
  if (!weights.empty()) {
    if (weights.size() != member_paths.size())
      throw Error("{}: {} rows of weights for {} models", name, weights.size(), member_paths.size());
    for (const auto& row : weights)
      if (row.size() != sources)
        throw Error("{}: a row of weights has {} entries for {} sources", name, row.size(), sources);
  }
  bag.weights = std::move(weights);
  return bag;
}

at::Tensor separate(const DemucsBag& bag, const at::Tensor& wav_in, const SeparationOptions& o,
                    const ProgressFn& progress, SeparationReport* report) {
  if (wav_in.dim() != 2 || wav_in.size(0) != bag.audio_channels())
    throw std::invalid_argument("separate: expected (" + std::to_string(bag.audio_channels()) + " channels, samples)");
  const int64_t length = wav_in.size(1), S = static_cast<int64_t>(bag.sources().size());
  const at::Device device = bag.models.front().device();
  const int64_t sr = bag.samplerate();

  const int64_t window = o.window_samples(sr);
  // One window covering the track: the statistics, the sum over the members and
  // the scaling back done on the model's device, the stems copied to the CPU
  // once (segment::assemble_on_device); else each window comes back to be
  // summed on the CPU.
  const bool on_device = segment::assemble_on_device(length, window, o.device_assembly);

  // demucs.api: normalise by the mono mix's statistics (unbiased std), scale back after.
  at::Tensor wav = on_device ? wav_in.to(device, at::kFloat) : wav_in.to(at::kFloat);
  at::Tensor ref = wav.mean(0);
  const double ref_mean = ref.mean().item<double>();
  const double ref_std = (length > 1 ? ref.std().item<double>() : 0.0) + 1e-8;
  // By a 0-dim tensor, not a number: CUDA multiplies by the reciprocal of a
  // number, which can differ from the division (the CPU's) in the last bit.
  auto by = [](const at::Tensor& t, double d) { return at::scalar_tensor(d, t.options()); };
  at::Tensor mix = ((wav - ref_mean) / by(wav, ref_std)).to(device);

  // (S, C, length): on the CPU, or when on_device on the model's device, where
  // the first member's result itself starts the sum (no zeroed track to add it to).
  at::Tensor estimates;
  if (!on_device) estimates = at::zeros({S, wav.size(0), length}, wav.options());
  std::vector<double> totals(static_cast<size_t>(S), 0.0);
  const double work = static_cast<double>(bag.models.size()) * std::max(1, o.shifts) * static_cast<double>(length);
  double done = 0;
  for (size_t m = 0; m < bag.models.size(); ++m) {
    const HTDemucs& net = bag.models[m];
    segment::DemucsSplit split;
    split.model_length = net.training_length();
    // demucs: --segment, else the bag's segment, else the network's own.
    const std::optional<double> seconds = o.segment ? o.segment : bag.segment;
    split.segment = seconds ? static_cast<int64_t>(*seconds * static_cast<double>(sr)) : net.training_length();
    if (split.segment > split.model_length || split.segment <= 0)
      throw Error("separate: a segment of {} s does not fit {}, trained on {} s segments", *seconds, bag.name,
                  net.config().segment);
    split.overlap = o.overlap;
    split.shifts = o.shifts;
    split.max_shift = static_cast<int64_t>(0.5 * static_cast<double>(sr));
    split.batch_size = o.batch_size;
    split.seed = o.seed + m;  // each network its own offsets, as demucs draws them anew

    // One shape per call: (batch_size, channels, training length), in the network's dtype.
    if (bag.runners.size() != bag.models.size()) bag.runners.assign(bag.models.size(), nullptr);
    auto& runner = capture::reuse_or_make(
        bag.runners[m], [&net](const at::Tensor& x) { return net.forward(x); }, o.graphs && device.is_cuda());
    int64_t calls = 0;
    segment::Forward forward = [&](const at::Tensor& x) {
      if (report) std::copy(x.sizes().begin(), x.sizes().end(), report->forward_shape);
      ++calls;
      at::Tensor out = runner(x);
      done += static_cast<double>(x.size(0)) * static_cast<double>(split.segment) * (1 - o.overlap);
      if (progress) progress(std::min(1.0, done / work));
      return out;
    };
    const std::vector<double>* row = bag.weights.empty() ? nullptr : &bag.weights[m];
    at::Tensor row_weights;  // (S, 1, 1), on the model's device
    if (row && on_device)
      row_weights = at::tensor(*row, at::TensorOptions().dtype(at::kDouble)).to(device, at::kFloat).view({S, 1, 1});
    segment::apply_demucs_streaming(forward, mix, split, window, [&](int64_t start, const at::Tensor& block) {
      at::Tensor out;  // (S, C, n)
      if (on_device) {
        out = row ? block * row_weights : block;
      } else {
        out = segment::to_host(block);  // a copy, through pinned memory
        if (row)
          for (int64_t s = 0; s < S; ++s) out[s].mul_((*row)[static_cast<size_t>(s)]);
      }
      if (!estimates.defined())
        estimates = out;  // on_device: one window, the whole track, a tensor of its own
      else
        estimates.slice(-1, start, start + out.size(-1)).add_(out);
    });
    for (int64_t s = 0; s < S; ++s) totals[static_cast<size_t>(s)] += row ? (*row)[static_cast<size_t>(s)] : 1.0;
    if (report) {
      report->graphs = runner.status();
      report->forward_calls += calls;
    }
  }
  if (!estimates.defined()) estimates = at::zeros({S, wav.size(0), length}, wav.options());  // an empty track
  for (int64_t s = 0; s < S; ++s) estimates[s].div_(by(estimates, totals[static_cast<size_t>(s)]));
  estimates.mul_(ref_std).add_(ref_mean);
  // All GPU work is queued: the pinned memory for the copy is allocated while it runs.
  if (on_device) estimates = segment::to_host(estimates);
  if (progress) progress(1.0);
  return estimates;
}

}  // namespace stemkit::models
