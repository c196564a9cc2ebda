#!/usr/bin/env bash
# Longer fuzzing runs than CI's: each libFuzzer harness for SECONDS (default 120), from the
# malformed-input corpus and the seeds. Needs the sanitizer build with fuzzers:
#   CC=clang CXX=clang++ ZP_SANITIZE=1 ZP_FUZZ=1 BUILD_DIR=build-asan bash scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
dir=${BUILD_DIR:-build-asan}
for target in config kerchunk time decoders netcdf3 template plan grib; do
  case $target in
    config) seeds=tests/corpus/configs ;;
    kerchunk) seeds=tests/corpus/kerchunk ;;
    grib) seeds="fuzz/seeds/grib tests/corpus/grib_aborts" ;;
    *) seeds=fuzz/seeds/$target ;;
  esac
  work="$dir/fuzz/long_corpus_$target"
  mkdir -p "$work"
  echo "--- fuzz_$target for ${seconds}s"
  extra=""
  [ "$target" = grib ] && extra=-detect_leaks=0  # ecCodes' leaks after an assertion (fuzz/CMakeLists.txt)
  # shellcheck disable=SC2086  # $seeds and $extra are lists
  "$dir/bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    $extra "$work" $seeds 2>&1 | grep -E "stat::number_of_executed_units|stat::new_units_added|ERROR|SUMMARY|Done" || true
done
