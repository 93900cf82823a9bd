#!/usr/bin/env bash
# Builds the checkpoint-reader fuzzer with clang and runs it for N seconds
# (default 60) from the fixture corpus, then the patch-file reader's fuzzer for
# N seconds from the patches git writes (tools/patch-corpus/make.sh). Exit 0 when nothing was found; a crash
# leaves its input as build-fuzz/crash-* to reproduce with ./build-fuzz/fuzz_weights FILE
# (or ./build-fuzz/fuzz_patch_file FILE).
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
./fuzz_patch_file -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 patch-seeds 2>&1 | tail -5
