#!/usr/bin/env bash
# Formats every tracked C++ file with the repository's .clang-format (in place).
#   scripts/format.sh            format the tree
#   scripts/format.sh --check    change nothing; list the files that need formatting, exit 1 if any
# Only files git tracks are touched, so build folders and other ignored paths are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" >/dev/null || { echo "format.sh: $CLANG_FORMAT not found (apt install clang-format)" >&2; exit 2; }

mapfile -d '' files < <(git ls-files -z -- '*.cpp' '*.h' '*.hpp' '*.cc')
[ ${#files[@]} -gt 0 ] || exit 0

if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! "$CLANG_FORMAT" --style=file "$f" | cmp -s - "$f"; then
      echo "$f"
      bad=1
    fi
  done
  exit $bad
fi
printf '%s\0' "${files[@]}" | xargs -0 -n 50 "$CLANG_FORMAT" --style=file -i
