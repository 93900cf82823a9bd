#!/usr/bin/env bash
# Tries the .deb, and `cmake --install`, on a clean Debian 12: a minimal
# bookworm root made with debootstrap (once, then kept as the pristine base),
# copied afresh for each try; the package installed inside it with
# `apt-get install ./stemkit.deb` in a chroot, so that its Depends resolve from
# Debian's archive; then the installed programs run there. With a build
# directory, after the package is removed again, `cmake --install` of that
# build goes into the same root's /usr/local (DESTDIR) and its programs, man
# pages and completions are checked the same way. Exit 0 when every check passed.
#
#   tools/try-deb.sh build/stemkit_0.1.0_amd64.deb [build]
#
# Needs root (debootstrap, chroot, mounts) and Debian's mirror
# ($DEBIAN_MIRROR, default http://deb.debian.org/debian). The base root is
# $TRY_DEB_BASE, default /var/tmp/stemkit-try-deb/bookworm. docs/install.md
# records a run.
set -euo pipefail

deb=$(realpath "${1:?usage: tools/try-deb.sh PACKAGE.deb [BUILD_DIR]}")
build=${2:+$(realpath "$2")}
base=${TRY_DEB_BASE:-/var/tmp/stemkit-try-deb/bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "try-deb: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "try-deb: apt-get install debootstrap" >&2; exit 1; }

if [ ! -x "$base/usr/bin/apt-get" ]; then
  echo "try-deb: debootstrap --variant=minbase bookworm $base"
  rm -rf "$base.tmp"
  mkdir -p "$(dirname "$base")"
  debootstrap --variant=minbase bookworm "$base.tmp" "$mirror" > "$base.log" 2>&1 ||
    { tail -20 "$base.log"; exit 1; }
  mv "$base.tmp" "$base"
fi

root=$(mktemp -d /var/tmp/stemkit-try-deb.XXXXXX)
cleanup() {
  umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
  # Never remove a root that still has something mounted in it.
  if grep -q " $root/" /proc/mounts; then
    echo "try-deb: $root still has mounts; left in place" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
cp -a "$base/." "$root/"
# debootstrap made the device nodes (/dev/null, ...); only /proc is mounted.
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

echo "== apt-get install ./$(basename "$deb") man-db (in a fresh bookworm root)"
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/tmp/$(basename "$deb")" man-db > "$root/apt.log" 2>&1 ||
  { tail -30 "$root/apt.log"; exit 1; }
echo "Depends: $(in_root dpkg-query -W -f='${Depends}' stemkit)"

status=0
check() {  # check DESCRIPTION COMMAND...: runs it in the root, shows its first lines
  echo "== $1"
  shift
  if out=$(in_root "$@" 2>&1); then
    printf '%s\n' "$out" | head -4
  else
    printf '%s\n' "$out" | tail -10
    echo "FAILED: $*"
    status=1
  fi
}
programs() {  # programs BINDIR: every check of the installed programs
  local bin=$1
  check "separate --help" "$bin/separate" --help
  check "patchmgr --help" "$bin/patchmgr" --help
  check "stemkit-weights --help" "$bin/stemkit-weights" --help
  check "man -w separate" man -w separate
  check "man -w patchmgr stemkit-weights" man -w patchmgr stemkit-weights
  check "man page text" sh -c 'MANWIDTH=80 man separate 2>/dev/null | head -12'
  check "stemkit-weights state_dict.pt" sh -c "$bin/stemkit-weights /tmp/try/state_dict.pt | tail -1"
  rm -rf "$root/tmp/try/out"
  check "separate -n small.th tone.wav" "$bin/separate" -n /tmp/try/small.th -d cpu -o /tmp/try/out /tmp/try/tone.wav
  check "the four stems" ls /tmp/try/out/small/tone
  check "libraries resolve" sh -c "! ldd $bin/separate $bin/patchmgr $bin/stemkit-weights | grep 'not found'"
  echo "== RUNPATH of the installed programs (none: every library is in the system's directories)"
  for p in separate patchmgr stemkit-weights; do
    echo "$p: $(LANG=C readelf -d "$root$bin/$p" | grep -i -E 'rpath|runpath' || echo none)"
  done
}

# The programs at work, not only their help: a checkpoint read, and a 3 s
# stereo tone separated with the small HTDemucs fixture on the CPU.
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/tmp/try"
cp "$repo/tests/fixtures/weights/state_dict.pt" "$repo/tests/fixtures/htdemucs/small.th" "$root/tmp/try/"
python3 - "$root/tmp/try/tone.wav" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1], "wb")
w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100)
w.writeframes(b"".join(struct.pack("<hh", int(8000 * math.sin(i * 0.05)), int(8000 * math.sin(i * 0.07)))
                       for i in range(3 * 44100)))
w.close()
PY

programs /usr/bin
check "bash completion files" ls /usr/share/bash-completion/completions/separate \
  /usr/share/bash-completion/completions/patchmgr /usr/share/bash-completion/completions/stemkit-weights
check "zsh completion files" ls /usr/share/zsh/vendor-completions/_separate \
  /usr/share/zsh/vendor-completions/_patchmgr /usr/share/zsh/vendor-completions/_stemkit-weights
echo "== apt-get remove stemkit"
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq stemkit > /dev/null 2>&1 && echo "removed" ||
  { echo "FAILED: apt-get remove"; status=1; }
if [ -n "$build" ]; then
  echo "== DESTDIR=<root> cmake --install $build (prefix /usr/local), the package's dependencies still there"
  DESTDIR="$root" cmake --install "$build" --prefix /usr/local | sed "s|$root||"
  programs /usr/local/bin
  check "completion files" ls /usr/local/share/bash-completion/completions/separate \
    /usr/local/share/zsh/site-functions/_separate
fi
[ $status -eq 0 ] && echo "try-deb: every check passed" || echo "try-deb: some checks failed"
exit $status
