#!/usr/bin/env bash
# On the device tool's GPU machine, after `tools/gpu/before-after.sh build` in the
# same lease (its builds and full-size weights): what a user waits for when one
# song is separated by a new process. Each run is `separate song.wav` with
# default options (HTDemucs: -n full.th; BS-RoFormer: --model full.yaml
# --checkpoint full.ckpt, so fp16 and the config's batch 4) on a 180 s 16-bit
# WAV, timed from just before exec to the last stem renamed into place (the
# issue's measure) and to the process's exit, with the process's own
# timeline (--json's "timeline") placed on that clock: the time before main()
# (loading and relocating the shared libraries, their static constructors),
# the GPU's start, reading the weights, decoding, the first batch, the
# separation, writing and renaming the stems, and the exit. Upstream runs the
# same song in one new Python process per run (tools/bench/upstream_cold_start.py).
# The first run of each binary may find its libraries outside the page cache, and
# starts without the GEMM algorithms earlier runs keep (XDG_CACHE_HOME is emptied).
#
#   tools/gpu/cold-start.sh [--runs N] [--no-upstream] [LABEL=BINARY ...]
#   default: now=build-cuda/runtime/separate/separate; e.g. before=/tmp/before/build-cuda/runtime/separate/separate
#
# Output in $OUT: cold-start.txt (one line per run), cold-start-*.json.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
eval "$(tools/gpu/unpack-debs.sh)"
runs=3
upstream=1
binaries=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --no-upstream) upstream=0; shift ;;
    *) binaries+=("$1"); shift ;;
  esac
done
[ ${#binaries[@]} -gt 0 ] || binaries=(now=build-cuda/runtime/separate/separate)
weights=/tmp/stemkit-before-after
work=/tmp/stemkit-cold-start
mkdir -p "$work"
song=$work/song.wav
[ -f "$song" ] || PYTHONPATH=tools/bench python3 -c "import sys; from upstream_demucs_bench import write_track; write_track(sys.argv[1], 180)" "$song"
report() {  # label model run t0 t1 json kind(separate|upstream) rc
  python3 - "$@" <<'PY' | tee -a "$out/cold-start.txt"
import json, sys
label, model, run, t0, t1, path, kind, rc = sys.argv[1:]
t0, t1 = float(t0), float(t1)
head = f"{model:<11} {label:<8} run {run}: {t1 - t0:6.2f} s"
try:
    j = json.load(open(path))
except Exception as e:
    print(f"{head}  failed (exit {rc}): {e}")
    sys.exit()
if kind == "upstream":
    marks = [(p["phase"], p["epoch_s"] - t0) for p in j["phases"]]
else:
    tl = j["timeline"]
    base = tl["main_epoch_s"] - t0
    marks = [("main", base)] + [(m["phase"].split(": ")[0], base + m["at_s"]) for m in tl["marks"]]
# The issue's measure: from exec to the last stem in place (upstream: written); then the exit.
done = [t for p, t in marks if p in ("stems renamed into place", "stems written")]
head = f"{model:<11} {label:<8} run {run}: stems in place {done[-1] if done else float('nan'):5.2f} s, exit {t1 - t0:5.2f} s"
print(head + " | " + " | ".join(f"{p} {t:.2f}" for p, t in marks) + f" | exit {t1 - t0:.2f}")
PY
}
for model in htdemucs bs-roformer; do
  case $model in
    htdemucs) args=(-n "$weights/htdemucs/full.th") ;;
    bs-roformer) args=(--model "$weights/bsr/full.yaml" --checkpoint "$weights/bsr/full.ckpt") ;;
  esac
  for spec in "${binaries[@]}"; do
    label=${spec%%=*}
    bin=${spec#*=}
    # The libraries' load and static constructors alone: a command that starts no GPU work.
    t0=$(date +%s.%N); "$bin" --version > /dev/null 2>&1; t1=$(date +%s.%N)
    echo "$model $label: \`separate --version\` (loading only) $(python3 -c "print(f'{$t1 - $t0:.2f}')") s" | tee -a "$out/cold-start.txt"
    # Run 1 starts without kept GEMM algorithms (~/.cache/stemkit/gemm); later runs find run 1's.
    rm -rf "$work/cache-$label"
  done
  # The binaries in turns (run 1 of each, then run 2, ...): the machine's drift hits all alike.
  for r in $(seq 1 "$runs"); do
    for spec in "${binaries[@]}"; do
      label=${spec%%=*}
      bin=${spec#*=}
      rm -rf "$work/sep"
      json="$out/cold-start-$model-$label-$r.json"
      t0=$(date +%s.%N)
      XDG_CACHE_HOME="$work/cache-$label" "$bin" "$song" "${args[@]}" --device cuda --out "$work/sep" --quiet --json "$json" > "$work/log" 2>&1
      rc=$?
      t1=$(date +%s.%N)
      report "$label" "$model" "$r" "$t0" "$t1" "$json" separate "$rc"
      [ "$rc" = 0 ] || tail -5 "$work/log"
    done
  done
  [ "$upstream" = 1 ] || continue
  for r in $(seq 1 "$runs"); do
    rm -rf "$work/sep"
    json="$out/cold-start-$model-upstream-$r.json"
    case $model in
      htdemucs) up=(demucs --demucs .deps/demucs-patched --model "$weights/htdemucs/full.th") ;;
      bs-roformer) up=(bs-roformer --bs-roformer .deps/bs-roformer-patched --msst-utils .deps/msst/model_utils.py
                       --kwargs "$weights/bsr/full.json" --checkpoint "$weights/bsr/full.ckpt") ;;
    esac
    t0=$(date +%s.%N)
    python3 tools/bench/upstream_cold_start.py "${up[@]}" --deps .deps/py --track "$song" --out "$work/sep" \
      --json "$json" > "$work/log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    report upstream "$model" "$r" "$t0" "$t1" "$json" upstream "$rc"
    [ "$rc" = 0 ] || tail -5 "$work/log"
  done
done
