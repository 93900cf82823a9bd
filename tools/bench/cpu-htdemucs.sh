#!/usr/bin/env bash
# HTDemucs on the CPU, side by side: upstream's apply_model (the patched demucs,
# tools/bench/upstream_demucs_bench.py) and `separate --bench`, on one
# synthetic track and one set of weights (the official htdemucs architecture
# with random weights), fp32, split, overlap 0.25, shifts 1, N threads each.
# The two alternate, round by round, so that a machine's changing load falls on
# both; each side's median (and every run) goes into one table.
#
#   tools/bench/cpu-htdemucs.sh [--threads N] [--seconds 30] [--rounds 3] [--python PY]
#       [--separate PATH] [--patchmgr PATH] [--demucs DIR] [--deps DIR] [--work DIR]
#
# Defaults: all cores; the first Python that imports torch (Debian's
# /usr/bin/python3 has python3-torch; a PyTorch wheel's python3 elsewhere);
# build/ or build-cuda/ for separate and patchmgr; .deps/demucs-patched and
# .deps/py (tools/gpu/stage-deps.sh), else /work/main/.deps; work files in
# /tmp/stemkit-cpu-htdemucs. Both sides' JSON results stay in the work folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=$(nproc) seconds=30 rounds=3 python="" separate="" patchmgr="" demucs="" deps=""
work=/tmp/stemkit-cpu-htdemucs
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --separate) separate=$2; shift 2 ;;
    --patchmgr) patchmgr=$2; shift 2 ;;
    --demucs) demucs=$2; shift 2 ;;
    --deps) deps=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu-htdemucs.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
first() { for f in "$@"; do [ -e "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
if [ -z "$python" ]; then
  for p in /usr/bin/python3 python3; do
    "$p" -c "import torch" 2>/dev/null && { python=$p; break; }
  done
  [ -n "$python" ] || { echo "cpu-htdemucs.sh: no Python with torch; give --python" >&2; exit 2; }
fi
separate=${separate:-$(first build/runtime/separate/separate build-cuda/runtime/separate/separate)}
patchmgr=${patchmgr:-$(first build/patchmgr/patchmgr build-cuda/patchmgr/patchmgr build-pm/patchmgr/patchmgr)}
demucs=${demucs:-$(first .deps/demucs-patched /work/main/.deps/demucs-patched)}
deps=${deps:-$(first .deps/py /work/main/.deps/py)}
for f in "$separate" "$patchmgr" "$demucs" "$deps"; do
  [ -e "$f" ] || { echo "cpu-htdemucs.sh: $f is missing (build separate and patchmgr; stage .deps)" >&2; exit 2; }
done
mkdir -p "$work"
model=$work/full.th track=$work/track-$seconds.wav
[ -f "$model" ] || "$python" tools/fixtures/make_htdemucs_fixtures.py --demucs "$demucs" --deps "$deps" --out "$work" \
  --config full --weights-only --patchmgr "$patchmgr" > "$work/fixture.log" 2>&1 \
  || { tail -20 "$work/fixture.log"; exit 1; }
[ -f "$track" ] || "$python" -c "import sys; sys.path.insert(0, 'tools/bench'); sys.argv = ['x']
from upstream_demucs_bench import write_track; write_track('$track', $seconds)"

for r in $(seq 1 "$rounds"); do
  "$python" tools/bench/upstream_demucs_bench.py --demucs "$demucs" --deps "$deps" --model "$model" --track "$track" \
    --precisions fp32 --device cpu --threads "$threads" --out "$work/upstream-$r.json" > "$work/upstream-$r.log" 2>&1 \
    || { tail -20 "$work/upstream-$r.log"; exit 1; }
  "$separate" --bench "$track" -n "$model" --device cpu -j "$threads" --bench-graphs off --precision fp32 \
    --json "$work/stemkit-$r.json" -q > "$work/stemkit-$r.log" 2>&1 || { tail -20 "$work/stemkit-$r.log"; exit 1; }
  echo "round $r of $rounds done" >&2
done

"$python" - "$work" "$rounds" "$threads" "$seconds" <<'PY'
import json, platform, statistics, sys
import torch
work, rounds, threads, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
up = [json.load(open(f"{work}/upstream-{r}.json"))["rows"][0]["realtime"] for r in range(1, rounds + 1)]
sk = [json.load(open(f"{work}/stemkit-{r}.json"))["rows"][0]["realtime"] for r in range(1, rounds + 1)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"CPU: {cpu}; torch {torch.__version__} (upstream); {threads} threads each; {seconds} s track; fp32")
print(f"{'threads':>7} {'upstream x realtime':>20} {'stemkit x realtime':>19} {'ratio':>6}   runs (upstream | stemkit)")
u, s = statistics.median(up), statistics.median(sk)
runs = " ".join(f"{x:.3f}" for x in up) + " | " + " ".join(f"{x:.3f}" for x in sk)
print(f"{threads:>7} {u:20.3f} {s:19.3f} {s / u:6.2f}   {runs}")
PY
