"""How much arithmetic a model's separation is: upstream's own module, one
forward of one chunk (batch 1), counted by PyTorch's FlopCounterMode
(matrix products, convolutions and attention; the STFTs and elementwise work
are not counted), and the chunks a 180 s track takes, so that a measured
x-realtime figure converts into the arithmetic rate it sustained:

    TFLOP/s = flops_per_chunk * chunks_per_track * x_realtime / track_seconds / 1e12

    python3 tools/bench/model_flops.py demucs --demucs DIR --deps DIR --model full.th
    python3 tools/bench/model_flops.py bs-roformer --bs-roformer DIR --deps DIR --kwargs full.yaml.json --checkpoint full.ckpt

Chunks per track follow upstream's loops: demucs' apply_model (split, overlap
0.25: one segment every 0.75 segments, the last padded) and MSST's demix
(num_overlap 2: a chunk every half chunk over the track padded by half a chunk
each side; stemkit skips the last, which holds padding only). Needs torch 2.1
or newer (FlopCounterMode); the GPU is used when there is one.
"""
import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "fixtures")]


def count(model, x):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    by_op = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops(), by_op


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("component", choices=["demucs", "bs-roformer"])
    parser.add_argument("--demucs", help="the (patched) demucs checkout")
    parser.add_argument("--bs-roformer", help="directory holding the (patched) bs_roformer package")
    parser.add_argument("--deps", default="")
    parser.add_argument("--model", help="demucs: the .th package")
    parser.add_argument("--kwargs", help="bs-roformer: the keyword arguments (JSON, bare or under 'kwargs')")
    parser.add_argument("--checkpoint", help="bs-roformer: the state dict")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--chunk-size", type=int, default=352800, help="bs-roformer: MSST's inference.chunk_size")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    samples = int(args.seconds * 44100)
    with contextlib.redirect_stdout(sys.stderr):  # upstream's own prints (the attention it picked): not our JSON
        result = measure(args, device, samples)
    print(json.dumps(result, indent=1))
    print(f"{args.component}: {result['flops_per_chunk'] / 1e9:.1f} GFLOP per chunk of {result['chunk_samples']} samples, "
          f"{result['chunks_per_track']} chunks per {args.seconds:g} s; at 100x realtime that is "
          f"{result['flops_per_track_second'] * 100 / 1e12:.2f} TFLOP/s", file=sys.stderr)


def measure(args, device, samples):
    if args.component == "demucs":
        from make_htdemucs_fixtures import import_demucs
        from upstream_demucs_bench import load_htdemucs
        model = load_htdemucs(import_demucs(Path(args.demucs).resolve(), args.deps)[0], args.model)
        chunk = int(model.segment * model.samplerate)
        stride = int((1 - 0.25) * chunk)
        chunks = math.ceil(samples / stride)
    else:
        from upstream_roformer_bench import import_bs_roformer, load_bs_roformer
        model, _ = load_bs_roformer(import_bs_roformer(args.bs_roformer, args.deps), args.kwargs, args.checkpoint)
        chunk = args.chunk_size
        step = chunk // 2
        chunks = math.ceil((samples + 2 * (chunk - step)) / step) - 1
    model = model.to(device).eval()
    x = 0.1 * torch.randn(1, 2, chunk, device=device)
    total, by_op = count(model, x)
    return dict(component=args.component, chunk_samples=chunk, flops_per_chunk=total, by_op=by_op,
                track_seconds=args.seconds, chunks_per_track=chunks, flops_per_track_second=total * chunks / args.seconds)


if __name__ == "__main__":
    main()
