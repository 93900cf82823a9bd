#!/usr/bin/env bash
# Issue 26's measurement, on a machine with two GPUs (the device tool's
# nvidia-h100-x2 or nvidia-h200-x2): `separate` over the same songs with one
# device and with two, per model; the wall time of the whole run (decoding,
# separation and encoding included), files per second, each GPU's busy share
# (nvidia-smi dmon's SM %, once a second beside the run), and whether the two
# runs wrote the same stems, byte for byte.
#
#   tools/gpu/before-after.sh build      # this tree and the full-size weights, first
#   tools/gpu/two-gpus.sh [--songs 20] [--seconds 180] [--models htdemucs,bs-roformer]
#       [--one cuda:0] [--two cuda:0,cuda:1] [--precision fp16] [--separate PATH]
#       [--htdemucs FILE] [--bsr-config FILE --bsr-checkpoint FILE]
#
# The songs are 16-bit stereo noise at 44.1 kHz (tests/separate/noise_wav.sh),
# each its own. Without a GPU, `--one cpu --two cpu,cpu --precision fp32` with
# small models runs the script itself (no dmon then). Output in $OUT/two-gpus/:
# results.txt (the table), run-*.json (separate's summaries), dmon-*.txt, log-*.txt.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
songs=20 seconds=180 models=htdemucs,bs-roformer one=cuda:0 two=cuda:0,cuda:1 precision=fp16
separate=build-cuda/runtime/separate/separate
weights=/tmp/stemkit-before-after  # where before-after.sh build puts them
htdemucs=$weights/htdemucs/full.th bsr_config=$weights/bsr/full.yaml bsr_checkpoint=$weights/bsr/full.ckpt
while [ $# -gt 0 ]; do
  case "$1" in
    --songs) songs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --one) one=$2; shift 2 ;;
    --two) two=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --separate) separate=$2; shift 2 ;;
    --htdemucs) htdemucs=$2; shift 2 ;;
    --bsr-config) bsr_config=$2; shift 2 ;;
    --bsr-checkpoint) bsr_checkpoint=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "two-gpus.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$separate" ] || { echo "two-gpus.sh: $separate is missing: run tools/gpu/before-after.sh build first" >&2; exit 2; }
out=${OUT:-gpu-out}/two-gpus
work=/tmp/stemkit-two-gpus
mkdir -p "$out" "$work/songs"
[ -f tools/gpu/unpack-debs.sh ] && [ -d .debs ] && eval "$(tools/gpu/unpack-debs.sh)"
# shellcheck source=tests/separate/noise_wav.sh
source tests/separate/noise_wav.sh
for i in $(seq -w 1 "$songs"); do
  [ -f "$work/songs/song$i.wav" ] || write_wav "$work/songs/song$i.wav" "$seconds"
done
dmon_ok=0
command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi > /dev/null 2>&1 && dmon_ok=1
{
  echo "machine: $( (nvidia-smi --query-gpu=index,name,driver_version --format=csv,noheader 2>/dev/null || echo no GPU) | tr '\n' ';') $(nproc) cores"
  echo "separate: $("$separate" --version 2>&1 | head -1)"
  echo "$songs songs of $seconds s, $precision, whole runs (decoding, separation, encoding)"
  printf '%-12s %-16s %9s %10s %9s  %s\n' model devices "wall s" "files/s" "x realt." "GPU busy (SM %, mean per GPU)"
} | tee "$out/results.txt"

for model in ${models//,/ }; do
  case "$model" in
    htdemucs) margs=(-n "$htdemucs") ;;
    bs-roformer) margs=(--model "$bsr_config" --checkpoint "$bsr_checkpoint") ;;
    *) echo "two-gpus.sh: unknown model $model (htdemucs, bs-roformer)" >&2; exit 2 ;;
  esac
  rate_one=""
  for devices in "$one" "$two"; do
    tag=$model-$(echo "$devices" | tr ':,' '_+')
    rm -rf "$work/out-$tag"
    dmon=""
    if [ "$dmon_ok" = 1 ]; then
      nvidia-smi dmon -s u -d 1 > "$out/dmon-$tag.txt" 2>&1 &
      dmon=$!
    fi
    t0=$(date +%s.%N)
    "$separate" "${margs[@]}" --device "$devices" --precision "$precision" -o "$work/out-$tag" \
      --json "$out/run-$tag.json" "$work"/songs/*.wav > "$out/log-$tag.txt" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    [ -z "$dmon" ] || kill "$dmon" 2>/dev/null
    if [ "$rc" != 0 ]; then
      echo "$model $devices: separate failed (exit $rc); $out/log-$tag.txt:" | tee -a "$out/results.txt"
      tail -5 "$out/log-$tag.txt" | tee -a "$out/results.txt"
      continue
    fi
    busy="-"
    [ -z "$dmon" ] || busy=$(awk '!/^#/ && NF > 1 { s[$1] += $2; n[$1]++ }
      END { for (g in s) printf "GPU %s %.0f%%  ", g, s[g] / n[g] }' "$out/dmon-$tag.txt")
    read -r wall rate x <<< "$(awk -v a="$t0" -v b="$t1" -v n="$songs" -v s="$seconds" \
      'BEGIN { w = b - a; printf "%.2f %.3f %.1f", w, n / w, n * s / w }')"
    printf '%-12s %-16s %9s %10s %9s  %s\n' "$model" "$devices" "$wall" "$rate" "$x" "$busy" | tee -a "$out/results.txt"
    if [ -z "$rate_one" ]; then
      rate_one=$rate
      continue
    fi
    awk -v a="$rate_one" -v b="$rate" 'BEGIN { printf "  two devices over one: %.2fx the files per second\n", b / a }' \
      | tee -a "$out/results.txt"
    # The stems (not the sets' records, which name the device) of the two runs.
    one_tag=$model-$(echo "$one" | tr ':,' '_+')
    if diff <(cd "$work/out-$one_tag" && find . -name '*.wav' -type f | sort | xargs sha256sum) \
      <(cd "$work/out-$tag" && find . -name '*.wav' -type f | sort | xargs sha256sum) > "$out/stems-diff-$model.txt"; then
      echo "  stems: all $(find "$work/out-$tag" -name '*.wav' -type f | wc -l) identical" | tee -a "$out/results.txt"
    else
      echo "  stems: DIFFER ($out/stems-diff-$model.txt)" | tee -a "$out/results.txt"
    fi
  done
done
