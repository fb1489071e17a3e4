#!/usr/bin/env bash
# Run every fault test (tests/e2e/fault_*.sh) N times in a row, to catch the
# failures that only show now and then; print each run's time and a summary.
#
#   tests/faults.sh [N] [NAME...]    (N defaults to 10; NAME is fault_stop
#                                    or stop; BUILD selects the build
#                                    tree, as for tests/run.sh)
#
# Exits 1 if any run failed; the output of each failed run is kept in
# $FAULT_LOGS (default: a new folder under /tmp) and named in the summary.
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
n=${1:-10}
shift || true
case $n in '' | *[!0-9]*) echo "usage: tests/faults.sh [N] [NAME...]" >&2; exit 2 ;; esac
logs=${FAULT_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/quern-faults-XXXXXX")}
mkdir -p "$logs"

names=()
for t in tests/e2e/fault_*.sh; do
    name=$(basename "$t" .sh)
    if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qxF -e "$name" -e "${name#fault_}"; then
        continue
    fi
    names+=("$name")
done
[ ${#names[@]} -gt 0 ] || { echo "no fault tests to run" >&2; exit 2; }

total=0 bad=0
summary=()
for name in "${names[@]}"; do
    pass=0 fails=0 min= max=0 sum=0
    for i in $(seq "$n"); do
        log=$logs/$name.$i.log
        t0=$(date +%s%3N)
        if timeout --kill-after=10 300 bash "tests/e2e/$name.sh" >"$log" 2>&1; then
            st=PASS
            pass=$((pass + 1))
            rm -f "$log"
        else
            st=FAIL
            fails=$((fails + 1))
        fi
        ms=$(($(date +%s%3N) - t0))
        sum=$((sum + ms))
        [ -z "$min" ] || [ $ms -lt "$min" ] && min=$ms
        [ $ms -gt $max ] && max=$ms
        printf '%s %s run %d/%d (%d.%03d s)%s\n' "$st" "$name" "$i" "$n" \
            $((ms / 1000)) $((ms % 1000)) "$([ $st = PASS ] || echo ": $log")"
        if [ $st = FAIL ]; then
            grep -m 3 -E '^FAIL' "$log" | sed 's/^/    /' || true
        fi
    done
    total=$((total + n))
    bad=$((bad + fails))
    summary+=("$(printf '%-28s %2d/%d passed  time min %d.%01d s, mean %d.%01d s, max %d.%01d s' \
        "$name" "$pass" "$n" $((min / 1000)) $((min % 1000 / 100)) \
        $((sum / n / 1000)) $((sum / n % 1000 / 100)) $((max / 1000)) $((max % 1000 / 100)))")
done

echo
echo "summary ($n runs each, BUILD=$BUILD):"
printf '  %s\n' "${summary[@]}"
echo "$((total - bad)) of $total runs passed"
if [ $bad -gt 0 ]; then
    echo "logs of failed runs: $logs"
    exit 1
fi
rmdir "$logs" 2>/dev/null || true
