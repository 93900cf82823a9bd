#!/usr/bin/env bash
# Several models on one GPU (--device cuda:0,cuda:0: the case a machine with
# one GPU can run; docs/cli.md, "Several devices"), CUDA graphs on: every
# stem is the one `--device cuda:0` writes, byte for byte (16-bit WAV, fp32),
# the two models both took files, and each replayed its captured graphs
# (graphs captured while the other model separates). Needs a GPU: without one,
# skipped, saying so. Only the `separate` binary runs.
#
#   tests/separate/devices_gpu_test.sh SEPARATE_BINARY REPO_ROOT [ONE TWO]
#   ONE TWO: the device lists compared (default cuda:0 and cuda:0,cuda:0;
#   "cpu -j 1" and "cpu,cpu -j 2" try the script on a machine without one)
set -euo pipefail
separate=$1
root=$2
one=${3:-cuda:0}
two=${4:-cuda:0,cuda:0}
model=$root/tests/fixtures/htdemucs/small.th
work=$(mktemp -d /tmp/stemkit-devices-gpu-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
# shellcheck source=tests/separate/noise_wav.sh
source "$root/tests/separate/noise_wav.sh"

if [[ $one == cuda* ]] && ! "$separate" -n "$model" -d "$one" --explain > "$work/explain" 2>&1; then
  echo "skipped: no GPU here ($(tail -1 "$work/explain"))"
  exit 0
fi
# Different lengths, so that the models finish out of step and capture the
# shapes of their last, shorter batches while the other one separates.
mkdir -p "$work/in"
for s in 9 2 14 5 3 11; do write_wav "$work/in/song$s.wav" "$s"; done
# The GEMM algorithms the first run times are the second's (the same kernels in both).
export XDG_CACHE_HOME=$work/cache
# shellcheck disable=SC2086  # the device arguments are words
"$separate" -n "$model" -d $one -b 2 -q -o "$work/one" --json "$work/one.json" "$work/in" || fail "separate -d $one"
# shellcheck disable=SC2086
"$separate" -n "$model" -d $two -b 2 -q -o "$work/two" --json "$work/two.json" "$work/in" || fail "separate -d $two"
stems=0
while IFS= read -r f; do
  stems=$((stems + 1))
  cmp -s "$work/one/$f" "$work/two/$f" || fail "$f: -d $two wrote other bytes than -d $one"
done < <(cd "$work/one" && find . -name '*.wav' | sort)
[ "$stems" = 24 ] || fail "$stems stems from -d $one, expected 24 (6 songs, 4 stems)"
python3 - "$work/two.json" "$one" <<'PY' || fail "-d $two: see above"
import json, sys
j = json.load(open(sys.argv[1]))
workers = {f["worker"] for f in j["files"]}
assert workers == {0, 1}, f"workers {workers}: each model should take files"
assert all(f["status"] == "ok" for f in j["files"]), [f["status"] for f in j["files"]]
if sys.argv[2].startswith("cuda"):
    assert j["plan"]["graphs"]["value"], j["plan"]["graphs"]
    bad = [f["graphs"] for f in j["files"] if not f["graphs"].startswith("replaying")]
    assert not bad, f"graph status: {bad}"
PY
echo "passed: $stems stems of -d $two byte for byte those of -d $one"
