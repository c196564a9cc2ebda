#!/usr/bin/env bash
# Valgrind memcheck of the unit tests and of caching jobs (workers traced too) on small generated
# data: chunk buffers are not zeroed when allocated (src/core/bytes.hpp), so a byte that is used or
# written to a store before being set is a bug ASan cannot see and memcheck reports. Any report
# fails the run. About 3 minutes. Needs a build in build/ (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/build/bin
work=$(mktemp -d /tmp/zp-memcheck.XXXXXX)  # ours: removed at exit
trap 'rm -rf "$work"' EXIT
mkdir "$work/vg"
# Every process's reports go to a file of its own (workers write their stderr into the store's
# logs, and a worker's exit code does not reach this script): any report ("==pid== ...") fails the
# run. Valgrind 3.19's own notes ("--pid-- WARNING: unhandled syscall 434", pidfd_open, which the
# local executor then does without) are not reports.
VG=(valgrind -q --trace-children=yes --track-origins=yes --log-file="$work/vg/%p.log")
reports() {
  local bad
  bad=$(grep -l '^==[0-9]*==' "$work"/vg/*.log 2> /dev/null | head -3 || true)
  if [ -n "$bad" ]; then
    for f in $bad; do head -40 "$f"; done
    echo "memcheck: reports above ($1)"
    exit 1
  fi
}

echo "memcheck: unit tests"
"${VG[@]}" "$BIN/zp_unit_tests" --gtest_brief=1 > "$work/unit.log" 2>&1 || {
  tail -50 "$work/unit.log"
  exit 1
}
reports "unit tests"

"$BIN/zp-make-sample" --out "$work/src" --files 3 --steps 6 --lat 37 --lon 72 --chunks 4 10 25 > /dev/null
"$BIN/zp-make-sample" --out "$work/src3" --files 2 --steps 6 --lat 37 --lon 72 --classic > /dev/null
base='"recommend_changes": false, "log_level": 0, "generate_stats": true'
run() {  # name, config body
  echo "memcheck: $1"
  printf '{%s, "cache_store": "%s/%s.zarr", %s}\n' "$base" "$work" "$1" "$2" > "$work/$1.yaml"
  "${VG[@]}" "$BIN/zarr-parallel" cache "$work/$1.yaml" > "$work/$1.log" 2>&1 || {
    tail -50 "$work/$1.log"
    find "$work/$1.zarr/.zarr-parallel" -name '*.log' -exec tail -30 {} + 2> /dev/null || true
    exit 1
  }
  reports "$1"
}
# Local workers; edge chunks; a selection off the chunk grid, reversed; decoded values.
run local "\"data_uri\": \"$work/src/*.nc\", \"deploy_mode\": \"local\", \"simultaneous_worker_limit\": 2,
  \"chunks\": {\"time\": 7, \"latitude\": 11, \"longitude\": 30}, \"encoding\": \"decoded\",
  \"preprocessors\": [{\"type\": \"reverse_axis\", \"dim\": \"latitude\"},
                      {\"type\": \"sel\", \"latitude\": [-60, 45], \"longitude\": [30, 300]}]"
# Tiles padded past the array; a roll across the seam.
run tiled "\"data_uri\": \"$work/src/*.nc\", \"deploy_mode\": \"series\", \"encoding\": \"source\",
  \"preprocessors\": [{\"type\": \"roll\", \"dim\": \"longitude\", \"shifts\": \"auto\"},
                      {\"type\": \"reverse_axis\", \"dim\": \"latitude\"},
                      {\"type\": \"tiled\", \"time\": 4, \"latitude\": 16, \"longitude\": 16}]"
# Zarr v3 shards with edge shards; netCDF-3 records.
run shards "\"data_uri\": \"$work/src/*.nc\", \"deploy_mode\": \"series\", \"zarr_format\": 3,
  \"chunks\": {\"time\": 6, \"latitude\": 10, \"longitude\": 20}, \"shards\": {\"time\": 12, \"latitude\": 20, \"longitude\": 40}"
run classic "\"data_uri\": \"$work/src3/*.nc\", \"deploy_mode\": \"series\", \"chunks\": {\"time\": 5}"
echo "memcheck: no reports"
