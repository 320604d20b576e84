#!/usr/bin/env bash
# Checks that every C++ file git tracks is formatted as .clang-format says; lists those that are
# not and exits 1. Changes nothing. To fix: tools/format_check.sh --fix (rewrites them in place).
#   CLANG_FORMAT=...   the clang-format binary (default: clang-format)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
clang_format="${CLANG_FORMAT:-clang-format}"
if ! command -v "$clang_format" >/dev/null; then
  echo "format_check: $clang_format not found (apt-get install clang-format)" >&2
  exit 2
fi

mapfile -t files < <(git ls-files -- '*.h' '*.cc' '*.cpp' '*.hpp')
if [ "${1:-}" = "--fix" ]; then
  "$clang_format" -i --style=file "${files[@]}"
  exit 0
fi

differ=()
for f in "${files[@]}"; do
  if ! "$clang_format" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
    differ+=("$f")
  fi
done
if [ "${#differ[@]}" -gt 0 ]; then
  echo "format_check: ${#differ[@]} of ${#files[@]} files differ from .clang-format" \
    "($("$clang_format" --version | sed 's/.*version //')):" >&2
  printf '  %s\n' "${differ[@]}" >&2
  echo "fix with: tools/format_check.sh --fix" >&2
  exit 1
fi
echo "format_check: ${#files[@]} files match .clang-format"
