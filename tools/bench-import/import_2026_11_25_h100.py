"""One-off conversion (2026-11-25): the HTDemucs H100 benchmark of that morning,
kept as raw outputs in docs/benchmarks/2026-11-25-h100-htdemucs/, into the result
format of `patchmgr bench` (docs/benchmarks.md, "Stored results"), marked as imported.

    python3 tools/bench-import/import_2026_11_25_h100.py --patchmgr build/patchmgr/patchmgr

Sources, all from one session on the GPU machine (`tools/gpu/htdemucs-run.sh bench`
at commit a9890ed): separate_bench.txt (separate --bench's printed table: its JSON was
never written, the process crashed while cleaning up), upstream.json (verbatim),
machine.txt (nvidia-smi and torch), separate_first_file.json (the same build's
--version text, hence libtorch and the patch set). Speeds keep the table's one
decimal and memory its two decimals of GB. The patch set then was 8056e58f60434274;
the script refuses to run unless the manifests still give that id, so the recorded
demucs block is exactly the one measured. Writes
docs/benchmarks/2026-11-25-h100-80gb-hbm3-demucs.json and never replaces a file.
"""
import argparse
import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "docs/benchmarks/2026-11-25-h100-htdemucs"
PATCH_SET = "8056e58f60434274"


def component_block(patchmgr, name):
    text = subprocess.run([patchmgr, "--root", str(ROOT), "fingerprint"], check=True, capture_output=True, text=True).stdout
    lines = text.splitlines()
    assert lines[0].startswith(f"patch set {PATCH_SET} "), f"the manifests no longer give patch set {PATCH_SET}: {lines[0]}"
    block = []
    for line in lines[2:]:
        if line.startswith(name + " "):
            block = [line]
        elif block and line.startswith("  "):
            block.append(line)
        elif block:
            break
    return lines[0].split("(")[1].rstrip(")"), "\n".join(block) + "\n"


def runtime_rows():
    rows, attention = [], {}
    for line in (RAW / "separate_bench.txt").read_text().splitlines():
        m = re.match(r"stemkit: attention on (.*), (Float|Half|BFloat16), (keys [<>=]+ \d+): (.*)$", line)
        if m:
            attention[m.group(2)] = f"{m.group(1)}, {m.group(2)}, {m.group(3)}: {m.group(4)}"
            continue
        if not re.match(r"(fp32|fp16|bf16) ", line):
            continue
        # "%-9s %5s %6s %-34s %10s %10s %10s %10s": precision, batch, graphs, attention, x realtime, x with I/O, GB allocated, GB reserved
        precision, batch, graphs = line[0:9].strip(), int(line[10:15]), line[16:22].strip()
        realtime, with_io, allocated, reserved = (float(x) for x in line[58:].split())
        dtype = {"fp32": "Float", "fp16": "Half", "bf16": "BFloat16"}[precision]
        assert graphs in ("on", "off"), line
        rows.append(dict(precision=precision, batch_size=batch, graphs=graphs == "on", seconds=180.0,
                         realtime=realtime, realtime_with_io=with_io,
                         peak_allocated_bytes=round(allocated * 1e9), peak_reserved_bytes=round(reserved * 1e9),
                         graphs_status="replaying (the table printed \"on\")" if graphs == "on" else "off",
                         attention=attention[dtype]))
    assert len(rows) == 24, len(rows)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patchmgr", default="build/patchmgr/patchmgr")
    args = parser.parse_args()
    summary, block = component_block(args.patchmgr, "demucs")
    version = json.loads((RAW / "separate_first_file.json").read_text())["version"]
    assert f"patch set {PATCH_SET}:" in version
    libtorch = re.search(r"^libtorch (.*)$", version, re.M).group(1)
    gpu, driver, memory = [x.strip() for x in (RAW / "machine.txt").read_text().splitlines()[1].split(",")]
    upstream = json.loads((RAW / "upstream.json").read_text())
    work = "/tmp/stemkit-gpu"
    result = {
        "stemkit_bench": 1,
        "component": "demucs",
        "date": "2026-11-25",
        "time": "2026-11-25T10:42:33Z",
        "imported": "converted by tools/bench-import/import_2026_11_25_h100.py from the raw outputs in "
                    "[docs/benchmarks/2026-11-25-h100-htdemucs/](docs/benchmarks/2026-11-25-h100-htdemucs/) "
                    "(`tools/gpu/htdemucs-run.sh bench` at a9890ed; separate's rows from its printed table: "
                    "speeds to one decimal, memory to 10 MB). Time: when those outputs were committed.",
        "notes": ["cuDNN autotuning was on (separate's default then; now --cudnn-benchmark).",
                  "Upstream fp32 in other runs the same day: 62.9, 72.0, 84.2 and 85.4x; this machine's run-to-run "
                  "spread is about ±15% (docs/benchmarks.md)."],
        "machine": {"label": gpu, "cpu": "", "cores": 16, "os": "Ubuntu 24.04", "gpu": gpu, "driver": driver,
                    "gpu_memory": memory},
        "libtorch": libtorch,
        "fingerprint": {"id": PATCH_SET, "summary": summary, "component": block},
        "runtime_patch_set": PATCH_SET,
        "track": {"path": f"{work}/track.wav", "seconds": 180.0, "synthetic": True},
        "commands": [
            f"python3 tools/bench/upstream_demucs_bench.py --demucs .deps/demucs-patched --deps .deps/py --model {work}/full/full.th "
            f"--track {work}/track.wav --write-track --seconds 180 --out gpu-out/upstream.json",
            f"build-cuda/runtime/separate/separate --bench {work}/track.wav -n {work}/full/full.th --device cuda "
            "--bench-precisions fp32,fp16,bf16 --bench-batch-sizes 1,4,8,16 --bench-graphs on,off --json gpu-out/separate_bench.json",
        ],
        "runtime": {"track": f"{work}/track.wav", "seconds": 180.0, "model": "full", "device": "cuda:0",
                    "gpu": f"{gpu} (SM 9.0)", "shifts": 1, "overlap": 0.25, "version": version, "rows": runtime_rows()},
        "upstream": upstream,
    }
    target = ROOT / "docs/benchmarks/2026-11-25-h100-80gb-hbm3-demucs.json"
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    try:
        os.link(tmp, target)  # fails if the file exists: never replaces a result
    finally:
        tmp.unlink()
    print("wrote", target.relative_to(ROOT))


if __name__ == "__main__":
    main()
