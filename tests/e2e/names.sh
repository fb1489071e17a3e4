#!/usr/bin/env bash
# Names as people type them. quern run, whose local cluster holds no
# dataset, takes a bare name (no '/') for --input and --output as the file
# or folder of that name here; a bare name that is not there is refused
# (exit 2) naming ./NAME. quern submit, where a bare name is a dataset,
# refuses a dataset that is not there and, when ./NAME is here, says how
# to name it as a path; a bare --output that is also a folder here is
# written as the dataset, with a note. quern, quern-master and
# quern-worker --version print the release and the protocol version.
. "$(dirname "$0")/lib.sh"

WC=$JOBS/wordcount.so
cd "$T" || fail "no $T"
gen "$T/books" 64K 2
wordcount_ref "$T"/books/* >"$T/want"

# ---- quern run: bare names are here ------------------------------------------
"$QUERN" run --job "$WC" --input books --output counts -R 2 --workers 1 \
    >/dev/null 2>"$T/run.log" || fail "quern run --input books failed: $(cat "$T/run.log")"
[ -e "$T/counts/_SUCCESS" ] || fail "quern run --output counts wrote no folder ./counts"
cat "$T"/counts/part-* | sort | cmp -s - "$T/want" || fail "./counts is not the word count of ./books"
"$QUERN" run --job "$WC" --input books --output counts-inline --inline \
    >/dev/null 2>&1 || fail "quern run --inline --input books failed"
cat "$T"/counts-inline/part-* | sort | cmp -s - "$T/want" || fail "--inline: ./counts-inline is wrong"

rc=0
"$QUERN" run --job "$WC" --input nosuch --output out1 >/dev/null 2>"$T/nosuch.log" || rc=$?
[ $rc = 2 ] || fail "quern run --input nosuch exited $rc, not 2"
grep -q 'no file or folder ./nosuch' "$T/nosuch.log" ||
    fail "the refusal does not name ./nosuch: $(cat "$T/nosuch.log")"
[ ! -e "$T/out1" ] || fail "a refused run made its output folder"

# ---- quern submit: bare names are datasets -------------------------------------
start_master
start_worker w1 --data-dir "$T/data1"
joined 1 || fail "the worker did not join"
rc=0
"$QUERN" submit --master "$MASTER" --job "$WC" --input books --output "$T/out2" \
    --wait >/dev/null 2>"$T/submit.log" || rc=$?
[ $rc = 2 ] || fail "submit --input books (no such dataset) exited $rc, not 2: $(cat "$T/submit.log")"
grep -q 'no dataset books' "$T/submit.log" || fail "the refusal does not say 'no dataset books': $(cat "$T/submit.log")"
grep -q '\./books is a folder here: to read it, name it as a path, --input \./books' "$T/submit.log" ||
    fail "the refusal does not say how to name ./books: $(cat "$T/submit.log")"
# Named as a path, it runs; a bare output that is a folder here is the dataset.
mkdir "$T/wc"
"$QUERN" submit --master "$MASTER" --job "$WC" --input ./books --output wc --output-replicas 1 \
    --wait >/dev/null 2>"$T/submit2.log" || fail "submit --input ./books failed: $(cat "$T/submit2.log")"
grep -q -- '--output wc names a dataset, not the folder ./wc here' "$T/submit2.log" ||
    fail "no note that --output wc is a dataset: $(cat "$T/submit2.log")"
[ -z "$(ls -A "$T/wc")" ] || fail "the folder ./wc was written"
"$QUERN" cat --master "$MASTER" wc | sort | cmp -s - "$T/want" || fail "dataset wc is not the word count"

# ---- --version ----------------------------------------------------------------
v=$("$QUERN" --version) || fail "quern --version failed"
[[ $v =~ ^quern\ [0-9]+\.[0-9]+\.[0-9]+\ \(protocol\ [0-9]+\.[0-9]+\)$ ]] ||
    fail "quern --version printed '$v'"
[ "$("$QUERN" version)" = "$v" ] || fail "quern version and --version differ"
for b in quern-master quern-worker; do
    [ "$("$BIN/$b" --version)" = "$b ${v#quern }" ] ||
        fail "$b --version printed '$("$BIN/$b" --version)', not '$b ${v#quern }'"
done
rel=$(curl -sS --max-time 5 "${HTTP}api/v1/cluster" | jq -r .version) ||
    fail "no /api/v1/cluster"
[[ $v == "quern $rel (protocol "* ]] || fail "the master's API says release $rel, --version '$v'"

echo "ok: bare names in run are files here; submit names ./NAME; --version"
