#!/usr/bin/env bash
# The newcomer's second command and what CI runs: install, build, test.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --parallel "$(nproc 2>/dev/null || echo 2)"
