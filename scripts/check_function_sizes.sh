#!/usr/bin/env bash
# Function sizes (issue 29): no function in src/ or python/ over MAX_LINES lines (default 60), as
# pmccabe counts them (its 5th column: lines from the function's first line to its closing brace).
# Prints the 10 longest functions with file:line, then each one over the limit; exits 1 when there
# is one, 2 when pmccabe is missing (scripts/setup.sh --tests installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_LINES=${MAX_LINES:-60}

if ! command -v pmccabe > /dev/null; then
  echo "check_function_sizes: pmccabe is not installed (scripts/setup.sh --tests installs it)" >&2
  exit 2
fi

files=()
while IFS= read -r -d '' f; do files+=("$f"); done < <(
  find src python -type f \( -name '*.cpp' -o -name '*.cc' -o -name '*.hpp' -o -name '*.h' \) \
    -print0 | sort -z)

# pmccabe warns on stderr where its C-like parser loses count of braces (raw strings, lambdas in
# class bodies); it still reports the functions, so the warnings are counted, not shown.
notes=$(mktemp)
trap 'rm -f "$notes"' EXIT
# lines <TAB> file:line <TAB> function, longest first.
table=$(pmccabe "${files[@]}" 2> "$notes" | awk -F'\t' '{
  loc = $6; name = $6
  sub(/\): .*$/, "", loc); sub(/\(/, ":", loc)   # "src/a.cpp(12): zp::f" -> "src/a.cpp:12"
  sub(/^[^)]*\): /, "", name)
  printf "%d\t%s\t%s\n", $5, loc, name
}' | sort -t$'\t' -k1,1nr -k2,2)

echo "check_function_sizes: the 10 longest functions in src/ and python/ (limit $MAX_LINES lines)"
# Here-strings, not echo | head: head closing the pipe early would fail the script (pipefail).
head -n 10 <<< "$table" | awk -F'\t' '{ printf "  %5d  %s  %s\n", $1, $2, $3 }'
if [ -s "$notes" ]; then
  echo "  (pmccabe parse notes: $(wc -l < "$notes"); run pmccabe on a file to see them)"
fi

over=$(awk -F'\t' -v max="$MAX_LINES" '$1 > max' <<< "$table")
if [ -n "$over" ]; then
  echo "check_function_sizes: $(wc -l <<< "$over") function(s) over $MAX_LINES lines:" >&2
  awk -F'\t' '{ printf "  %s: %s is %d lines\n", $2, $3, $1 }' <<< "$over" >&2
  exit 1
fi
echo "check_function_sizes: no function over $MAX_LINES lines"
