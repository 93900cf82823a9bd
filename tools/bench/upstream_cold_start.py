"""Upstream's side of the cold-start measurement (tools/gpu/cold-start.sh): one
new Python process separating one song, as a user's script runs it, with the
wall-clock time at which each phase ended. The caller notes when it started
the process, so the time spent starting Python and importing torch counts.

    python3 tools/bench/upstream_cold_start.py demucs --demucs DIR --deps DEPS --model full.th \
        --track song.wav --out DIR --json phases.json
    python3 tools/bench/upstream_cold_start.py bs-roformer --bs-roformer DIR --deps DEPS \
        --msst-utils model_utils.py --kwargs full.json --checkpoint full.ckpt --track song.wav --out DIR --json phases.json

demucs: the package's HTDemucs through apply_model (split, overlap 0.25, shifts 1,
fp32: demucs' defaults), normalised by the mix's statistics as demucs.separate
does, four 16-bit WAVs written (clip "rescale"). bs-roformer: MSST's demix
(chunk_size --chunk-size, num_overlap 2, inference.batch_size --batch, fp16 autocast as
training.use_amp has it by default), the stems written as 16-bit WAVs.
"""
import time

phases = [("python started", time.time())]  # noqa: E402  (before the imports: they are part of the wait)
import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import wave  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

phases.append(("torch imported", time.time()))
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "fixtures")]
from upstream_demucs_bench import load_htdemucs, read_track  # noqa: E402


def mark(phase):
    phases.append((phase, time.time()))


def write_stems(stems, names, samplerate, out):
    """16-bit WAVs, scaled down when a stem would clip (demucs' clip="rescale")."""
    out.mkdir(parents=True, exist_ok=True)
    for stem, name in zip(stems, names):
        peak = stem.abs().max().item()
        stem = stem / max(1.01 * peak, 1) if peak > 1 else stem
        pcm = (stem.clamp(-1, 1) * 32767).round().to(torch.int16).t().contiguous().numpy().tobytes()
        with wave.open(str(out / f"{name}.wav"), "wb") as w:
            w.setnchannels(stem.shape[0])
            w.setsampwidth(2)
            w.setframerate(samplerate)
            w.writeframes(pcm)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["demucs", "bs-roformer"])
    parser.add_argument("--demucs", help="directory holding the (patched) demucs package")
    parser.add_argument("--bs-roformer", help="directory holding the (patched) bs_roformer package")
    parser.add_argument("--deps", default="")
    parser.add_argument("--model", help="demucs: the package (.th)")
    parser.add_argument("--msst-utils", help="bs-roformer: MSST's utils/model_utils.py")
    parser.add_argument("--kwargs", help="bs-roformer: the model's keyword arguments (JSON)")
    parser.add_argument("--checkpoint", help="bs-roformer: the weights")
    parser.add_argument("--batch", type=int, default=4, help="bs-roformer: inference.batch_size")
    parser.add_argument("--chunk-size", type=int, default=352800, help="bs-roformer: chunk_size (full.yaml's)")
    parser.add_argument("--track", required=True)
    parser.add_argument("--out", required=True, help="the stems' folder")
    parser.add_argument("--json", required=True, help="where the phases go")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu (to try the script on a machine without a GPU)")
    args = parser.parse_args()
    device = args.device
    out = Path(args.out)
    if args.kind == "demucs":
        from make_htdemucs_fixtures import import_demucs
        HTDemucs, apply_model, StaticSegmentModel, BagOfModels = import_demucs(Path(args.demucs).resolve(), args.deps)
        mark("demucs imported")
        model = load_htdemucs(HTDemucs, args.model)
        bag = BagOfModels([StaticSegmentModel(model.to(device).eval())])
        mark("model on the GPU")
        mix, samplerate = read_track(args.track)
        mark("song read")
        ref = mix.mean(0)
        mix = (mix - ref.mean()) / (ref.std() + 1e-8)
        with torch.no_grad():
            est = apply_model(bag, mix[None].to(device), split=True, overlap=0.25, shifts=1, progress=False,
                              device=device)[0]
        est = (est * (ref.std() + 1e-8) + ref.mean().to(est.device)).cpu()
        mark("separated")
        write_stems(est, model.sources, samplerate, out)
        mark("stems written")
    else:
        from msst import Config, load_model_utils
        from upstream_roformer_bench import import_bs_roformer, load_bs_roformer
        BSRoformer = import_bs_roformer(args.bs_roformer, args.deps)
        msst = load_model_utils(args.msst_utils)
        mark("bs_roformer and MSST imported")
        model, kwargs = load_bs_roformer(BSRoformer, args.kwargs, args.checkpoint)
        model = model.to(device).eval()
        mark("model on the GPU")
        mix, samplerate = read_track(args.track)
        mark("song read")
        stems = kwargs.get("num_stems", 1)
        instruments = ["vocals", "other"] if stems == 1 else [f"stem{i}" for i in range(stems)]
        training = Config(instruments=instruments, use_amp=True)
        if stems == 1:
            training["target_instrument"] = "vocals"
        chunk = args.chunk_size
        config = Config(audio=Config(chunk_size=chunk),
                        inference=Config(chunk_size=chunk, num_overlap=2, batch_size=args.batch), training=training)
        result = msst.demix(config, model, mix.numpy(), torch.device(device), "bs_roformer", pbar=False)
        mark("separated")
        names = list(result)
        stems_out = [torch.from_numpy(result[n]) for n in names]
        if stems == 1:  # MSST's inference.py: the instrumental is the mix minus the target
            names.append("instrumental")
            stems_out.append(mix - stems_out[0])
        write_stems(stems_out, names, samplerate, out)
        mark("stems written")
    Path(args.json).write_text(json.dumps({"phases": [{"phase": p, "epoch_s": t} for p, t in phases]}) + "\n")


if __name__ == "__main__":
    main()
