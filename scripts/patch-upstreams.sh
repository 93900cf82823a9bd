#!/usr/bin/env bash
# The main job, and the newcomer's first command: install what is missing,
# build, then clone each upstream in manifests/ at its pin and apply our
# patches (patchmgr sync, apply, status).
#
# The upstreams come from GitHub. On a machine without network, point each
# component at a local clone or mirror:
#   PATCHMGR_UPSTREAM_DEMUCS=/srv/mirrors/demucs \
#   PATCHMGR_UPSTREAM_BS_ROFORMER=/srv/mirrors/BS-RoFormer ./scripts/patch-upstreams.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
patchmgr=./build/patchmgr/patchmgr
run() { printf '\n$ patchmgr %s\n' "$*"; "$patchmgr" "$@"; }
run lint
run sync
run apply
run status
run check --against latest || echo "(some patches no longer apply on upstream's newest commit: see above)"
printf '\nThe patched checkouts are in upstream/; PATCHES.md describes every patch.\n'
