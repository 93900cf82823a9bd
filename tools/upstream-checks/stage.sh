#!/usr/bin/env bash
# Stages what the upstream checks need on a machine without network (the GPU
# machine): the patched and the pristine upstream packages, and the
# pure-Python dependencies, exported from local clones with git archive.
#
#   tools/upstream-checks/stage.sh [OUT]        (default OUT: .deps/upstream-checks)
#
# Needs: the checkouts synced (patchmgr sync), mirrors of julius and
# open-unmix in $JULIUS_MIRROR and $OPENUNMIX_MIRROR (git clones or bare repos).
# The demucs checkout is (re)applied with the opt-in torch-compile patch so
# that every demucs patch is under test.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.deps/upstream-checks}
patchmgr=${PATCHMGR:-./build/patchmgr/patchmgr}
: "${JULIUS_MIRROR:?set JULIUS_MIRROR to a clone of https://github.com/adefossez/julius}"
: "${OPENUNMIX_MIRROR:?set OPENUNMIX_MIRROR to a clone of https://github.com/sigsep/open-unmix-pytorch}"

"$patchmgr" apply demucs --with torch-compile
"$patchmgr" apply bs-roformer

rm -rf "$out"
mkdir -p "$out/patched" "$out/pristine" "$out/deps"
export_tree() {  # repo rev subdir dest
  git -C "$1" archive --format=tar "$2" "$3" | tar -x -C "$4"
}
pin() { sed -n 's/^ *commit: *\([0-9a-f]\{40\}\).*/\1/p' "manifests/$1.yaml"; }
export_tree upstream/demucs HEAD demucs "$out/patched"
export_tree upstream/demucs "$(pin demucs)" demucs "$out/pristine"
export_tree upstream/bs-roformer HEAD bs_roformer "$out/patched"
export_tree upstream/bs-roformer "$(pin bs-roformer)" bs_roformer "$out/pristine"
export_tree "$JULIUS_MIRROR" HEAD julius "$out/deps"
export_tree "$OPENUNMIX_MIRROR" HEAD openunmix "$out/deps"
# Record exactly what was staged.
{
  echo "demucs patched: $(git -C upstream/demucs rev-parse HEAD) pristine: $(pin demucs)"
  echo "bs-roformer patched: $(git -C upstream/bs-roformer rev-parse HEAD) pristine: $(pin bs-roformer)"
  echo "julius: $(git -C "$JULIUS_MIRROR" rev-parse HEAD)"
  echo "openunmix: $(git -C "$OPENUNMIX_MIRROR" rev-parse HEAD)"
} > "$out/STAGED.txt"
du -sh "$out"
