#!/usr/bin/env bash
# Configures (once) and builds the project into build/ (or $BUILD_DIR), incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
# ccache keys on absolute paths unless told the tree's root, and on the build
# folder when compiling with -g unless told not to: with both, a clone in another
# folder (CI's, a worktree) reuses what this one compiled (its debug info then
# names the first clone's folder).
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
elif [ $# -gt 0 ]; then
  cmake "$build_dir" "$@"
fi
cmake --build "$build_dir" --parallel "$jobs"
