#!/usr/bin/env bash
# A worker frozen (SIGSTOP) while it holds a map attempt: it stops
# heartbeating, the master declares it dead after --dead-ms (long before
# the task timeout) and the job finishes without it. Thawed (SIGCONT), the
# worker's late messages are stale: the master has it join again, it drops
# the old attempt, the committed output does not change, and the worker
# still stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 60000
start_workers 2
# 4 maps of about 450 lines; the first attempt of text-001's map sleeps
# 100 ms a line (45 s alone); the others run at full speed.
gen "$T/in" 128K 4
mkdir "$T/slow"
open_notify
start=$(date +%s%3N)
timeout 60 "$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" \
    --input "$T/in" --output "$T/out" --split-size 32K -R 2 --no-speculation \
    --arg "slow_once=$T/slow" --arg slow_match=text-001 --arg slow_ms=100 \
    --arg "notify=$T/notify" --wait >"$T/submit.log" 2>&1 &
sub=$!

# The slow attempt wrote its pid in $T/slow before its notice.
slow= victim=
end=$((SECONDS + 30))
while [ -z "$slow" ] && [ $SECONDS -lt $end ]; do
    read -r -t 30 phase pid <&5 || fail "the slow map never started"
    [ "$phase" = map ] && grep -qsx "$pid" "$T"/slow/* && slow=$pid
done
[ -n "$slow" ] || fail "the slow map never started"
victim=$(ppid_of "$slow")
case " ${W[*]} " in *" $victim "*) ;; *) fail "the slow map $slow runs under $victim, not a worker" ;; esac
vid=$("$QUERN" workers --master "$MASTER" --json | jq -r --argjson p "$victim" '.[] | select(.pid == $p) | .id')
[ -n "$vid" ] || fail "the master does not list worker pid $victim"
kill -STOP "$victim"
# While it is frozen, a failure thaws it first, so cleanup can stop it.
die() {
    kill -CONT "$victim"
    fail "$@"
}

set +e
wait $sub
rc=$?
set -e
took=$(($(date +%s%3N) - start))
[ $rc = 0 ] || die "the job did not succeed (exit $rc): $(cat "$T/submit.log")"
[ $took -lt 20000 ] || die "the job took $took ms with a frozen worker (dead after 1.5 s)"
[ -e "$T/out/_SUCCESS" ] || die "no _SUCCESS"
cat "$T"/out/part-* | sort >"$T/got"
wordcount_ref "$T"/in/* >"$T/want"
cmp -s "$T/got" "$T/want" || die "output differs from the reference: $(diff "$T/want" "$T/got" | head -5)"
grep -q "worker $vid is dead" "$T/master.log" || die "the master never declared $vid dead"
snap() { (cd "$T/out" && ls -la --time-style=full-iso . && cat ./*) | md5sum; }
before=$(snap)

# Thaw it. It reports an attempt the master gave away: the master tells it
# to join again (or ignores the stale report), and it drops the attempt.
kill -CONT "$victim"
timeout 10 tail --pid="$slow" -f /dev/null ||
    fail "the thawed worker kept running the attempt the master gave away ($slow)"
told=
for _ in $(seq 50); do
    if [ "$(grep -c "worker $vid joined" "$T/master.log")" -ge 2 ] ||
        grep -Eiq "$vid.*(rejoin|stale|ignor|not current)|(rejoin|stale|ignor|not current).*$vid" "$T/master.log"; then
        told=1
        break
    fi
    sleep 0.1
done
[ -n "$told" ] || fail "the master log says nothing of the thawed worker $vid"
sleep 2 # time for anything late to (wrongly) land in the output
[ "$(snap)" = "$before" ] || fail "the output changed after the frozen worker came back"
kill -0 "$victim" || fail "the thawed worker died"
echo "ok: a frozen worker was dead after ~1.5 s (job in $took ms); thawed, it changed nothing"
