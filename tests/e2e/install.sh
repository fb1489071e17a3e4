#!/usr/bin/env bash
# make install puts binaries, the runner, quern.h and quern.pc where they
# belong, and the installed tree runs a job built with pkg-config.
. "$(dirname "$0")/lib.sh"

root=$(pwd)
make -s -C "$root" install BUILD="$BUILD" DESTDIR="$T/root" PREFIX=/opt/quern >"$T/install.log" 2>&1 ||
    fail "make install failed: $(cat "$T/install.log")"
P=$T/root/opt/quern
for f in bin/quern bin/quern-master bin/quern-worker libexec/quern-task; do
    [ -x "$P/$f" ] || fail "$f not installed"
done
[ -f "$P/include/quern.h" ] || fail "quern.h not installed"
[ -f "$P/lib/pkgconfig/quern.pc" ] || fail "quern.pc not installed"
cflags=$(PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$T/root pkg-config --cflags quern)
cflags=${cflags% }
[ "$cflags" = "-I$P/include" ] || fail "pkg-config --cflags quern gave '$cflags'"
cc -shared -fPIC $cflags "$root/jobs/wordcount.c" -o "$T/wc.so" || fail "cannot build a job with pkg-config"
gen "$T/in" 1M 1
"$P/bin/quern" run --job "$T/wc.so" --input "$T/in" --output "$T/out" >"$T/run.log" 2>&1 ||
    fail "the installed quern cannot run a job: $(cat "$T/run.log")"
cat "$T"/out/part-* | sort | cmp - <(wordcount_ref "$T"/in/*) || fail "wrong output"
echo "ok: installed tree works"
