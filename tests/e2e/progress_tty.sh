#!/usr/bin/env bash
# On a terminal (a pseudo-terminal made by script(1)), following a job
# draws a progress bar per phase that redraws in place (carriage returns,
# one line) and ends at 100%; off a terminal the same run prints plain
# lines and no escape codes.
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || fail "script(1) (util-linux) is needed"
gen "$T/in" 128K 4
# About 3 s of maps (1 ms a record) so the bar is drawn several times.
cmd="'$QUERN' run --job '$TJOBS/faulty.so' --arg sleep_ms=1 --input '$T/in' \
--output '$T/out' --split-size 16K -R 2 --workers 2"
TERM=xterm timeout 120 script -q -e -c "$cmd" "$T/typescript" </dev/null >/dev/null ||
    fail "quern run under script failed: $(tr '\r' '\n' <"$T/typescript" | tail -n 20)"
[ -e "$T/out/_SUCCESS" ] || fail "no _SUCCESS"

# Each redraw starts with a carriage return and erases the line.
draws=$(tr '\r' '\n' <"$T/typescript" | grep -c 'map \[' || true)
[ "$draws" -ge 3 ] || fail "the bar was drawn $draws times, not 3 or more"
lines=$(grep -c 'map \[' "$T/typescript" || true)
[ "$lines" = 1 ] || fail "the bar spans $lines lines: it did not redraw in place"
grep -q $'\r\033\[K' "$T/typescript" || fail "no carriage return and erase before a redraw"
last=$(tr '\r' '\n' <"$T/typescript" | grep 'map \[' | tail -n 1)
case "$last" in
*"map [####################] 100%  reduce [####################] 100%"*) ;;
*) fail "the last bar is not at 100%: $last" ;;
esac
grep -q 'ETA' <<<"$last" || fail "no ETA on the bar: $last"
# The counters follow the bar.
grep -q 'shuffle:' "$T/typescript" || fail "no counters at the end"

# Off a terminal: plain lines, no escape codes, the same result.
rm -rf "$T/out"
eval "$cmd" >"$T/plain.out" 2>"$T/plain.err" || fail "quern run failed: $(cat "$T/plain.err")"
grep -q $'\033' "$T/plain.err" "$T/plain.out" && fail "escape codes off a terminal"
grep -q $'\r' "$T/plain.err" && fail "carriage returns off a terminal"
grep -qE 'map [0-9]+% \([0-9]+/8 done\)' "$T/plain.err" || fail "no plain progress line: $(cat "$T/plain.err")"
echo "ok: the bar redraws in place ($draws draws) and ends at 100%"
