#!/usr/bin/env bash
# Run every libFuzzer target in $BUILD/fuzz for $FUZZ_SECONDS each (make
# fuzz, and a few seconds of each in make test), starting from the seed
# corpus tests/fuzz/corpus/NAME and what earlier runs found in
# $BUILD/fuzz/corpus/NAME. An input that crashes, hangs or leaks is kept in
# $BUILD/fuzz/findings/ and makes this exit 1.
set -euo pipefail
BUILD=${BUILD:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-600}
here=$(cd "$(dirname "$0")" && pwd)
rc=0
for t in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$t" ] || continue
    name=${t##*/fuzz_}
    corpus=$BUILD/fuzz/corpus/$name
    findings=$BUILD/fuzz/findings
    mkdir -p "$corpus" "$findings"
    log=$BUILD/fuzz/$name.log
    echo "fuzz: $name for $SECONDS_EACH s"
    if "$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/$name-" \
        "$corpus" "$here/corpus/$name" >"$log" 2>&1; then
        runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz: $name: ${runs:-?} inputs, $cov, no findings"
    else
        echo "FAIL fuzz: $name found a problem (input in $findings):"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -n 10
        rc=1
    fi
done
exit $rc
