"""Checks the BS-RoFormer attention patches on a CUDA GPU.

For fp16, bf16 and fp32 inputs it runs Attend(flash=True).flash_attn from the
patched and from the pristine bs_roformer/attend.py, names the SDPA kernel
that ran (profiler), and measures the error against a float64 math reference.

    python3 bs_roformer_check.py --staged .deps/upstream-checks --out results.json
"""
import argparse
import importlib.util
from pathlib import Path

import torch

from common import device_info, rel_l2, sdpa_backends, write_json


def load_attend(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--staged", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    torch.manual_seed(0)
    shape = (2, 8, 256, 64)  # batch, heads, seq, dim_head: BS-RoFormer's 8 x 64 heads
    q64, k64, v64 = (torch.randn(shape, dtype=torch.float64, device="cuda") for _ in range(3))
    reference = torch.softmax(q64 @ k64.transpose(-1, -2) * shape[-1] ** -0.5, dim=-1) @ v64

    results = {"device": device_info(), "shape": list(shape), "runs": []}
    for variant in ("patched", "pristine"):
        attend = load_attend(args.staged / variant / "bs_roformer" / "attend.py", f"attend_{variant}")
        module = attend.Attend(flash=True).cuda().eval()
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            q, k, v = (t.to(dtype) for t in (q64, k64, v64))
            row = {"variant": variant, "dtype": str(dtype).replace("torch.", ""),
                   "config": module.cuda_config._asdict()}
            try:
                with torch.no_grad():
                    out = module.flash_attn(q, k, v)
                    row["backend"] = sdpa_backends(lambda: module.flash_attn(q, k, v))
                row["rel_l2_vs_float64"] = rel_l2(out, reference)
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0]
            results["runs"].append(row)
            print(f"{variant:8} {row['dtype']:9} backend={row.get('backend')} "
                  f"rel_l2={row.get('rel_l2_vs_float64', float('nan')):.2e} {row.get('error', '')}")
    # What the patches decide between, measured directly: each SDPA backend on
    # its own (torch.nn.attention.sdpa_kernel), for the same inputs.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    import torch.nn.functional as F
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    from common import cuda_time
    results["backends"] = []
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        q, k, v = (t.to(dtype) for t in (q64, k64, v64))
        for label, backend in backends.items():
            row = {"dtype": str(dtype).replace("torch.", ""), "backend": label}
            try:
                with sdpa_kernel([backend]), torch.no_grad():
                    out = F.scaled_dot_product_attention(q, k, v)
                    row["rel_l2_vs_float64"] = rel_l2(out, reference)
                    row["ms"] = 1e3 * cuda_time(lambda: F.scaled_dot_product_attention(q, k, v), warmup=5, iters=50)
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0][:160]
            results["backends"].append(row)
            print(f"backend {label:9} {row['dtype']:9} ms={row.get('ms', float('nan')):.4f} "
                  f"rel_l2={row.get('rel_l2_vs_float64', float('nan')):.2e} {row.get('error', '')}")
    # Why the fp32 fallback exists: the flash-only configuration with fp32 inputs,
    # through the context manager upstream uses.
    q, k, v = q64.float(), k64.float(), v64.float()
    try:
        with torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False), torch.no_grad():
            F.scaled_dot_product_attention(q, k, v)
            kernels = sdpa_backends(lambda: F.scaled_dot_product_attention(q, k, v))
        results["flash_only_fp32"] = {"ran": kernels}
    except RuntimeError as e:
        results["flash_only_fp32"] = {"error": str(e).splitlines()[0][:200]}
    print("flash-only config, fp32:", results["flash_only_fp32"])
    write_json(args.out, results)


if __name__ == "__main__":
    main()
