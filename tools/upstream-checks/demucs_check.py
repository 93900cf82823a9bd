"""Checks the demucs patches on a CUDA GPU with the full HTDemucs configuration
(random weights, seeded: no download).

1. sdpa-attention: the patched model loads the pristine model's state dict
   (strict: no parameter added or renamed) and matches it in fp32; fp16
   autocast errors of both against fp32 are reported, with the attention
   kernel that ran.
2. static-shape-wrapper: StaticSegmentModel gives the bare model's output for
   several input lengths, and apply_model on a wrapped bag matches the bare bag.
3. torch-compile (opt-in): compile time, steady-state time and error of each
   compile mode, or the error it fails with.

    python3 demucs_check.py --staged .deps/upstream-checks --out results.json
"""
import argparse
import sys
import time
import traceback
from fractions import Fraction
from pathlib import Path

import torch

from common import cuda_time, device_info, import_package, rel_l2, sdpa_backends, stub_module, write_json

# htdemucs's published configuration (the kwargs in its checkpoint).
HTDEMUCS = dict(sources=["drums", "bass", "other", "vocals"], audio_channels=2, samplerate=44100,
                segment=Fraction(39, 5), channels=48, depth=4, nfft=4096, t_layers=5, t_heads=8,
                bottom_channels=512, dconv_mode=3, cac=True, wiener_iters=0)


def build(staged, variant, state=None):
    """HTDemucs from the patched or pristine package, with `state` loaded strictly."""
    demucs = import_package("demucs", staged / variant)
    from demucs.htdemucs import HTDemucs  # noqa: the package just imported
    torch.manual_seed(0)
    model = HTDemucs(**HTDEMUCS)
    if state is not None:
        model.load_state_dict(state, strict=True)
    return demucs, model.cuda().eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--staged", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--compile-modes", default="default,reduce-overhead",
                        help="comma-separated torch.compile modes to try (max-autotune compiles for very long)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.staged / "deps"))
    # demucs.states imports these for training-time features the checks never use.
    stub_module("dora.log", fatal=lambda *a, **k: (_ for _ in ()).throw(RuntimeError(a)))
    stub_module("omegaconf", OmegaConf=None)

    results = {"device": device_info(), "config": {k: str(v) for k, v in HTDEMUCS.items()}}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    # 1. SDPA attention against the pristine model, same weights.
    _, pristine = build(args.staged, "pristine")
    state = pristine.state_dict()
    length = int(HTDEMUCS["segment"] * HTDEMUCS["samplerate"])
    torch.manual_seed(1)
    mix = torch.randn(1, 2, length, device="cuda")
    with torch.no_grad():
        ref32 = pristine(mix)
        pristine_kernels32 = sdpa_backends(lambda: pristine(mix))
        with torch.autocast("cuda", dtype=torch.float16):
            ref16 = pristine(mix).float()
            pristine_kernels16 = sdpa_backends(lambda: pristine(mix))
        t_pristine32 = cuda_time(lambda: pristine(mix))
        with torch.autocast("cuda", dtype=torch.float16):
            t_pristine16 = cuda_time(lambda: pristine(mix))
    del pristine
    demucs, patched = build(args.staged, "patched", state)
    with torch.no_grad():
        out32 = patched(mix)
        with torch.autocast("cuda", dtype=torch.float16):
            out16 = patched(mix).float()
            backends16 = sdpa_backends(lambda: patched(mix))
        backends32 = sdpa_backends(lambda: patched(mix))
        t_patched32 = cuda_time(lambda: patched(mix))
        with torch.autocast("cuda", dtype=torch.float16):
            t_patched16 = cuda_time(lambda: patched(mix))
    results["sdpa_attention"] = {
        "state_dict_loads_strict": True,
        "fp32_rel_l2_patched_vs_pristine": rel_l2(out32, ref32),
        "fp16_rel_l2_patched_vs_pristine_fp32": rel_l2(out16, ref32),
        "fp16_rel_l2_pristine_vs_pristine_fp32": rel_l2(ref16, ref32),
        "attention_kernels_fp32": backends32,
        "pristine_attention_kernels_fp32": pristine_kernels32,
        "pristine_attention_kernels_fp16": pristine_kernels16,
        "attention_kernels_fp16": backends16,
        "seconds_per_segment": {"pristine_fp32": t_pristine32, "patched_fp32": t_patched32,
                                "pristine_fp16": t_pristine16, "patched_fp16": t_patched16},
    }
    print("sdpa-attention:", results["sdpa_attention"])

    # 2. The static-shape wrapper against the bare model.
    from demucs.static_wrapper import StaticSegmentModel, wrap_pretrained
    from demucs.apply import BagOfModels, apply_model
    wrapper = StaticSegmentModel(patched)
    lengths = [length, length // 2, 3 * length // 7, 44100, 1000]
    rows = []
    with torch.no_grad():
        for n in lengths:
            x = mix[..., :n]
            rows.append({"length": n, "max_abs_diff": (wrapper(x) - patched(x)).abs().max().item()})
        try:
            wrapper(torch.randn(1, 2, length + 1, device="cuda"))
            too_long = "no error"
        except ValueError as e:
            too_long = str(e)
        song = torch.randn(1, 2, 25 * 44100, device="cuda")
        bare = apply_model(BagOfModels([patched]), song, split=True, overlap=0.25, shifts=0, progress=False)
        wrapped = apply_model(wrap_pretrained(BagOfModels([patched])), song, split=True, overlap=0.25, shifts=0, progress=False)
    results["static_shape_wrapper"] = {
        "segment_length": wrapper.segment_length,
        "proxied": {name: str(getattr(wrapper, name)) for name in ("samplerate", "sources", "audio_channels", "segment")},
        "forward_vs_bare": rows,
        "too_long_input": too_long,
        "apply_model_25s_rel_l2_wrapped_vs_bare": rel_l2(wrapped, bare),
    }
    print("static-shape-wrapper:", results["static_shape_wrapper"])

    # 3. torch.compile modes on the wrapped model, fp32.
    from demucs.static_wrapper import compile_static
    compiled_rows = []
    for mode in [m for m in args.compile_modes.split(",") if m]:
        row = {"mode": mode}
        torch._dynamo.reset()
        model = StaticSegmentModel(patched)
        try:
            compile_static(model, mode)
            start = time.perf_counter()
            with torch.no_grad():
                out = model(mix)
            torch.cuda.synchronize()
            row["first_call_seconds"] = time.perf_counter() - start
            with torch.no_grad():
                row["seconds_per_segment"] = cuda_time(lambda: model(mix))
                row["rel_l2_vs_eager"] = rel_l2(model(mix), out32)
        except Exception as e:  # a failing mode is a finding, not a crash
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            row["trace_tail"] = traceback.format_exc().splitlines()[-3:]
        compiled_rows.append(row)
        print("torch-compile:", row)
    results["torch_compile"] = {"eager_fp32_seconds_per_segment": t_patched32, "modes": compiled_rows}
    write_json(args.out, results)


if __name__ == "__main__":
    main()
