#include "runtime/models/separator.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "runtime/capture/graph_runner.h"
#include "runtime/segment/overlap_add.h"
#include "runtime/weights/checkpoint.h"

namespace stemkit::models {
namespace {

class DemucsSeparator : public Separator {
 public:
  explicit DemucsSeparator(DemucsBag bag) : bag_(std::move(bag)) {}
  const std::vector<std::string>& stems() const override { return bag_.sources(); }
  int64_t samplerate() const override { return bag_.samplerate(); }
  int64_t audio_channels() const override { return bag_.audio_channels(); }
  int64_t segment_samples() const override { return bag_.models.front().training_length(); }
  void to(const at::Device& device, at::ScalarType dtype) override { bag_.to(device, dtype); }
  at::Device device() const override { return bag_.models.front().device(); }
  void release_graphs() override { bag_.runners.clear(); }
  at::Tensor separate(const at::Tensor& wav, const SeparationOptions& o, const ProgressFn& progress,
                      SeparationReport* report) const override {
    return models::separate(bag_, wav, o, progress, report);
  }

 private:
  DemucsBag bag_;
};

class RoformerSeparator : public Separator {
 public:
  RoformerSeparator(MsstConfig config, BSRoformer model) : config_(std::move(config)), model_(std::move(model)) {
    stems_ = config_.model_stems();
    if (static_cast<int64_t>(stems_.size()) != model_.config().num_stems)
      throw std::runtime_error(config_.path + ": the model has " + std::to_string(model_.config().num_stems) +
                               " stem(s) (model.num_stems), the training section names " + std::to_string(stems_.size()));
    if (config_.target_instrument) stems_.push_back("instrumental");
    if (config_.num_channels != model_.config().audio_channels())
      throw std::runtime_error(config_.path + ": audio.num_channels is " + std::to_string(config_.num_channels) +
                               " but model.stereo says " + std::to_string(model_.config().audio_channels()));
    if (config_.chunk_size % model_.config().stft_hop_length)
      throw std::runtime_error(config_.path + ": audio.chunk_size " + std::to_string(config_.chunk_size) +
                               " is not a multiple of model.stft_hop_length " +
                               std::to_string(model_.config().stft_hop_length) + " (the model's output would be shorter)");
  }
  const std::vector<std::string>& stems() const override { return stems_; }
  int64_t samplerate() const override { return config_.sample_rate; }
  int64_t audio_channels() const override { return config_.num_channels; }
  int64_t segment_samples() const override { return config_.chunk_size; }
  void to(const at::Device& device, at::ScalarType dtype) override {
    model_.to(device, dtype);
    device_ = device;
    runner_.reset();
  }
  at::Device device() const override { return device_; }
  void release_graphs() override { runner_.reset(); }

  at::Tensor separate(const at::Tensor& wav, const SeparationOptions& o, const ProgressFn& progress,
                      SeparationReport* report) const override {
    auto& runner = capture::reuse_or_make(runner_, [this](const at::Tensor& x) { return model_.forward(x); },
                                          o.graphs && device_.is_cuda());
    segment::MsstChunking chunking;
    chunking.chunk_size = config_.chunk_size;
    chunking.num_overlap = config_.num_overlap;
    chunking.batch_size = o.batch_size;
    const int64_t length = wav.size(1);
    at::Tensor mix = wav.to(device_, at::kFloat);
    at::Tensor out = at::zeros({static_cast<int64_t>(config_.model_stems().size()), wav.size(0), length}, at::kFloat);
    double done = 0;
    const double step = static_cast<double>(config_.chunk_size) / static_cast<double>(config_.num_overlap);
    segment::Forward forward = [&](const at::Tensor& x) {
      if (report) {
        std::copy(x.sizes().begin(), x.sizes().end(), report->forward_shape);
        ++report->forward_calls;
      }
      at::Tensor y = runner(x);  // (B, stems, C, chunk)
      done += static_cast<double>(x.size(0)) * step;
      if (progress) progress(std::min(1.0, done / static_cast<double>(length)));
      return y;
    };
    const int64_t window = std::max<int64_t>(1, static_cast<int64_t>(o.window_seconds * static_cast<double>(samplerate())));
    segment::apply_msst_streaming(forward, mix, chunking, window, [&](int64_t start, const at::Tensor& block) {
      out.slice(-1, start, start + block.size(-1)).copy_(block.to(at::kCPU));
    });
    if (report) report->graphs = runner.status();
    if (progress) progress(1.0);
    // A one-target model: the rest of the mix is the instrumental stem.
    if (config_.target_instrument) out = at::cat({out, (wav.to(at::kFloat) - out[0]).unsqueeze(0)}, 0);
    return out;
  }

 private:
  MsstConfig config_;
  BSRoformer model_;
  std::vector<std::string> stems_;
  at::Device device_ = at::kCPU;
  mutable std::shared_ptr<capture::GraphRunner> runner_;
};

}  // namespace

std::unique_ptr<Separator> make_separator(DemucsBag bag) { return std::make_unique<DemucsSeparator>(std::move(bag)); }

std::unique_ptr<Separator> make_roformer_separator(const MsstConfig& config, const std::string& checkpoint) {
  BSRoformer model(BSRoformerConfig::from_json(config.model, config.path));
  const bool safetensors = checkpoint.size() > 12 && checkpoint.compare(checkpoint.size() - 12, 12, ".safetensors") == 0;
  if (safetensors) {
    model.load_state_dict(weights::load_safetensors(checkpoint).tensors, checkpoint);
  } else {
    auto ck = weights::load_torch_checkpoint(checkpoint);
    model.load_state_dict(weights::state_dict(ck), checkpoint);
  }
  return std::make_unique<RoformerSeparator>(config, std::move(model));
}

}  // namespace stemkit::models
