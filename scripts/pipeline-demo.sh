#!/usr/bin/env bash
# The CPU pipeline without network, as .ci/run runs it:
#  1. `patchmgr pipeline` (sync -> apply -> build -> build runtime -> verify ->
#     check --against latest, one JUnit report) on a small local upstream made
#     here, with a two-patch series and a build section; that project has no
#     runtime/ of its own, so its runtime stages say "skipped";
#  2. the runtime half on this repository's real manifests, reusing build/
#     incrementally: `patchmgr build runtime --flavor cpu` and `patchmgr verify`.
#     The real upstreams need GitHub (or PATCHMGR_UPSTREAM_<NAME> mirrors): when
#     their checkouts are not in upstream/, the runtime is built with
#     --allow-mismatch (separate --version says so), and verify still checks
#     the runtime against the reference data of the manifests' patch set.
# Everything of step 1 lives in build/pipeline-demo (or $PIPELINE_DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
patchmgr=${PATCHMGR:-$top/build/patchmgr/patchmgr}
demo=${PIPELINE_DEMO_DIR:-$top/build/pipeline-demo}
build_dir=${BUILD_DIR:-build}
[ -x "$patchmgr" ] || { echo "pipeline-demo: $patchmgr is not built; run ./scripts/build.sh" >&2; exit 1; }

rm -rf "$demo"
mkdir -p "$demo"
export GIT_AUTHOR_NAME="Upstream Author" GIT_AUTHOR_EMAIL="author@example.org"
export GIT_COMMITTER_NAME="Upstream Author" GIT_COMMITTER_EMAIL="author@example.org"
export GIT_AUTHOR_DATE="2024-07-12T10:00:00+0200" GIT_COMMITTER_DATE="2024-07-12T10:00:00+0200"
git_q() { git -c init.defaultBranch=main -c advice.detachedHead=false "$@" >/dev/null; }

# The upstream: a Python package, pinned, then moved on (so "latest" is another commit).
work=$demo/upstream-work
git_q init "$work"
mkdir -p "$work/demo_sep"
printf 'import torch\n\n\ndef attention_config(major, minor):\n    if major == 8 and minor == 0:\n        return "flash"\n    return "math"\n' > "$work/demo_sep/attend.py"
printf '' > "$work/demo_sep/__init__.py"
git_q -C "$work" add -A
git_q -C "$work" commit -m "Attention with flash on the A100"
pin=$(git -C "$work" rev-parse HEAD)
printf '# Changes\n' > "$work/CHANGES.md"
git_q -C "$work" add -A
git_q -C "$work" commit -m "Start a changelog"
git_q clone -q --bare "$work" "$demo/upstream.git"

# The series, as a user writes it: commits on the pin, then git format-patch.
project=$demo/project
mkdir -p "$project/manifests" "$project/patches/demo"
git_q clone -q "$demo/upstream.git" "$demo/scratch"
git_q -C "$demo/scratch" checkout -q "$pin" 2>/dev/null
export GIT_AUTHOR_NAME="Kim" GIT_AUTHOR_EMAIL="kim@example.org" GIT_AUTHOR_DATE="2026-02-05T12:00:00+0100"
sed -i 's/    if major == 8 and minor == 0:/    if major >= 8:/' "$demo/scratch/demo_sep/attend.py"
git_q -C "$demo/scratch" commit -am "Flash attention on every SM 8.x+ GPU" -m "Upstream enables flash attention on the A100 only."
printf 'class StaticSegmentModel:\n    pass\n' > "$demo/scratch/demo_sep/static.py"
git_q -C "$demo/scratch" add -A
git_q -C "$demo/scratch" commit -m "Static-shape wrapper" -m "One segment length, so graphs see one input shape."
git_q -C "$demo/scratch" format-patch -2 -o "$project/patches/demo"
mv "$project"/patches/demo/0001-*.patch "$project/patches/demo/0001-sm80-flash.patch"
mv "$project"/patches/demo/0002-*.patch "$project/patches/demo/0002-static-shape.patch"
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$project/manifests/demo.yaml" <<YAML
schema: 1
name: demo
upstream:
  url: $demo/upstream.git
  commit: $pin
  track: main
build:
  - name: path-file
    when: test -n "\$STEMKIT_PYTHON"
    run: |
      site=\$("\$STEMKIT_PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
      printf '%s\n' "\$PWD" > "\$site/stemkit-demo.pth"
  - name: import-check
    when: test -n "\$STEMKIT_PYTHON"
    run: '"\$STEMKIT_PYTHON" -I -c "import importlib.util, os, sys; o = importlib.util.find_spec(\"demo_sep\").origin; sys.exit(0 if o.startswith(os.environ[\"PATCHMGR_CHECKOUT\"] + os.sep) else o)"'
  - name: files
    run: test -f demo_sep/static.py && grep -q 'major >= 8' demo_sep/attend.py
    timeout: 30s
patches:
  - id: sm80-flash
    file: 0001-sm80-flash.patch
    sha256: $(sha "$project/patches/demo/0001-sm80-flash.patch")
    title: Flash attention on SM 8.x+
    purpose: Use flash attention on every NVIDIA GPU from Ampere on, not only the A100.
    status: implemented
    since: 2026-02-05
    files: [demo_sep/attend.py]
  - id: static-shape
    file: 0002-static-shape.patch
    sha256: $(sha "$project/patches/demo/0002-static-shape.patch")
    title: Static-shape wrapper
    purpose: One segment length, so CUDA graphs and compilers see one input shape.
    status: implemented
    since: 2026-02-05
    files: [demo_sep/static.py]
YAML

# A Python environment for the install steps, when this machine has one.
if command -v python3 >/dev/null 2>&1 && python3 -m venv --without-pip "$demo/venv" >/dev/null 2>&1; then
  export STEMKIT_PYTHON=$demo/venv/bin/python
fi

printf '\n$ patchmgr pipeline --junit %s\n' "$demo/pipeline.xml"
(cd "$project" && "$patchmgr" pipeline --flavor cpu --junit "$demo/pipeline.xml")
grep -q '<testsuites name="patchmgr pipeline"' "$demo/pipeline.xml"

# 2. The runtime half on the real manifests, in build/ (incremental).
if [ -f "$build_dir/CMakeCache.txt" ] && grep -q '^STEMKIT_BUILD_RUNTIME:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  allow=()
  for m in manifests/*.yaml; do
    name=$(basename "$m" .yaml)
    state=$("$patchmgr" status "$name" 2>/dev/null || true)
    case "$state" in "$name: patched"*) ;; *) allow=(--allow-mismatch) ;; esac
  done
  printf '\n$ patchmgr build runtime --flavor cpu --build-dir %s %s\n' "$build_dir" "${allow[*]:-}"
  "$patchmgr" build runtime --flavor cpu --build-dir "$build_dir" "${allow[@]}"
  printf '\n$ patchmgr verify --build-dir %s\n' "$build_dir"
  "$patchmgr" verify --build-dir "$build_dir"
else
  echo "pipeline-demo: $build_dir has no runtime (configured without libtorch): build runtime and verify not run"
fi
