#!/usr/bin/env bash
# The status page in a real browser: while a slow job runs on a local
# cluster and one of its workers has been killed, headless Chromium loads
# the page (which fills itself from the JSON API) and its DOM must show the
# job, its progress bars, the dead worker, a worker being drained and the
# task that ran again. A screenshot is saved under the build folder for a
# person to look at.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || fail "chromium is needed (make test installs Debian's chromium)"
SHOTS=$(cd "$BUILD" && pwd)/screenshots
mkdir -p "$SHOTS"

start_master --heartbeat-ms 200 --dead-ms 1000
start_workers 3
open_notify
gen "$T/in" 256K 8
# 16 maps of about 230 records at 10 ms each on 3 slots: long enough for
# a worker to die and the page to be read while the job runs.
id=$("$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" --input "$T/in" \
    --output "$T/out" --split-size 16K -R 2 --arg sleep_ms=10 --arg "notify=$T/notify")
kill_worker_running map
dead=$(curl -sS --max-time 5 "${HTTP}api/v1/workers" | jq -r --argjson p "$VICTIM" '.[] | select(.pid == $p) | .id')
[ -n "$dead" ] || fail "the killed worker (pid $VICTIM) is not in /api/v1/workers"

# Until the master has declared it dead and a task has run again (10 s).
end=$((SECONDS + 10))
until curl -sS --max-time 5 "${HTTP}api/v1/jobs/$id/tasks" >"$T/tasks.json" &&
    jq -e 'any(.[]; .attempts >= 2)' "$T/tasks.json" >/dev/null &&
    curl -sS --max-time 5 "${HTTP}api/v1/workers" |
    jq -e --arg w "$dead" 'any(.[]; .id == $w and .alive == false)' >/dev/null; do
    [ $SECONDS -lt $end ] || fail "no worker declared dead and task run again: $(cat "$T/tasks.json")"
    sleep 0.2
done
rerun=$(jq -r '[.[] | select(.attempts >= 2)][0].task' "$T/tasks.json")
# One of the live workers is being drained (its attempts run on).
draining=$(curl -sS --max-time 5 "${HTTP}api/v1/workers" | jq -r --arg w "$dead" '[.[] | select(.alive and .id != $w)][0].id')
"$QUERN" drain "$draining" --master "$MASTER" >"$T/drain.out" || fail "quern drain failed"

browse() { # ARGS...: headless Chromium on the page, a fresh profile each time
    local profile
    profile=$(mktemp -d "$T/chromium-XXXXXX")
    timeout 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --disable-background-networking --disable-component-update --no-first-run \
        --disable-sync --disable-quic --user-data-dir="$profile" \
        --virtual-time-budget=8000 --window-size=1366,1100 "$@" "$HTTP" 2>>"$T/chromium.log"
}
browse --dump-dom >"$T/dom.html" || fail "chromium failed: $(tail -n 20 "$T/chromium.log")"

has() { grep -qE -- "$1" "$T/dom.html" || fail "the page does not show $2"; }
has 'data-loaded="1"' "that it loaded (the API answered)"
has "<section class=\"job\" id=\"job-$id\" data-state=\"(running|succeeded)\"" "the job $id"
has "class=\"bar\"[^>]*data-phase=\"map\"[^>]*data-progress=\"0\\.[0-9]+|class=\"bar\"[^>]*data-phase=\"map\"[^>]*data-progress=\"1\\.00\"" "the map progress bar"
has "class=\"bar\"[^>]*data-phase=\"reduce\"" "the reduce progress bar"
has "map [0-9]+%" "the map percentage"
has "<tr class=\"worker\" id=\"worker-$dead\" data-alive=\"false\"" "the dead worker $dead"
grep -A3 -E "id=\"worker-$dead\"" "$T/dom.html" | grep -q '>dead<' || fail "the dead worker is not marked dead"
live=$(grep -oE '<tr class="worker" id="worker-[^"]*" data-alive="true"' "$T/dom.html" | wc -l)
[ "$live" = 2 ] || fail "the page shows $live live workers, not 2"
grep -A3 -E "id=\"worker-$draining\"" "$T/dom.html" | grep -Eq 'title="waits for [^"]+">draining<' ||
    fail "the draining worker $draining is not marked draining: $(grep -A3 -E "id=\"worker-$draining\"" "$T/dom.html")"
# Each worker's sandbox: this test's run tasks unconfined, which shows.
grep -A4 -E "id=\"worker-$draining\"" "$T/dom.html" | grep -Eq '<td title="layers: none" class="hot">off · root<' ||
    fail "the worker's sandbox is not shown as off: $(grep -A4 -E "id=\"worker-$draining\"" "$T/dom.html")"
has "<tr class=\"task\" data-task=\"$rerun\" data-state=\"[a-z]+\" data-attempts=\"[2-9]\"" "task $rerun run again"
has 'id="t-datasets-s"[^>]*>0 shards short of copies · 0 copying' "the datasets' health"
has '<li class="event" data-kind="worker_lost"' "the worker_lost event"
has '<li class="event" data-kind="task_rerun"' "the task_rerun event"
has '<li class="event" data-kind="worker_draining"' "the worker_draining event"
if grep -qE 'src="https?:|href="https?:' "$T/dom.html"; then fail "the page refers to another site"; fi

browse --screenshot="$SHOTS/status-page.png" >/dev/null || fail "no screenshot: $(tail -n 20 "$T/chromium.log")"
[ -s "$SHOTS/status-page.png" ] || fail "empty screenshot"
# And on a phone's screen (the later --window-size wins).
browse --window-size=390,1600 --screenshot="$SHOTS/status-page-phone.png" >/dev/null ||
    fail "no phone screenshot: $(tail -n 20 "$T/chromium.log")"
[ -s "$SHOTS/status-page-phone.png" ] || fail "empty phone screenshot"
echo "ok: the page shows job $id, its progress, dead worker $dead and $rerun run again; screenshots in $SHOTS"
