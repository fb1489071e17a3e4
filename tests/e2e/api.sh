#!/usr/bin/env bash
# The JSON API's contract, read while a job runs: every documented field
# of /api/v1/{cluster,workers,jobs,jobs/ID,jobs/ID/tasks,events} is there
# with its type; /metrics is Prometheus text; the client's --json says the
# same as the API; what is not served is refused with the right status.
. "$(dirname "$0")/lib.sh"
# The test's hooks in faulty.so (notice fifos, claim folders) reach
# outside a task's sandbox: its workers run tasks unconfined.
export QUERN_SANDBOX=off

start_master --heartbeat-ms 200 --dead-ms 2000
start_workers 2 --slots 2
gen "$T/in" 256K 4
# Slow enough (2 ms a record) to be read while it runs; map task 1's first
# attempt fails, so there is a failure, an event and a re-run to see.
mkdir "$T/once"
id=$("$QUERN" submit --master "$MASTER" --job "$TJOBS/faulty.so" --input "$T/in" \
    --output "$T/out" --split-size 32K -R 2 --arg sleep_ms=2 --arg fail=error \
    --arg fail_once="$T/once" --arg fail_match=text-001)

get() { curl -sS --max-time 5 -o "$T/body" -w '%{http_code} %{content_type}' "$HTTP$1"; }

# check FILE JQ-FILTER WHAT: the filter must yield true on the file.
check() {
    jq -e "$2" "$1" >/dev/null || fail "$3: $(head -c 2000 "$1")"
}

# Wait (10 s at most) until the job has run some tasks and is still running.
end=$((SECONDS + 10))
until [ "$(get "api/v1/jobs/$id")" = "200 application/json" ] &&
    jq -e '.maps_done >= 1 and .state == "running"' "$T/body" >/dev/null; do
    [ $SECONDS -lt $end ] || fail "job $id did not get going: $(cat "$T/body")"
    sleep 0.2
done

[ "$(get api/v1/cluster)" = "200 application/json" ] || fail "cluster: $(cat "$T/body")"
check "$T/body" '
    (.version|type) == "string" and (.protocol|type) == "number" and
    (.master.endpoint|type) == "string" and (.master.http|type) == "string" and
    (.master.pid|type) == "number" and (.master.started_at_ms|type) == "number" and
    (.master.uptime_ms|type) == "number" and (.now_ms|type) == "number" and
    .workers.alive == 2 and .workers.dead == 0 and
    .slots.total == 4 and (.slots.busy|type) == "number" and
    (.slots.free|type) == "number" and .jobs.running == 1 and
    (.jobs.succeeded|type) == "number" and (.jobs.failed|type) == "number" and
    (.jobs.cancelled|type) == "number" and (.datasets|type) == "number" and
    (.messages_dropped|type) == "number" and (.heartbeats_missed|type) == "number"' \
    "/api/v1/cluster"

[ "$(get api/v1/workers)" = "200 application/json" ] || fail "workers"
check "$T/body" 'type == "array" and length == 2 and all(.[];
    (.id|type) == "string" and (.host|type) == "string" and
    (.pid|type) == "number" and .alive == true and .slots == 2 and
    (.busy|type) == "number" and (.heartbeat_age_ms|type) == "number" and
    (.shuffle_endpoint|type) == "string" and (.failures|type) == "number" and
    (.shards|type) == "number" and (.shard_bytes|type) == "number" and
    (.rss_peak_bytes|type) == "number" and (.running|type) == "array" and
    all(.running[]; (.job|type) == "string" and (.task|test("^[mr][0-9]+$")) and
        (.attempt|type) == "number"))' "/api/v1/workers"

job_fields='(.id|type) == "string" and (.name|type) == "string" and
    (.state|IN("running","succeeded","failed","cancelled")) and
    ((.error|type) == "null" or (.error|type) == "string") and
    (.output|type) == "string" and (.submitted_at_ms|type) == "number" and
    (.elapsed_ms|type) == "number" and ((.eta_ms|type) as $t | $t == "number" or $t == "null") and
    (.progress >= 0 and .progress <= 1) and
    (.maps|type) == "number" and (.maps_done|type) == "number" and
    (.maps_running|type) == "number" and (.maps_pending|type) == "number" and
    .maps == .maps_done + .maps_running + .maps_pending and
    (.reduces|type) == "number" and (.reduces_done|type) == "number" and
    (.reduces_running|type) == "number" and (.reduces_pending|type) == "number" and
    (.map_progress >= 0 and .map_progress <= 1) and
    (.reduce_progress >= 0 and .reduce_progress <= 1) and
    (.task_rss_peak_bytes|type) == "number" and (.worker_rss_peak_bytes|type) == "number" and
    (.master_rss_peak_bytes|type) == "number" and
    (.counters|type) == "object" and all(.counters[]; type == "number") and
    all(["map_attempts","reduce_attempts","failed_attempts","killed_attempts",
         "backup_attempts","maps_rerun","skipped_records","data_local_maps",
         "remote_maps"][]; . as $k | $c | has($k)) and
    (.failures|type) == "array" and all(.failures[];
        (.kind|IN("map","reduce")) and (.task|type) == "number" and
        (.task_name|test("^[mr][0-9]+$")) and (.attempt|type) == "number" and
        (.worker|type) == "string" and (.reason|type) == "string" and
        (.stderr_tail|type) == "string" and (.record_offset|type) == "number") and
    (.skipped|type) == "array"'

[ "$(get api/v1/jobs)" = "200 application/json" ] || fail "jobs"
check "$T/body" "type == \"array\" and length == 1 and all(.[]; .counters as \$c | $job_fields)" "/api/v1/jobs"

[ "$(get "api/v1/jobs/$id")" = "200 application/json" ] || fail "jobs/ID"
check "$T/body" ".counters as \$c | $job_fields and .id == \"$id\" and .state == \"running\" and .maps == 8 and .reduces == 2" "/api/v1/jobs/$id"
cp "$T/body" "$T/job.json"

[ "$(get "api/v1/jobs/$id/tasks")" = "200 application/json" ] || fail "tasks"
check "$T/body" 'type == "array" and length == 10 and all(.[];
    (.task|test("^[mr][0-9]+$")) and (.kind|IN("map","reduce")) and
    (.index|type) == "number" and (.state|IN("pending","running","done")) and
    ((.attempt|type) as $t | $t == "number" or $t == "null") and
    (.attempts|type) == "number" and (.failures|type) == "number" and
    (.running|type) == "number" and
    ((.worker|type) as $t | $t == "string" or $t == "null") and
    ((.locality == null) or (.locality|IN("local","remote","any"))) and
    ((.started_at_ms|type) as $t | $t == "number" or $t == "null") and
    ((.duration_ms|type) as $t | $t == "number" or $t == "null") and
    (.progress >= 0 and .progress <= 1) and
    ((.shard|type) as $t | $t == "string" or $t == "null")) and
    ([.[] | select(.kind == "map")] | length) == 8 and
    any(.[]; .state == "done" and .attempt >= 1 and (.worker|type) == "string" and
        .locality == "any" and .duration_ms >= 0)' "/api/v1/jobs/$id/tasks"

# Filtered and limited: what the page asks of a big job.
get "api/v1/jobs/$id/tasks?state=done&limit=2" >/dev/null
check "$T/body" 'length >= 1 and length <= 2 and all(.[]; .state == "done")' "tasks?state=done&limit=2"
get "api/v1/jobs/$id/tasks?state=pending,running" >/dev/null
check "$T/body" 'all(.[]; .state != "done")' "tasks?state=pending,running"

[ "$(get api/v1/events)" = "200 application/json" ] || fail "events"
check "$T/body" 'type == "array" and length >= 3 and all(.[];
    (.seq|type) == "number" and (.time_ms|type) == "number" and
    (.level|IN("error","warn","info","debug")) and (.kind|type) == "string" and
    ((.job|type) as $t | $t == "string" or $t == "null") and
    ((.task|type) as $t | $t == "string" or $t == "null") and
    ((.attempt|type) as $t | $t == "number" or $t == "null") and
    ((.worker|type) as $t | $t == "string" or $t == "null") and
    (.message|type) == "string") and
    ([.[].kind] | index("worker_joined") != null and index("job_submitted") != null) and
    ([.[].seq] | . == sort)' "/api/v1/events"
last=$(jq '.[-1].seq' "$T/body")
get "api/v1/events?since=$last" >/dev/null
check "$T/body" 'all(.[]; .seq > '"$last"')' "/api/v1/events?since=$last"

# The client says the same, in the same words.
"$QUERN" status "$id" --master "$MASTER" --json >"$T/cli.json"
check "$T/cli.json" ".counters as \$c | $job_fields and .id == \"$id\"" "quern status --json"
[ "$(jq -S 'keys' "$T/cli.json")" = "$(jq -S 'keys' "$T/job.json")" ] ||
    fail "quern status --json and /api/v1/jobs/ID have different fields"
"$QUERN" workers --master "$MASTER" --json >"$T/cliw.json"
get api/v1/workers >/dev/null
[ "$(jq -S '.[0] | keys' "$T/cliw.json")" = "$(jq -S '.[0] | keys' "$T/body")" ] ||
    fail "quern workers --json and /api/v1/workers have different fields"

# Metrics: Prometheus text, with the series operators alert on.
[ "$(get metrics)" = "200 text/plain; version=0.0.4; charset=utf-8" ] || fail "metrics: $(cat "$T/body")"
for series in 'quern_workers{state="alive"} 2' 'quern_workers{state="dead"} 0' \
    'quern_slots{state="busy"}' 'quern_tasks{phase="map",state="done"}' \
    'quern_tasks{phase="reduce",state="pending"}' \
    'quern_attempts_failed_total{phase="map",cause="task"}' \
    'quern_shuffle_bytes_total{form="raw"}' 'quern_heartbeats_missed_total' \
    'quern_messages_dropped_total{reason="malformed"} 0' \
    'quern_messages_dropped_total{reason="version"} 0' \
    'quern_messages_dropped_total{reason="invalid"} 0'; do
    grep -qF "$series" "$T/body" || fail "/metrics lacks $series: $(cat "$T/body")"
done
# Every line is a comment or NAME{LABELS} VALUE.
if grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+)$' "$T/body"; then
    fail "/metrics has lines that are not Prometheus text"
fi

# The page, and refusals.
[ "$(get '')" = "200 text/html; charset=utf-8" ] || fail "the page"
grep -q '<title>' "$T/body" || fail "the page has no title"
grep -qiE 'src="https?:|href="https?:' "$T/body" && fail "the page loads something from elsewhere"
[ "$(get api/v1/jobs/no-such-job)" = "404 application/json" ] || fail "unknown job: $(cat "$T/body")"
check "$T/body" '.error | test("no-such-job")' "404 body"
[ "$(get api/v1/nothing)" = "404 application/json" ] || fail "unknown path"
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "${HTTP}api/v1/jobs")
[ "$code" = 405 ] || fail "POST answered $code, not 405"
# A page elsewhere that rebinds its name to 127.0.0.1 gets nothing.
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: evil.example:80' "${HTTP}api/v1/jobs")
[ "$code" = 403 ] || fail "a foreign Host header was answered with $code, not 403"
code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: localhost' "${HTTP}api/v1/cluster")
[ "$code" = 200 ] || fail "Host: localhost was answered with $code"
[ "$(get 'api/v1/jobs/%ff%fe')" = "404 application/json" ] || fail "a job id that is not UTF-8: $(cat "$T/body")"

# The job ends well, and the API says so.
end=$((SECONDS + 60))
until get "api/v1/jobs/$id" >/dev/null && jq -e '.state != "running"' "$T/body" >/dev/null; do
    [ $SECONDS -lt $end ] || fail "job $id did not end"
    sleep 0.5
done
check "$T/body" '.state == "succeeded" and .eta_ms == null and .map_progress == 1 and
    .reduce_progress == 1 and (.failures | length) >= 1 and
    .counters.failed_attempts >= 1' "the finished job"
get api/v1/events >/dev/null
check "$T/body" '[.[].kind] | index("attempt_failed") != null and
    index("task_rerun") != null and index("job_succeeded") != null' "events after the job"
# An attempt that wrote nothing to stderr: an empty log, not an error.
"$QUERN" logs "$id" r0 --master "$MASTER" >"$T/r0.out" 2>"$T/r0.err" || fail "logs r0: $(cat "$T/r0.err")"
[ ! -s "$T/r0.out" ] || fail "reduce 0 wrote to stderr? $(cat "$T/r0.out")"
echo "ok: the JSON API, the page and /metrics keep their contract"
