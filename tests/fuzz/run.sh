#!/usr/bin/env bash
# Builds the checkpoint-reader fuzzer with clang and runs it for N seconds
# (default 60) from the fixture corpus, then the patch-file reader's fuzzer for
# N seconds from the patches git writes (tools/patch-corpus/make.sh), then the
# audio decoders' fuzzer for N seconds from short files the ffmpeg tool makes
# (every container and codec separate is commonly given; from nothing without the
# tool). Exit 0 when nothing was found; a crash
# leaves its input as build-fuzz/crash-* to reproduce with ./build-fuzz/fuzz_weights FILE
# (or ./build-fuzz/fuzz_patch_file FILE, ./build-fuzz/fuzz_audio FILE). Leaks inside
# libgit2 are suppressed for the patch fuzzer (tests/fuzz/lsan.supp says why).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "fuzz: skipped: clang++ is not installed (apt-get install clang libclang-rt-dev)"; exit 0; }
CXX=clang++ cmake -S tests/fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo > build-fuzz.log 2>&1 || { cat build-fuzz.log; exit 1; }
cmake --build build-fuzz -j"$(nproc)" >> build-fuzz.log 2>&1 || { tail -30 build-fuzz.log; exit 1; }
corpus=build-fuzz/corpus
mkdir -p "$corpus"
cp tests/fixtures/weights/*.pt tests/fixtures/weights/*.th tests/fixtures/weights/*.ckpt tests/fixtures/weights/*.safetensors "$corpus"/
cd build-fuzz
./fuzz_weights -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 corpus 2>&1 | tail -5
cd ..
tools/patch-corpus/make.sh build-fuzz/patch-corpus > /dev/null
mkdir -p build-fuzz/patch-seeds && cp build-fuzz/patch-corpus/*.patch build-fuzz/patch-corpus/bad/*.patch build-fuzz/patch-seeds/
cd build-fuzz
LSAN_OPTIONS="suppressions=$PWD/../tests/fuzz/lsan.supp" ./fuzz_patch_file -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 patch-seeds 2>&1 | tail -5
cd ..
audio_seeds=build-fuzz/audio-seeds
rm -rf "$audio_seeds" && mkdir -p "$audio_seeds"
if command -v ffmpeg >/dev/null; then
  # 0.1 s each: small files, so that mutations reach past the headers.
  src=(-v error -y -f lavfi -i "sine=frequency=440:duration=0.1:sample_rate=22050")
  for spec in "wav:-c:a pcm_s16le" "w24.wav:-c:a pcm_s24le" "aiff:-c:a pcm_s16be" "flac:-c:a flac" \
              "mp3:-c:a libmp3lame -b:a 32k" "m4a:-c:a aac -b:a 32k" "opus:-c:a libopus -b:a 16k" \
              "ogg:-c:a libvorbis -q:a 0" "mka:-c:a pcm_f32le" "caf:-c:a alac" "wma:-c:a wmav2" "ac3:-c:a ac3"; do
    ffmpeg "${src[@]}" ${spec#*:} "$audio_seeds/seed.${spec%%:*}" || echo "fuzz: no seed .${spec%%:*} (this ffmpeg cannot write it)"
  done
  ffmpeg -v error -y -f lavfi -i "sine=duration=0.1" -f lavfi -i "testsrc=size=16x16:rate=5:duration=0.1" \
    -c:a aac -c:v mpeg4 -shortest "$audio_seeds/seed.mp4" || echo "fuzz: no seed .mp4"
else
  echo "fuzz: audio decoders from random bytes only: the ffmpeg tool is not installed (apt-get install ffmpeg)"
fi
cd build-fuzz
./fuzz_audio -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=16384 -timeout=10 audio-seeds 2>&1 | tail -5
