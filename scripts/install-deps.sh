#!/usr/bin/env bash
# Installs what the build needs from Debian 12 / Ubuntu 24.04 packages, and
# nothing when everything is there already (safe to run again and again).
set -euo pipefail

packages=(
  build-essential cmake pkg-config ccache git
  libgit2-dev libssl-dev libyaml-cpp-dev libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev
  libtorch-dev libsndfile1-dev libsoxr-dev libcurl4-openssl-dev
  # separate reads and writes MP3, M4A, Opus, Ogg and video files' sound through FFmpeg's libraries.
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  # Debian's libtorch calls the system BLAS; without OpenBLAS that is the
  # reference BLAS, and HTDemucs' transformer ran 14x slower on the CPU.
  libopenblas0-pthread
  # cmake --install makes the man pages from each program's --help (cmake/install.cmake).
  help2man
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  apt_get=(apt-get)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  apt_get=(sudo apt-get)
else
  echo "install-deps: these packages are missing: ${missing[*]}" >&2
  echo "install-deps: installing them needs root; run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${apt_get[@]}" update -qq
"${apt_get[@]}" install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
