"""The upstream side of the BS-RoFormer benchmark: lucidrains' BSRoformer (the
pin in manifests/bs-roformer.yaml, with our attention patches) run through
Music-Source-Separation-Training's demix(), as our users run it, on the same
weights and track as `separate --bench`, in the same run.

    python3 tools/bench/upstream_roformer_bench.py --bs-roformer DIR --deps DEPS \
        --msst-utils MSST/utils/model_utils.py --kwargs full.json --checkpoint full.ckpt \
        --track track.wav --out upstream.json [--write-track --seconds 180]

--kwargs is the model's keyword arguments as JSON: a file whose `kwargs` key
holds them (what make_bs_roformer_fixtures.py writes) or the bare dict.
--msst-utils is utils/model_utils.py of a checkout of
github.com/ZFTurbo/Music-Source-Separation-Training; it is loaded as it is,
with ml_collections (and tqdm, where missing) replaced by stubs.

Rows: for each precision and batch size, MSST demix (chunk_size, num_overlap
as given, fade windows, reflect padding) with `training.use_amp` on for fp16
(MSST's only half-precision mode: torch.cuda.amp.autocast, fp16) and off for
fp32. bf16 is tried with MSST's autocast switched to bf16: upstream's STFT
path fails under it (view_as_complex), which is recorded as the row's error.
Realtime factor (track seconds / wall seconds, decode excluded) and
torch.cuda.max_memory_allocated / max_memory_reserved.
"""
import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "fixtures")]
from msst import Config, load_model_utils  # noqa: E402
import pydeps  # noqa: E402
from upstream_demucs_bench import read_track, timed, write_track  # noqa: E402


def import_bs_roformer(bs_roformer_dir, deps):
    """The BSRoformer class of the (patched) package in bs_roformer_dir, librosa stubbed
    where missing (MelBandRoformer's import; BSRoformer does not use it)."""
    pydeps.add_paths(bs_roformer_dir, deps)
    librosa = types.ModuleType("librosa")
    librosa.filters = types.ModuleType("librosa.filters")
    sys.modules.setdefault("librosa", librosa)
    sys.modules.setdefault("librosa.filters", librosa.filters)
    from bs_roformer.bs_roformer import BSRoformer
    return BSRoformer


def load_bs_roformer(BSRoformer, kwargs_path, checkpoint):
    """The model of kwargs_path's keyword arguments (a file whose `kwargs` key holds
    them, or the bare dict) with checkpoint's weights, on the CPU; and the kwargs."""
    kwargs = json.loads(Path(kwargs_path).read_text())
    kwargs = kwargs.get("kwargs", kwargs)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()}
    model = BSRoformer(**kwargs)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    return model, kwargs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bs-roformer", required=True, help="directory holding the (patched) bs_roformer package")
    parser.add_argument("--deps", default="", help="directory with einops, beartype, rotary_embedding_torch, when this Python lacks them (default: $STEMKIT_PY_DEPS)")
    parser.add_argument("--msst-utils", required=True, help="MSST's utils/model_utils.py")
    parser.add_argument("--kwargs", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--track", required=True)
    parser.add_argument("--write-track", action="store_true")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--chunk-size", type=int, default=352800)
    parser.add_argument("--num-overlap", type=int, default=2)
    parser.add_argument("--precisions", default="fp16,fp32,bf16")
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per row; the median is reported")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if not args.msst_utils:
        raise SystemExit("upstream_roformer_bench.py: --msst-utils is empty; the upstream side runs MSST's demix: clone "
                         "https://github.com/ZFTurbo/Music-Source-Separation-Training and pass "
                         "patchmgr bench --var msst_utils=CLONE/utils/model_utils.py")
    if args.write_track:
        write_track(args.track, args.seconds)
    BSRoformer = import_bs_roformer(args.bs_roformer, args.deps)
    msst = load_model_utils(args.msst_utils)
    model, kwargs = load_bs_roformer(BSRoformer, args.kwargs, args.checkpoint)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model = model.to(device).eval()
    mix, samplerate = read_track(args.track)
    seconds = mix.shape[1] / samplerate
    mix = mix.numpy()
    stems = kwargs.get("num_stems", 1)
    instruments = ["vocals", "other"] if stems == 1 else [f"stem{i}" for i in range(stems)]

    rows = []
    real_autocast = torch.cuda.amp.autocast
    for precision in args.precisions.split(","):
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            training = Config(instruments=instruments, use_amp=precision != "fp32")
            if stems == 1:
                training["target_instrument"] = "vocals"
            config = Config(audio=Config(chunk_size=args.chunk_size),
                            inference=Config(chunk_size=args.chunk_size, num_overlap=args.num_overlap, batch_size=batch),
                            training=training)
            # MSST calls torch.cuda.amp.autocast(enabled=use_amp), which is fp16; bf16 swaps its dtype.
            if precision == "bf16":
                torch.cuda.amp.autocast = lambda enabled=True, **k: real_autocast(enabled=enabled, dtype=torch.bfloat16)
            else:
                torch.cuda.amp.autocast = real_autocast

            def run():
                out = msst.demix(config, model, mix, device, "bs_roformer", pbar=False)
                if cuda:
                    torch.cuda.synchronize()
                return out

            row = dict(precision=precision, batch_size=batch, mode=f"MSST demix, {precision}"
                       + (" autocast" if precision != "fp32" else "") + f", batch {batch}")
            if precision != "fp32" and not cuda:  # MSST's CUDA autocast: on the CPU it would be fp32 again
                row["error"] = "fp16/bf16 autocast needs a CUDA GPU"
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            try:
                if cuda:
                    run()  # warm-up: kernels, cuFFT plans, allocator
                    torch.cuda.reset_peak_memory_stats()
                wall, walls = timed(run, args.repeats)
                row.update(wall_s=wall, realtime=seconds / wall, repeats=len(walls), wall_s_runs=walls)
                if cuda:
                    row.update(peak_allocated_bytes=torch.cuda.max_memory_allocated(),
                               peak_reserved_bytes=torch.cuda.max_memory_reserved())
            except Exception as e:  # a precision upstream cannot run is a finding, not a crash
                row["error"] = f"{type(e).__name__}: {e}"[:300]
            finally:
                torch.cuda.amp.autocast = real_autocast
                if cuda:
                    torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = dict(track=str(args.track), seconds=seconds, chunk_size=args.chunk_size, num_overlap=args.num_overlap,
                  torch=torch.__version__, gpu=torch.cuda.get_device_name(0) if cuda else "none",
                  device=torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads",
                  rows=rows)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
