#!/usr/bin/env bash
# Run Quern's tests: the Criterion unit tests, then the end-to-end tests
# that start real daemons on loopback.
#
#   tests/run.sh [unit|e2e|all] [NAME...]    (BUILD selects the build tree;
#   E2E_EXCLUDE lists end-to-end tests not to run in this configuration)
set -u
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
what=${1:-all}
shift || true
failed=()
passed=0

run() { # name, timeout, command...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    if timeout --kill-after=10 "$limit" "$@"; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - start)) s)"
    else
        failed+=("$name")
        echo "FAIL $name ($((SECONDS - start)) s)"
    fi
}


if [ "$what" = unit ] || [ "$what" = all ]; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$n"; then continue; fi
        run "$n" 300 "$t" --jobs 2
    done
fi
if [ "$what" = e2e ] || [ "$what" = all ]; then
    for t in tests/e2e/*.sh; do
        n=$(basename "$t" .sh)
        [ "$n" = lib ] && continue
        case " ${E2E_EXCLUDE:-} " in *" $n "*) echo "not run here: e2e/$n"; continue ;; esac
        if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$n"; then continue; fi
        run "e2e/$n" 900 bash "$t"
    done
fi

echo "$passed passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
    printf '  failed: %s\n' "${failed[@]}"
    exit 1
fi
