#!/usr/bin/env bash
# Formats the tree's C++ with .clang-format (clang-format 14, Debian's package
# clang-format). `tools/format.sh --check` changes nothing and fails, naming the
# files, when one is not formatted (CI runs that). Fixtures and patches are
# upstream's text and are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- '*.cpp' '*.h' '*.cu' '*.cuh' '*.cc' '*.hpp' | grep -v -E '^(tests/fixtures|patches)/')
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted: %s\n' "${bad[@]}" >&2
    echo "run tools/format.sh to format them" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files formatted"
else
  clang-format -i "${files[@]}"
fi
