import sys, torch, math
from pathlib import Path
sys.path.insert(0, "/work/wt/cpu-speed/tools/fixtures")
from make_htdemucs_fixtures import import_demucs
torch.set_num_threads(1)
HTDemucs, *_ = import_demucs(Path("/work/main/.deps/demucs-patched"), Path("/work/main/.deps/py"))
p = torch.load("/tmp/cpu-htdemucs/full.th", map_location="cpu")
m = HTDemucs(*p["args"], **p["kwargs"]); m.eval()
tot = {"conv": 0, "convtr": 0, "linear": 0}
def hook(mod, inp, out):
    if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d)):
        tot["conv"] += 2 * out.numel() * mod.in_channels // mod.groups * math.prod(mod.kernel_size)
    elif isinstance(mod, (torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d)):
        tot["convtr"] += 2 * inp[0].numel() * mod.out_channels * math.prod(mod.kernel_size)
    elif isinstance(mod, torch.nn.Linear):
        tot["linear"] += 2 * out.numel() * mod.in_features
for mod in m.modules(): mod.register_forward_hook(hook)
L = int(m.segment * m.samplerate)
with torch.no_grad(): m(torch.randn(1, 2, L))
# attention: self 2688^2 and 1344^2 (3 layers), cross 2688x1344 both ways (2 layers); QK^T and PV: 4*T*S*512 flops
att = 3 * 4 * 512 * (2688**2 + 1344**2) + 2 * 2 * 4 * 512 * 2688 * 1344
# in_proj of MHA not hooked (functional); add: qkv 3*512*512 per token self, q + kv for cross; out_proj is a Linear (hooked? NonDynamicallyQuantizableLinear yes)
inproj = 2 * 3 * 512 * 512 * (2688 + 1344) * 5
print({k: v / 1e9 for k, v in tot.items()}, "attention", att / 1e9, "in_proj", inproj / 1e9)
print("total GFLOP", (sum(tot.values()) + att + inproj) / 1e9)
