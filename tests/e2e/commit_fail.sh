#!/usr/bin/env bash
# A reduce's output that its worker cannot install as a dataset shard: the
# place the shard goes is taken by a folder (as a full data dir would make
# the install fail). The worker says so, and the job fails at once naming
# the worker, the shard and why, rather than wait for a shard that is
# never announced.
. "$(dirname "$0")/lib.sh"

start_master --heartbeat-ms 100
start_worker w1 --data-dir "$T/d1" --slots 2
joined 1
gen "$T/in" 64K 2
mkdir -p "$T/d1/counts/part-00000/in-the-way"
rc=0
timeout 60 "$QUERN" submit --master "$MASTER" --job "$JOBS/wordcount.so" \
    --input "$T/in" --output counts -R 1 --wait >"$T/submit.log" 2>&1 || rc=$?
[ $rc = 1 ] || fail "the job did not fail (exit $rc): $(cat "$T/submit.log")"
id=$(head -n 1 "$T/submit.log")
"$QUERN" status "$id" --master "$MASTER" --json >"$T/status.json"
jq -e '.state == "failed"' "$T/status.json" >/dev/null ||
    fail "job state: $(jq -c .state "$T/status.json")"
jq -e '.error | test("could not install output shard 0 of counts: .*Is a directory")' \
    "$T/status.json" >/dev/null || fail "the error does not say why: $(jq -c .error "$T/status.json")"
grep -q "could not install output shard 0 of counts" "$T/master.log" ||
    fail "the master did not log it"
echo "ok: $(jq -r .error "$T/status.json")"
