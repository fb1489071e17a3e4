#!/usr/bin/env bash
# The code keeps the shape README's "How it works" describes: small modules
# (a module is x.c with its x.h), each with one job, none reaching into
# another daemon's folder, none in a circle with another.
#
#   - no .c file in master/ (subfolders included) or worker/ over 700
#     lines, except master/sched.c, the pure scheduler;
#   - no function in lib/, master/ or worker/ over 100 lines, from its
#     first line to its closing brace (clang-format puts a function's braces
#     alone in column 0, and nothing else);
#   - no include between master/ and worker/: what both need is in lib/;
#     lib/ includes neither;
#   - no cycle between modules, by includes or by calls: a call is a symbol
#     one module's object file needs and another's defines (nm), and tsort
#     finds any loop in those edges.
. "$(dirname "$0")/lib.sh"

cd "$(dirname "$0")/../.."
OBJ=$BUILD/obj
[ -d "$OBJ/lib" ] || fail "no object files in $OBJ (make all)"

# Files.
big=$(find master worker -name '*.c' ! -path master/sched.c -print0 |
    xargs -0 wc -l | awk '$2 != "total" && $1 > 700 { print $2 " " $1 }')
[ -z "$big" ] || fail "files over 700 lines: $big"

# Functions.
long=$(awk '
    FNR == 1 { prev = "" }
    /^\{$/ { start = FNR - 1; name = prev }
    /^\}$/ && start { n = FNR - start + 1
                      if (n > 100) print FILENAME ":" start " " n " lines: " name
                      start = 0 }
    { prev = $0 }' lib/*.c master/*.c master/*/*.c worker/*.c)
[ -z "$long" ] || fail "functions over 100 lines: $long"

# Includes across the daemons: each include resolved from its file's own
# folder, its top folder compared with the file's.
cross=$(grep -oE '^#include "[^"]+"' master/*.[ch] master/*/*.[ch] \
    worker/*.[ch] lib/*.[ch] | while IFS=: read -r f inc; do
    inc=${inc#'#include "'}
    inc=${inc%'"'}
    t=$(realpath -m --relative-to=. "$(dirname "$f")/$inc")
    from=${f%%/*} to=${t%%/*}
    case "$from:$to" in
    lib:master | lib:worker | master:worker | worker:master) echo "$f: $inc" ;;
    esac
done)
[ -z "$cross" ] || fail "includes across master/, worker/ and lib/: $cross"

# Module edges: includes of another module's header, and calls.
edges=$T/edges
: >"$edges"
for c in lib/*.c master/*.c master/*/*.c worker/*.c; do
    m=${c%.c}
    for h in $(sed -n 's/^#include "\(.*\)\.h".*/\1/p' "$c" "$m.h" 2>/dev/null); do
        t=$(realpath -m --relative-to=. "$(dirname "$c")/$h")
        [ -f "$t.c" ] || t=lib/$(basename "$h")
        [ -f "$t.c" ] && [ "$t" != "$m" ] && echo "$m $t" >>"$edges"
    done
done
find "$OBJ/lib" "$OBJ/master" "$OBJ/worker" -name '*.o' | sort >"$T/objs"
while read -r o; do
    m=${o#"$OBJ"/}
    nm --defined-only "$o" | awk -v m="${m%.o}" '$2 ~ /^[TDBRC]$/ { print $3, m }'
done <"$T/objs" | sort >"$T/defs"
while read -r o; do
    m=${o#"$OBJ"/}
    nm --undefined-only "$o" | awk -v m="${m%.o}" '{ print $2, m }'
done <"$T/objs" | sort | join - "$T/defs" |
    awk '$2 != $3 && $3 !~ /(^|\/)(main|task_main)$/ { print $2, $3 }' >>"$edges"
[ "$(wc -l <"$edges")" -gt 100 ] || fail "only $(wc -l <"$edges") module edges found: the check reads nothing"
# A module pointing at itself is no cycle; tsort reads "a a" as a node.
sort -u "$edges" | tsort >/dev/null 2>"$T/loops" ||
    fail "modules in a cycle: $(cat "$T/loops")"
echo "ok: $(ls master/*.c master/*/*.c worker/*.c | wc -l) daemon files, $(sort -u "$edges" | wc -l) module edges, no cycle"
