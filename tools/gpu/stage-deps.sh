#!/usr/bin/env bash
# Here (the development machine): stages in .deps/ (git-ignored) what the GPU
# machine's scripts (bench.sh, roformer-ab.sh, htdemucs-run.sh) need from the
# network, which that machine lacks: the patched upstream packages and the
# upstream side's pure-Python dependencies, exported from local clones or
# mirrors with git. Then: carry [".deps", ".debs"] (and tools/gpu/fetch-debs.sh
# for .debs/).
#
#   DEMUCS=... BS_ROFORMER=... EINOPS=... BEARTYPE=... ROTARY=... JULIUS=... \
#   OPENUNMIX=... MSST=... tools/gpu/stage-deps.sh
#
# Each variable names a clone (or bare mirror) of: adefossez/demucs,
# lucidrains/BS-RoFormer, arogozhnikov/einops, beartype/beartype,
# lucidrains/rotary-embedding-torch, adefossez/julius, sigsep/open-unmix-pytorch,
# ZFTurbo/Music-Source-Separation-Training. demucs and BS-RoFormer are cloned
# into upstream/ and patched by patchmgr (PATCHMGR, default build-pm's or
# build's); .deps/ then holds their patched packages, so a GPU run measures
# exactly this series.
set -euo pipefail
cd "$(dirname "$0")/../.."
for v in DEMUCS BS_ROFORMER EINOPS BEARTYPE ROTARY JULIUS OPENUNMIX MSST; do
  [ -n "${!v:-}" ] || { echo "stage-deps.sh: set $v to a clone of its repository (see the header)" >&2; exit 2; }
done
pm=${PATCHMGR:-}
[ -n "$pm" ] || for p in build-pm/patchmgr/patchmgr build/patchmgr/patchmgr; do [ -x "$p" ] && pm=$p && break; done
[ -x "${pm:-}" ] || { echo "stage-deps.sh: no patchmgr built (cmake -S . -B build-pm -DSTEMKIT_BUILD_RUNTIME=OFF; cmake --build build-pm)" >&2; exit 2; }

PATCHMGR_UPSTREAM_DEMUCS=$DEMUCS PATCHMGR_UPSTREAM_BS_ROFORMER=$BS_ROFORMER "$pm" sync
"$pm" apply demucs
"$pm" apply bs-roformer

# One directory of a repository at HEAD, file by file: a mirror may lack blobs
# elsewhere in its tree, which makes `git archive` of even a subdirectory fail.
export_dir() {  # repo dir dest
  git -C "$1" ls-tree -r --name-only HEAD -- "$2" | while read -r f; do
    mkdir -p "$3/$(dirname "$f")"
    git -C "$1" show "HEAD:$f" > "$3/$f"
  done
  [ -n "$(ls -A "$3/$2" 2>/dev/null)" ] || { echo "stage-deps.sh: $1 has no $2/ at HEAD" >&2; exit 1; }
}
rm -rf .deps/py .deps/demucs-patched .deps/bs-roformer-patched .deps/msst
mkdir -p .deps/py .deps/demucs-patched .deps/bs-roformer-patched .deps/msst
export_dir "$EINOPS" einops .deps/py
export_dir "$BEARTYPE" beartype .deps/py
export_dir "$ROTARY" rotary_embedding_torch .deps/py
export_dir "$JULIUS" julius .deps/py
export_dir "$OPENUNMIX" openunmix .deps/py
export_dir upstream/demucs demucs .deps/demucs-patched
export_dir upstream/bs-roformer bs_roformer .deps/bs-roformer-patched
git -C "$MSST" show HEAD:utils/model_utils.py > .deps/msst/model_utils.py
{
  echo "demucs patched: $(git -C upstream/demucs rev-parse HEAD)"
  echo "bs-roformer patched: $(git -C upstream/bs-roformer rev-parse HEAD)"
  for v in EINOPS BEARTYPE ROTARY JULIUS OPENUNMIX MSST; do echo "$v: $(git -C "${!v}" rev-parse HEAD)"; done
} > .deps/STAGED.txt
du -sh .deps
