"""The upstream side of the HTDemucs benchmark: the patched demucs' apply_model
on the same weights and the same track as `separate --bench`, in the same run.

    python3 tools/bench/upstream_demucs_bench.py --demucs upstream/demucs --deps DEPS \
        --model full.th --track track.wav --out upstream.json [--write-track --seconds 180]

--model is a demucs package (make_htdemucs_fixtures.py writes one; an official
.th works too). With --write-track it first writes a deterministic synthetic
stereo track (16-bit WAV, Python's wave module: a dozen sine partials with
moving amplitudes plus noise), which `separate --bench TRACK` then reads.

Rows: fp32 (TF32 as PyTorch's defaults have it), fp16 and bf16 autocast, each
with apply_model(split=True, overlap=0.25, shifts=SHIFTS) at batch 1 (demucs
has no batching): realtime factor and torch.cuda.max_memory_allocated. Each
row is warmed up first: on a GPU with the whole track, on the CPU (--device
cpu, fp32 only) with its first two segments, as `separate --bench` warms up.
tools/bench/cpu-htdemucs.sh runs the CPU side by side with `separate --bench`.
"""
import argparse
import json
import math
import random
import struct
import sys
import time
import wave
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from make_htdemucs_fixtures import import_demucs  # noqa: E402


def write_track(path, seconds, samplerate=44100):
    rng = random.Random(42)
    n = int(seconds * samplerate)
    t = torch.arange(n, dtype=torch.float64) / samplerate
    channels = []
    for _ in range(2):
        x = torch.zeros(n, dtype=torch.float64)
        for _ in range(12):
            f, p, r = rng.uniform(40, 4000), rng.uniform(0, 6.28), rng.uniform(0.1, 2)
            x += 0.05 * torch.sin(2 * math.pi * f * t + p) * (1 + torch.sin(2 * math.pi * r * t)) / 2
        x += 0.02 * torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(len(channels)))
        channels.append(x)
    pcm = (torch.stack(channels, 1).clamp(-1, 1) * 32767).round().to(torch.int16).numpy().tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(samplerate)
        w.writeframes(pcm)


def load_htdemucs(HTDemucs, path):
    """The model of a demucs package (.th: args, kwargs and state) on the CPU."""
    package = torch.load(path, map_location="cpu", weights_only=False)
    model = HTDemucs(*package["args"], **package["kwargs"])
    model.load_state_dict(package["state"])
    return model


def read_track(path):
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "16-bit WAV expected"
        frames = w.readframes(w.getnframes())
        x = torch.frombuffer(bytearray(frames), dtype=torch.int16).float() / 32768
        return x.view(-1, w.getnchannels()).t().contiguous(), w.getframerate()


def timed(run, repeats):
    """Median wall time of `repeats` runs (each synchronised), and every run's."""
    walls = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    return sorted(walls)[len(walls) // 2], walls


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demucs", required=True)
    parser.add_argument("--deps", default="", help="pure-Python dependencies, when this Python lacks them (default: $STEMKIT_PY_DEPS)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--track", required=True)
    parser.add_argument("--write-track", action="store_true")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--shifts", type=int, default=1)
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per precision; the median is reported")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda", help="cuda, or cpu (fp32 only; for the record on small machines)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.write_track:
        write_track(args.track, args.seconds)
    HTDemucs, apply_model, StaticSegmentModel, BagOfModels = import_demucs(Path(args.demucs).resolve(), args.deps)
    model = load_htdemucs(HTDemucs, args.model)
    cuda = args.device.startswith("cuda")
    bag = BagOfModels([StaticSegmentModel(model.to(args.device).eval())])
    mix, samplerate = read_track(args.track)
    seconds = mix.shape[1] / samplerate
    ref = mix.mean(0)
    mix = ((mix - ref.mean()) / (ref.std() + 1e-8))[None].to(args.device)
    rows = []
    for precision in args.precisions.split(","):
        dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        if dtype is not None and not cuda:  # CUDA autocast: on the CPU it would silently be fp32 again
            rows.append(dict(precision=precision, batch_size=1, error="fp16/bf16 autocast needs a CUDA GPU"))
            print(json.dumps(rows[-1]), flush=True)
            continue

        def run(x=mix):
            with torch.no_grad(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                out = apply_model(bag, x, split=True, overlap=0.25, shifts=args.shifts, progress=False,
                                  device=args.device)
            if cuda:
                torch.cuda.synchronize()
            return out

        try:
            if cuda:
                run()  # warm-up: cuDNN plans, cuFFT plans, allocator
                torch.cuda.reset_peak_memory_stats()
            else:  # as separate --bench warms up: two segments (oneDNN's primitives, the allocator)
                run(mix[..., :int(2 * float(model.segment) * model.samplerate)])
            wall, walls = timed(run, args.repeats)
            row = dict(precision=precision, batch_size=1, wall_s=wall, realtime=seconds / wall, repeats=len(walls),
                       wall_s_runs=walls)
            if cuda:
                row.update(peak_allocated_bytes=torch.cuda.max_memory_allocated(),
                           peak_reserved_bytes=torch.cuda.max_memory_reserved())
        except Exception as e:  # a precision upstream cannot run is a finding, not a crash
            row = dict(precision=precision, batch_size=1, error=f"{type(e).__name__}: {e}"[:300])
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = dict(track=str(args.track), seconds=seconds, shifts=args.shifts, overlap=0.25, torch=torch.__version__,
                  device=torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads",
                  rows=rows)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
