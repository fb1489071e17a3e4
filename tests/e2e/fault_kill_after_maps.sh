#!/usr/bin/env bash
# A worker killed (SIGKILL) just after the map phase, when reduces have
# started but most are pending: the maps it completed hold output the
# pending reduces still need, so they run again elsewhere (counter
# maps_rerun, and each map's input is still counted once), and the output
# is the same as a sequential word count.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 100 --dead-ms 1500 --task-timeout-ms 5000
start_workers 3 --slots 1
# 6 maps of about 230 lines (1 ms a line); about 13,000 words over 6
# reduces at 1 ms a value: 2 s a reduce, so 3 of them wait for a slot.
gen "$T/in" 96K 3
open_notify
submit_faulty \
    --input "$T/in" --output "$T/out" --split-size 16K -R 6 \
    --arg sleep_ms=1 --arg reduce_sleep_ms=1 --arg "notify=$T/notify"

# Note which workers ran maps; at the first reduce (every map is done by
# then: a reduce reads all their outputs first) kill one of them.
mappers=" " victim=
end=$((SECONDS + 30))
while [ -z "$victim" ] && [ $SECONDS -lt $end ]; do
    read -r -t 30 phase pid <&5 || fail "no reduce attempt started"
    pp=$(ppid_of "$pid")
    case " ${W[*]} " in *" $pp "*) ;; *) continue ;; esac
    if [ "$phase" = map ]; then
        mappers+="$pp "
    elif [[ $mappers == *" $pp "* ]]; then
        victim=$pp # it runs a reduce and holds map output
    else
        for w in $mappers; do victim=$w; done
    fi
done
[ -n "$victim" ] || fail "found no worker to kill after the maps (ran maps:$mappers)"
kill -9 "$victim"
forget_pid "$victim"

job_succeeds
id=$ID
check_wordcount "$T/out" 6 "$T"/in/*

"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
rerun=$(jq -e '.counters.maps_rerun' "$T/status.json") ||
    fail "no maps_rerun counter: $(jq -c .counters "$T/status.json")"
[ "$rerun" -ge 1 ] || fail "maps_rerun is $rerun after killing a worker that held map output"
# A map that ran again counts its input once, like any other.
bytes=$(cat "$T"/in/* | wc -c)
lines=$(cat "$T"/in/* | wc -l)
[ "$(jq .counters.map_input_bytes "$T/status.json")" = "$bytes" ] &&
    [ "$(jq .counters.map_input_records "$T/status.json")" = "$lines" ] ||
    fail "map input counted $(jq .counters.map_input_records "$T/status.json") records," \
        "$(jq .counters.map_input_bytes "$T/status.json") bytes for $lines lines, $bytes bytes:" \
        "maps that ran again were counted twice"
echo "ok: a worker killed after the maps ($victim): $rerun maps ran again, output right"
