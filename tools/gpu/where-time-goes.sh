#!/usr/bin/env bash
# On the device tool's GPU machine: where each model's time goes, against the
# hardware's limits (issue 25's "explain the remaining time"). After
# `tools/gpu/before-after.sh build` (this tree, and the full-size weights):
#
#   - the arithmetic of each model (tools/bench/model_flops.py: upstream's module
#     under FlopCounterMode, per chunk, and the chunks of a 180 s track);
#   - the timed rows the issue names (180 s track, graphs on, median of 3), with
#     the clocks and power logged once a second (nvidia-smi dmon);
#   - a kernel trace of each row (eager, a 16 s track for BS-RoFormer, 30 s for
#     HTDemucs), summed per kernel, per ATen op and per kind of work (tools/bench/trace_summary.py).
#
#   tools/gpu/where-time-goes.sh [ROWS...]   # rows: bsr-fp16-b2 bsr-fp16-b4 bsr-low (batch 1, then low memory) htd-fp16-b8 htd-fp32-b1 (default all)
#
# Output in $OUT/where/: flops-*.json, rows.txt, dmon.txt, trace-ROW-{kernels,ops,kinds}.txt.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
start=$(date +%s)
say() { echo "[$(( $(date +%s) - start )) s] $*"; }
out=${OUT:-gpu-out}/where
mkdir -p "$out"
work=/tmp/stemkit-before-after
eval "$(tools/gpu/unpack-debs.sh)"
sep=build-cuda/runtime/separate/separate
[ -x "$sep" ] && [ -f "$work/bsr/full.ckpt" ] && [ -f "$work/htdemucs/full.th" ] \
  || { echo "where-time-goes.sh: run tools/gpu/before-after.sh build first"; exit 2; }

row_args() {  # ROW -> the model and the row's options
  case "$1" in
    bsr-fp16-b2) echo "--model $work/bsr/full.yaml --checkpoint $work/bsr/full.ckpt --bench-precisions fp16 --bench-batch-sizes 2" ;;
    bsr-fp16-b4) echo "--model $work/bsr/full.yaml --checkpoint $work/bsr/full.ckpt --bench-precisions fp16 --bench-batch-sizes 4" ;;
    bsr-low) echo "--model $work/bsr/full.yaml --checkpoint $work/bsr/full.ckpt --bench-precisions fp16 --bench-batch-sizes 1 --bench-low-memory" ;;
    htd-fp16-b8) echo "-n $work/htdemucs/full.th --bench-precisions fp16 --bench-batch-sizes 8" ;;
    htd-fp32-b1) echo "-n $work/htdemucs/full.th --bench-precisions fp32 --bench-batch-sizes 1" ;;
    *) echo "where-time-goes.sh: unknown row $1" >&2; return 1 ;;
  esac
}
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(bsr-fp16-b2 bsr-fp16-b4 bsr-low htd-fp16-b8 htd-fp32-b1)

# The arithmetic of each model the rows run.
if [[ " ${rows[*]} " == *" htd-"* ]]; then
  python3 tools/bench/model_flops.py demucs --demucs .deps/demucs-patched --deps .deps/py --model "$work/htdemucs/full.th" \
    > "$out/flops-htdemucs.json" 2> "$out/flops-htdemucs.log"; tail -1 "$out/flops-htdemucs.log"
fi
if [[ " ${rows[*]} " == *" bsr-"* ]]; then
  python3 tools/bench/model_flops.py bs-roformer --bs-roformer .deps/bs-roformer-patched --deps .deps/py \
    --kwargs "$work/bsr/full.json" --checkpoint "$work/bsr/full.ckpt" \
    > "$out/flops-bs-roformer.json" 2> "$out/flops-bs-roformer.log"; tail -1 "$out/flops-bs-roformer.log"
fi

nvidia-smi dmon -s pucv -d 1 > "$out/dmon.txt" 2>&1 &
dmon=$!
trap 'kill $dmon 2>/dev/null' EXIT
for row in "${rows[@]}"; do
  read -r -a a <<<"$(row_args "$row")" || exit 2
  say "$row timed" | tee -a "$out/rows.txt"
  "$sep" --bench --device cuda "${a[@]}" --bench-graphs on --bench-repeats 3 --json "$out/row-$row.json" 2>&1 \
    | grep -E "^(fp16|bf16|fp32) " | tee -a "$out/rows.txt"
done
kill $dmon 2>/dev/null
for row in "${rows[@]}"; do
  read -r -a a <<<"$(row_args "$row")"
  seconds=30
  [[ $row == bsr* ]] && seconds=16
  "$sep" --bench --device cuda "${a[@]}" --bench-graphs off --bench-repeats 1 --bench-seconds "$seconds" \
    --bench-trace "$out/trace-$row" > "$out/trace-$row.log" 2>&1 || { tail -5 "$out/trace-$row.log"; continue; }
  trace=$(ls "$out/trace-$row"-*.json | tail -1)  # bsr-low: the low-memory row, after batch 1's
  python3 tools/bench/trace_summary.py "$trace" --top 40 --width 130 > "$out/trace-$row-kernels.txt" 2>&1
  python3 tools/bench/trace_summary.py "$trace" --by-op --top 40 --width 170 > "$out/trace-$row-ops.txt" 2>&1
  python3 tools/bench/trace_summary.py "$trace" --kinds > "$out/trace-$row-kinds.txt" 2>&1
  say "$row traced: $(head -3 "$out/trace-$row-kernels.txt" | tr '\n' ' ')"
  gzip -9 "$out/trace-$row"-*.json
done
say "all done"
