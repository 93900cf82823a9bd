// stemkit-weights: what is inside a checkpoint, read without Python.
//
//   stemkit-weights model.th          # torch.save archives: .th .ckpt .pt .pth
//   stemkit-weights model.safetensors
//
// Prints the top-level keys (with demucs packages: the model class and its
// kwargs), then every tensor of the state dict with its dtype and shape.
#include <algorithm>
#include <cstdio>
#include <string>

#include "patchmgr/cli/completions.h"
#include "runtime/weights/checkpoint.h"

using namespace stemkit::weights;

namespace {

std::string shape_text(const Tensor& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

void print_tensors(const TensorMap& tensors) {
  size_t width = 0;
  // Each tensor holds at most 2^62 elements (the readers refuse more), but
  // their sum can pass 2^63: counted in 128 bits, it is exact.
  unsigned __int128 total = 0;
  for (const auto& [name, t] : tensors) width = std::max(width, name.size());
  for (const auto& [name, t] : tensors) {
    std::printf("  %-*s %-8s %s\n", int(width), name.c_str(), stemkit::weights::name(t.dtype), shape_text(t).c_str());
    total += static_cast<uint64_t>(t.numel());
  }
  std::string digits;
  do digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(total % 10)));
  while ((total /= 10) != 0);
  std::printf("%zu tensors, %s parameters\n", tensors.size(), digits.c_str());
}

// The whole command line: FILE, or one of the two options. `--help` is also
// what the man page is made of (help2man); completions() describes the same
// two options for the shell scripts: change them together.
const char* const kUsage =
    "Usage: stemkit-weights FILE\n"
    "What is inside a PyTorch or safetensors checkpoint, read without Python and without executing anything.\n"
    "\n"
    "FILE is a torch.save archive (.th .ckpt .pt .pth: demucs packages, Lightning and MSST checkpoints,\n"
    "state dicts) or a .safetensors file. Prints the top-level keys (with demucs packages: the model\n"
    "class and its kwargs), then every tensor of the state dict with its dtype and shape, and the\n"
    "number of parameters. A damaged or hostile file gives one line naming the file, the tensor and\n"
    "what is wrong, and exit status 1.\n"
    "\n"
    "Options:\n"
    "  -h,--help                   Print this help message and exit\n"
    "  --completions SHELL         Print the bash or zsh completion script and exit\n";

stemkit::cli::CompletionCommand completions() {
  stemkit::cli::CompletionCommand c;
  c.name = "stemkit-weights";
  c.options = {{{"-h", "--help"}, "Print this help message and exit"},
               {{"--completions"}, "Print the bash or zsh completion script and exit", true, {"bash", "zsh"}}};
  c.file_arguments = true;
  c.argument_name = "checkpoint";
  c.file_glob = "*.(th|ckpt|pt|pth|safetensors)";
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string first = argc > 1 ? argv[1] : "";
  if (argc == 2 && (first == "-h" || first == "--help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc == 3 && first == "--completions" && (std::string(argv[2]) == "bash" || std::string(argv[2]) == "zsh")) {
    std::fputs((std::string(argv[2]) == "bash" ? stemkit::cli::bash_completion(completions())
                                               : stemkit::cli::zsh_completion(completions()))
                   .c_str(),
               stdout);
    return 0;
  }
  if (argc != 2 || first.starts_with("-")) {
    std::fprintf(stderr, "usage: stemkit-weights FILE (.th .ckpt .pt .pth .safetensors); see --help\n");
    return 2;
  }
  std::string path = argv[1];
  try {
    if (path.ends_with(".safetensors")) {
      SafetensorsFile f = load_safetensors(path);
      for (const auto& [k, v] : f.metadata) std::printf("metadata %s = %s\n", k.c_str(), v.c_str());
      print_tensors(f.tensors);
      return 0;
    }
    Checkpoint ck = load_torch_checkpoint(path);
    if (ck.root->kind == Value::Kind::dict) {
      std::printf("top level:\n");
      for (const auto& [k, v] : ck.root->entries)
        std::printf("  %s: %s\n", k->describe().c_str(), v->describe().c_str());
      if (auto kwargs = ck.root->get("kwargs"); kwargs && kwargs->kind == Value::Kind::dict) {
        std::printf("kwargs:\n");
        for (const auto& [k, v] : kwargs->entries)
          std::printf("  %s = %s\n", k->describe().c_str(), v->describe().c_str());
      }
    }
    std::printf("state dict:\n");
    print_tensors(state_dict(ck));
    return 0;
  } catch (const stemkit::Error& e) {
    std::fprintf(stderr, "stemkit-weights: %s\n", e.what());
    return 1;
  }
}
