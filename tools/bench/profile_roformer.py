"""Where BS-RoFormer spends its GPU time: upstream's BSRoformer (the same ATen
operators as much of the C++ runtime) under torch.profiler, one batch of
chunks, fp16 autocast as MSST runs it, and fp32.

    python3 tools/bench/profile_roformer.py --bs-roformer DIR --deps DIR --kwargs full.json --checkpoint full.ckpt

Prints, per precision: the time per chunk and the top operators by CUDA time.
"""
import argparse
import json
import sys
import types
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "upstream-checks")]
from common import cuda_time  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bs-roformer", required=True)
    parser.add_argument("--deps", required=True)
    parser.add_argument("--kwargs", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=352800)
    parser.add_argument("--precisions", default="fp16,fp32")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    sys.path[:0] = [str(Path(args.bs_roformer).resolve()), str(Path(args.deps).resolve())]
    librosa = types.ModuleType("librosa")
    librosa.filters = types.ModuleType("librosa.filters")
    sys.modules.setdefault("librosa", librosa)
    sys.modules.setdefault("librosa.filters", librosa.filters)
    from bs_roformer.bs_roformer import BSRoformer

    kwargs = json.loads(Path(args.kwargs).read_text())
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.get("kwargs", kwargs).items()}
    model = BSRoformer(**kwargs)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    model = model.cuda().eval()
    x = 0.1 * torch.randn(args.batch, 2, args.chunk, device="cuda")
    for precision in args.precisions.split(","):
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]

        def run():
            with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                return model(x)

        t = cuda_time(run, warmup=1, iters=5)
        print(f"{precision} batch {args.batch}: {1000 * t / args.batch:.2f} ms per chunk", flush=True)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            run()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.top, max_name_column_width=70),
              flush=True)


if __name__ == "__main__":
    main()
