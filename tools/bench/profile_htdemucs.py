"""Where HTDemucs spends its GPU time: the upstream model (same ATen operators as
the C++ runtime) under torch.profiler, for one batch of static segments, with
and without cuDNN autotuning (torch.backends.cudnn.benchmark).

    python3 tools/bench/profile_htdemucs.py --demucs DIR --deps DIR --model full.th [--batch 8]

Prints, per precision: the time per segment with benchmark off and on, and the
top operators by CUDA time.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "fixtures"),
                str(Path(__file__).resolve().parents[1] / "upstream-checks")]
from make_htdemucs_fixtures import import_demucs  # noqa: E402
from upstream_demucs_bench import load_htdemucs  # noqa: E402
from common import cuda_time  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--demucs", required=True)
    parser.add_argument("--deps", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    HTDemucs, *_ = import_demucs(Path(args.demucs).resolve(), Path(args.deps).resolve())
    model = load_htdemucs(HTDemucs, args.model)
    model = model.cuda().eval()
    length = int(model.segment * model.samplerate)
    x = 0.1 * torch.randn(args.batch, 2, length, device="cuda")
    for precision in args.precisions.split(","):
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]

        def run():
            with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                return model(x)

        for bench in (False, True):
            torch.backends.cudnn.benchmark = bench
            t = cuda_time(run, warmup=1, iters=5)
            print(f"{precision} batch {args.batch} cudnn.benchmark={bench}: {1000 * t / args.batch:.2f} ms per segment "
                  f"({length / 44100 * args.batch / t:.0f}x realtime, no overlap)", flush=True)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            run()
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=args.top, max_name_column_width=60),
              flush=True)


if __name__ == "__main__":
    main()
