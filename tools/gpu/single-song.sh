#!/usr/bin/env bash
# On the device tool's GPU machine, after tools/gpu/bench.sh (or roformer-ab.sh) in
# the same call: what a user waits for when `separate` runs one or two songs, under
# each variant's `separate` options. Each variant is one process separating two
# 180 s songs (`separate a.wav b.wav --model full.yaml --checkpoint full.ckpt
# --device cuda`, the config's batch, --precision auto), printed as: the whole
# command's wall time, loading, first song, second song. The first song pays the
# one-time setup (cuBLASLt's algorithm timing, warm-up, graph capture); the second
# is the steady state.
#
#   tools/gpu/single-song.sh LABEL[:OPTION...] ...
#   e.g. tools/gpu/single-song.sh now aten-gemm:--gemm=aten now
#
# Needs build-cuda/ and .bench/bs-roformer/full.{yaml,ckpt} (made by the bench).
# Output in $OUT: single-song.txt and one JSON summary per variant.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-gpu-out}
mkdir -p "$out"
eval "$(tools/gpu/unpack-debs.sh)"
songs=/tmp/stemkit-single-song
mkdir -p "$songs"
# Two different 180 s stereo 16-bit WAVs at 44.1 kHz (tones and noise).
python3 - "$songs" <<'EOF'
import sys, wave, numpy as np
for k, name in enumerate(["a", "b"]):
    rng = np.random.default_rng(k)
    n = 180 * 44100
    t = np.arange(n) / 44100.0
    x = 0.3 * np.sin(2 * np.pi * (220 + 110 * k) * t)[:, None] + 0.1 * rng.standard_normal((n, 2))
    with wave.open(f"{sys.argv[1]}/song-{name}.wav", "wb") as w:
        w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
EOF
for spec in "$@"; do
  IFS=: read -r -a parts <<<"$spec"
  json="$out/single-song-${parts[0]}.json"
  rm -rf "$songs/sep"
  t0=$(date +%s.%N)
  build-cuda/runtime/separate/separate "${parts[@]:1}" "$songs/song-a.wav" "$songs/song-b.wav" \
    --model .bench/bs-roformer/full.yaml --checkpoint .bench/bs-roformer/full.ckpt --device cuda \
    --out "$songs/sep" --quiet --json "$json" > "$out/single-song-${parts[0]}.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  python3 - "$json" "$rc" "$t0" "$t1" "$spec" <<'EOF' | tee -a "$out/single-song.txt"
import json, sys
path, rc, t0, t1, spec = sys.argv[1:]
try:
    j = json.load(open(path))
    f = j["files"]
    print(f"{spec}: command {float(t1) - float(t0):.2f} s, load {j['load_s']:.2f} s, first {f[0]['separate_s']:.2f} s, "
          f"second {f[1]['separate_s']:.2f} s ({j['precision']}, batch {f[0]['batch_size']}, {f[0]['graphs']})")
except Exception as e:
    print(f"{spec}: failed (rc {rc}): {e}")
EOF
done
