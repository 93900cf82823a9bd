#include "runtime/models/separator.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "runtime/capture/graph_runner.h"
#include "runtime/error.h"
#include "runtime/segment/host_copy.h"
#include "runtime/segment/overlap_add.h"
#include "runtime/weights/checkpoint.h"
#include "runtime/timeline.h"

namespace stemkit::models {
namespace {

class DemucsSeparator : public Separator {
 public:
  explicit DemucsSeparator(DemucsBag bag) : bag_(std::move(bag)) {}
  const std::vector<std::string>& stems() const override { return bag_.sources(); }
  int64_t samplerate() const override { return bag_.samplerate(); }
  int64_t audio_channels() const override { return bag_.audio_channels(); }
  int64_t segment_samples() const override { return bag_.models.front().training_length(); }
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) override {
    bag_.to(device, dtype, kernels);
  }
  at::Device device() const override { return bag_.models.front().device(); }
  void release_graphs() override { bag_.runners.clear(); }
  at::Tensor separate(const at::Tensor& wav, const SeparationOptions& o, const ProgressFn& progress,
                      SeparationReport* report) const override {
    if (o.tta)
      throw Error(
          "test-time augmentation (--tta) is MSST's, for RoFormer configurations; "
          "demucs averages random shifts instead (--shifts N)");
    return models::separate(bag_, wav, o, progress, report);
  }

 private:
  DemucsBag bag_;
};

// Model: BSRoformer or MelBandRoformer (config().num_stems, audio_channels(),
// stft_hop_length; to(); forward (B, C, chunk) -> (B, stems, C, chunk)).
template <class Model>
class RoformerSeparator : public Separator {
 public:
  RoformerSeparator(MsstConfig config, Model model) : config_(std::move(config)), model_(std::move(model)) {
    stems_ = config_.model_stems();
    if (static_cast<int64_t>(stems_.size()) != model_.config().num_stems)
      throw Error("{}: the model has {} stem(s) (model.num_stems), the training section names {}", config_.path,
                  model_.config().num_stems, stems_.size());
    if (config_.target_instrument) stems_.push_back("instrumental");
    if (config_.num_channels != model_.config().audio_channels())
      throw Error("{}: audio.num_channels is {} but model.stereo says {}", config_.path, config_.num_channels,
                  model_.config().audio_channels());
    if (config_.chunk_size % model_.config().stft_hop_length && !model_.config().match_input_audio_length)
      throw Error(
          "{}: audio.chunk_size {} is not a multiple of model.stft_hop_length {}: "
          "the model's output would be shorter than a chunk (MSST fails there too); "
          "set model.match_input_audio_length: true, or a chunk_size that is a multiple of the hop",
          config_.path, config_.chunk_size, model_.config().stft_hop_length);
  }
  const std::vector<std::string>& stems() const override { return stems_; }
  int64_t samplerate() const override { return config_.sample_rate; }
  int64_t audio_channels() const override { return config_.num_channels; }
  int64_t segment_samples() const override { return config_.chunk_size; }
  void to(const at::Device& device, at::ScalarType dtype, const plan::KernelPlan& kernels) override {
    model_.to(device, dtype, kernels);
    device_ = device;
    runner_.reset();
  }
  at::Device device() const override { return device_; }
  void release_graphs() override { runner_.reset(); }

  at::Tensor separate(const at::Tensor& wav, const SeparationOptions& o, const ProgressFn& progress,
                      SeparationReport* report) const override {
    const int64_t length = wav.size(1), stems = static_cast<int64_t>(config_.model_stems().size());
    // One window covering the track: the stems stay on the model's device
    // until final, then come back in one copy (segment::assemble_on_device).
    const bool on_device = segment::assemble_on_device(length, o.window_samples(samplerate()), o.device_assembly);
    const at::Tensor original = wav.to(device_, at::kFloat);
    at::Tensor mix = original;
    // inference.normalize, as MSST's normalize_audio: the mono mix's mean and
    // population std (numpy's); a silent track is left as it is.
    double mean = 0, scale = 1;
    if (config_.normalize) {
      at::Tensor mono = mix.mean(0);
      mean = mono.mean().item<double>();
      const double std = length > 0 ? mono.std(/*unbiased=*/false).item<double>() : 0.0;
      if (std > 0) scale = std;
      mix = (mix - mean) / scale;
    }
    const int passes = o.tta ? 3 : 1;
    auto pass = [&](int p) -> ProgressFn {
      if (!progress) return {};
      return [&progress, p, passes](double f) { progress((p + f) / passes); };
    };
    // (model stems, C, length): on the model's device when on_device, else on the CPU.
    at::Tensor out = demix(mix, o, pass(0), report, on_device);
    if (o.tta) {
      // MSST's apply_tta: the track with its channels swapped and with its
      // polarity inverted, each separated and undone, averaged with the first.
      out.add_(demix(mix.flip(0), o, pass(1), report, on_device).flip(1));
      out.sub_(demix(mix.neg(), o, pass(2), report, on_device));
      out.div_(at::scalar_tensor(3.0, out.options()));  // not div_(3): CUDA multiplies by 1/3 for a CPU scalar
    }
    if (report) report->graphs = runner_ ? runner_->status() : std::string();
    if (config_.normalize) out.mul_(scale).add_(mean);
    // A one-target model: the rest of the mix is the instrumental stem (of the
    // stems scaled back: MSST subtracts the normalised target from the original
    // mix, then scales that back too, which leaves the instrumental off by the
    // scale when normalize is on; mix = target + instrumental holds here).
    // The same float32 operations on either device, so the same bits.
    if (on_device && out.is_cuda()) {
      // All GPU work is queued: the pinned memory is allocated while it runs.
      at::Tensor result = segment::pinned_empty({static_cast<int64_t>(stems_.size()), wav.size(0), length});
      result.narrow(0, 0, stems).copy_(out);
      if (config_.target_instrument) result[stems].copy_(original - out[0]);
      out = result;
    } else if (config_.target_instrument) {
      const at::Tensor mix_here = out.device() == original.device() ? original : wav.to(at::kFloat);
      out = at::cat({out, (mix_here - out[0]).unsqueeze(0)}, 0);
    }
    if (progress) progress(1.0);
    return out;
  }

 private:
  // MSST's demix of mix (C, length) on the device -> (model stems, C, length):
  // on the device when on_device (then one window covers the track), else on the CPU.
  at::Tensor demix(const at::Tensor& mix, const SeparationOptions& o, const ProgressFn& progress,
                   SeparationReport* report, bool on_device) const {
    auto& runner = capture::reuse_or_make(
        runner_, [this](const at::Tensor& x) { return model_.forward(x); }, o.graphs && device_.is_cuda());
    segment::MsstChunking chunking;
    chunking.chunk_size = config_.chunk_size;
    chunking.num_overlap = config_.num_overlap;
    chunking.batch_size = o.batch_size;
    // The track's last batch runs with the chunks it has (as MSST runs it),
    // eagerly: capturing a graph for that one call would cost more.
    const int64_t length = mix.size(1), stems = static_cast<int64_t>(config_.model_stems().size());
    double done = 0;
    const double step = static_cast<double>(config_.chunk_size) / static_cast<double>(config_.num_overlap);
    segment::Forward forward = [&](const at::Tensor& x) {
      const bool full = x.size(0) == o.batch_size;
      if (report) {
        if (full || report->forward_calls == 0) std::copy(x.sizes().begin(), x.sizes().end(), report->forward_shape);
        ++report->forward_calls;
      }
      at::Tensor y = full ? runner(x) : model_.forward(x);  // (B, stems, C, chunk)
      done += static_cast<double>(x.size(0)) * step;
      if (progress) progress(std::min(1.0, done / static_cast<double>(length)));
      return y;
    };
    at::Tensor out;
    if (!on_device) out = at::zeros({stems, mix.size(0), length}, at::kFloat);
    segment::apply_msst_streaming(
        forward, mix, chunking, o.window_samples(samplerate()), [&](int64_t start, const at::Tensor& block) {
          if (!on_device) {
            out.slice(-1, start, start + block.size(-1)).copy_(segment::to_host(block));
          } else if (start == 0 && block.size(-1) == length) {
            out = block;  // the one window: the track's stems, on the model's device
          } else {
            throw std::logic_error("demix: a window short of the track while assembling on the device");
          }
        });
    if (!out.defined()) out = at::zeros({stems, mix.size(0), length}, mix.options());  // an empty track
    return out;
  }

  MsstConfig config_;
  Model model_;
  std::vector<std::string> stems_;
  at::Device device_ = at::kCPU;
  mutable std::shared_ptr<capture::GraphRunner> runner_;
};

}  // namespace

std::unique_ptr<Separator> make_separator(DemucsBag bag) { return std::make_unique<DemucsSeparator>(std::move(bag)); }

std::string msst_model_type(const MsstConfig& config) {
  if (!config.model_type.empty()) {
    if (config.model_type != "bs_roformer" && config.model_type != "mel_band_roformer")
      throw Error("{}: model_type {} is not one this runtime runs from an MSST config (bs_roformer, mel_band_roformer)",
                  config.path, config.model_type);
    return config.model_type;
  }
  const bool bands = config.model.contains("freqs_per_bands"), mel = config.model.contains("num_bands");
  if (bands && mel)
    throw Error(
        "{}: the model section has both freqs_per_bands (BS-RoFormer) and num_bands "
        "(Mel-Band RoFormer); say which with a top-level `model_type: bs_roformer` or "
        "`model_type: mel_band_roformer`",
        config.path);
  // sample_rate in the model section is Mel-Band RoFormer's (its mel filter bank).
  if (mel || (!bands && config.model.contains("sample_rate"))) return "mel_band_roformer";
  return "bs_roformer";
}

namespace {

weights::TensorMap read_state(const std::string& checkpoint, std::unique_ptr<weights::Checkpoint>& keep) {
  const bool safetensors =
      checkpoint.size() > 12 && checkpoint.compare(checkpoint.size() - 12, 12, ".safetensors") == 0;
  if (safetensors) return weights::load_safetensors(checkpoint).tensors;
  keep = std::make_unique<weights::Checkpoint>(weights::load_torch_checkpoint(checkpoint));
  return weights::state_dict(*keep);
}

// A model argument this runtime does not know may be an MSST option newer than
// it: a warning, not fatal (one that adds weights fails the strict load).
template <typename Config>
Config model_config(const MsstConfig& config, const char* model, std::vector<std::string>* warnings) {
  Config c = Config::from_json(config.model, config.path);
  if (!c.ignored.empty() && warnings) {
    std::string keys;
    for (const auto& key : c.ignored) keys += (keys.empty() ? "" : ", ") + key;
    warnings->push_back(config.path + ": model arguments that " + model + " does not know, ignored: " + keys);
  }
  return c;
}

}  // namespace

std::unique_ptr<Separator> make_roformer_separator(const MsstConfig& config, const std::string& checkpoint,
                                                   std::vector<std::string>* warnings) {
  const std::string type = msst_model_type(config);
  std::unique_ptr<weights::Checkpoint> keep;
  if (type == "mel_band_roformer") {
    MelBandRoformer model(model_config<MelBandRoformerConfig>(config, "MelBandRoformer", warnings));
    model.load_state_dict(read_state(checkpoint, keep), checkpoint);
    return std::make_unique<RoformerSeparator<MelBandRoformer>>(config, std::move(model));
  }
  BSRoformerConfig bs = model_config<BSRoformerConfig>(config, "BSRoformer", warnings);
  bs.match_input_audio_length = true;  // MSST's copy: its iSTFT always gets the input's length
  BSRoformer model(std::move(bs));
  timeline::mark("model built");
  const auto state = read_state(checkpoint, keep);
  timeline::mark("checkpoint read");
  model.load_state_dict(state, checkpoint);
  return std::make_unique<RoformerSeparator<BSRoformer>>(config, std::move(model));
}

}  // namespace stemkit::models
