#!/usr/bin/env bash
# The newcomer's first command: install, build, then run patchmgr end to end
# on a demo upstream made locally (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec ./scripts/demo.sh
