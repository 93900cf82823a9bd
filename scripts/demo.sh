#!/usr/bin/env bash
# patchmgr end to end on a demo: a small local "upstream" whose attention code
# looks like BS-RoFormer's, a two-patch series written with git format-patch,
# and the commands a user runs: lint, sync, apply, status, revert; then the day
# upstream moves: check --against latest (an offset stays green; a conflict
# names the upstream commit with --bisect), and a rebase that stops at the
# conflict, is resolved by hand and continues.
# Everything lives in build/demo (or $DEMO_DIR); no network is used.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
patchmgr=${PATCHMGR:-$top/build/patchmgr/patchmgr}
demo=${DEMO_DIR:-$top/build/demo}
[ -x "$patchmgr" ] || { echo "demo: $patchmgr is not built; run ./scripts/build.sh" >&2; exit 1; }

rm -rf "$demo"
mkdir -p "$demo"
export GIT_AUTHOR_NAME="Upstream Author" GIT_AUTHOR_EMAIL="author@example.org"
export GIT_COMMITTER_NAME="Upstream Author" GIT_COMMITTER_EMAIL="author@example.org"
export GIT_AUTHOR_DATE="2024-07-12T10:00:00+0200" GIT_COMMITTER_DATE="2024-07-12T10:00:00+0200"
git_q() { git -c init.defaultBranch=main -c advice.detachedHead=false "$@" >/dev/null; }

# 1. The upstream: a repository with an attention module.
up=$demo/upstream.git
git_q init "$demo/upstream-work"
mkdir -p "$demo/upstream-work/bs_roformer"
cat > "$demo/upstream-work/bs_roformer/attend.py" <<'PY'
import torch
import torch.nn.functional as F


class Attend:
    def __init__(self, flash=False):
        self.flash = flash
        device_properties = torch.cuda.get_device_properties(torch.device('cuda'))
        if device_properties.major == 8 and device_properties.minor == 0:
            self.cuda_config = (True, False, False)
        else:
            self.cuda_config = (False, True, True)

    def flash_attn(self, q, k, v):
        config = self.cuda_config if q.is_cuda else (True, True, True)
        with torch.backends.cuda.sdp_kernel(*config):
            return F.scaled_dot_product_attention(q, k, v)
PY
git_q -C "$demo/upstream-work" add -A
git_q -C "$demo/upstream-work" commit -m "Attention with flash on the A100"
git_q clone -q --bare "$demo/upstream-work" "$up"
pin=$(git -C "$up" rev-parse HEAD)

# 2. The patch series, written as a user would: commits, then git format-patch.
project=$demo/project
mkdir -p "$project/manifests" "$project/patches/demo"
git_q clone -q "$up" "$demo/scratch"
cd "$demo/scratch"
export GIT_AUTHOR_NAME="Kim" GIT_AUTHOR_EMAIL="kim@example.org" GIT_AUTHOR_DATE="2026-02-05T12:00:00+0100"
sed -i 's/        if device_properties.major == 8 and device_properties.minor == 0:/        if torch.version.hip or device_properties.major >= 8:/' bs_roformer/attend.py
git_q commit -am "Use flash attention on ROCm and on every SM 8.x+ GPU" -m "Upstream enables flash attention on the A100 only; AMD GPUs (ROCm) and newer NVIDIA GPUs support it too."
sed -i 's/        config = self.cuda_config if q.is_cuda else (True, True, True)/        config = self.cuda_config if q.is_cuda else (True, True, True)\n        if q.is_cuda and q.dtype not in (torch.float16, torch.bfloat16):\n            config = (False, True, True)/' bs_roformer/attend.py
git_q commit -am "Fall back to math attention for fp32 inputs" -m "Flash kernels reject fp32 (\"No available kernel\"); use math/mem-efficient there."
git_q format-patch -2 -o "$project/patches/demo"
cd "$top"
p1=$project/patches/demo/0001-Use-flash-attention-on-ROCm-and-on-every-SM-8.x-GPU.patch
p2=$project/patches/demo/0002-Fall-back-to-math-attention-for-fp32-inputs.patch
mv "$p1" "$project/patches/demo/0001-rocm-flash-attention.patch"
mv "$p2" "$project/patches/demo/0002-fp32-math-fallback.patch"
sha() { sha256sum "$1" | cut -d' ' -f1; }
cat > "$project/manifests/demo.yaml" <<YAML
schema: 1
name: demo
upstream:
  url: $up
  commit: $pin
  track: main
checkout: upstream/demo
patches:
  - id: rocm-flash-attention
    file: 0001-rocm-flash-attention.patch
    sha256: $(sha "$project/patches/demo/0001-rocm-flash-attention.patch")
    title: Flash attention on ROCm and SM 8.x+
    purpose: Use flash attention on AMD GPUs and every NVIDIA GPU from Ampere on, not only the A100.
    status: implemented
    since: 2026-02-05
    files: [bs_roformer/attend.py]
  - id: fp32-math-fallback
    file: 0002-fp32-math-fallback.patch
    sha256: $(sha "$project/patches/demo/0002-fp32-math-fallback.patch")
    title: Math attention for fp32
    purpose: Flash kernels reject fp32 inputs; fall back to math/mem-efficient there.
    status: implemented
    since: 2026-02-05
    files: [bs_roformer/attend.py]
  - id: attention-policy
    kind: runtime
    title: Attention backend policy in the C++ runtime
    purpose: The runtime picks the attention backend per GPU at load time.
    status: implemented
    since: 2026-02-05
    files: [bs_roformer/attend.py]
YAML

step() { printf '\n$ patchmgr %s\n' "$*"; set +e; (cd "$project" && "$patchmgr" "$@" 2>&1); rc=$?; set -e; [ $rc -eq 0 ] || echo "(exit code $rc)"; }
echo "demo project: $project (upstream: $up)"
step lint
step sync
step status
step apply
step status
step apply
echo "# a local edit in the checkout ..."
echo "# my tweak" >> "$project/upstream/demo/bs_roformer/attend.py"
step status
step revert
step revert --discard
step status

# 3. Upstream moves. A new import at the top shifts every line below it: the
# patches still apply, a few lines away (class offset), and check stays green.
upstream_commit() {  # message, then a sed script for attend.py
  git_q clone -q "$up" "$demo/up-edit"
  sed -i "$2" "$demo/up-edit/bs_roformer/attend.py"
  GIT_AUTHOR_NAME="Upstream Author" GIT_AUTHOR_EMAIL="author@example.org" GIT_AUTHOR_DATE="$3" \
    git_q -C "$demo/up-edit" commit -am "$1"
  git_q -C "$demo/up-edit" push -q origin HEAD:main
  rm -rf "$demo/up-edit"
}
echo
echo "# upstream adds an import at the top of attend.py ..."
upstream_commit "Import math" '1i import math' "2026-03-01T09:00:00+0100"
step check --against latest

# 4. Upstream rewrites the line patch 1 changes: check names the commit, and
# rebase stops with conflict markers for a person to resolve, then continues.
echo
echo "# upstream rewrites the capability test that patch 1 changes ..."
upstream_commit "Flash on the A100 and the H100" \
  's/        if device_properties.major == 8 and device_properties.minor == 0:/        if (device_properties.major, device_properties.minor) in ((8, 0), (9, 0)):/' \
  "2026-03-02T09:00:00+0100"
step check --against latest --bisect
step rebase --onto latest
echo "# resolving the conflict by hand: ROCm, and every GPU from SM 8.0 on ..."
co=$project/upstream/demo
python3 - "$co/bs_roformer/attend.py" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = re.sub(r"<<<<<<<[^\n]*\n.*?>>>>>>>[^\n]*\n",
              "        if torch.version.hip or device_properties.major >= 8:\n", text, flags=re.S)
open(path, "w").write(text)
PY
git_q -C "$co" add bs_roformer/attend.py
step rebase --continue
step lint
step check
step status
