#!/usr/bin/env bash
# quern-cluster.sh -- start, stop and check a Quern cluster over ssh.
#
# usage: deploy/quern-cluster.sh start|stop|status|push HOSTS
#
# HOSTS is a text file, one host per line, '#' starts a comment:
#
#   # the master: on HOST, listening on tcp://ADDR:7070
#   master  node0.example.net  10.0.0.1
#   # workers: on HOST, with SLOTS task slots (default 1), their shuffle
#   # server on tcp://ADDR:7071
#   worker  node1.example.net  8
#   worker  node2.example.net  8  10.0.0.12
#
#   master HOST [ADDR]
#       ADDR is an IP address of HOST that every worker and client can reach;
#       default: HOST's IPv4 address as this machine resolves it (getent).
#   worker HOST [SLOTS [ADDR]]
#       ADDR is the IP address other workers fetch map output from; default:
#       the address HOST itself uses to reach the master (`ip route get`).
#       One worker per host: give it more SLOTS instead.
#
# HOST is what ssh connects to (a name from ~/.ssh/config works). A host
# may run the master and a worker.
#
# Commands:
#   start   start the master, then every worker, each with nohup; a daemon
#           already running (per its pid file) is left alone
#   stop    SIGINT every worker (each stops at once: the whole cluster
#           goes, so there is nowhere to drain to), then the master, by the
#           pid in its pid file; SIGKILL after 10 s. To take one worker out
#           without losing anything, `quern drain WORKER --wait` first.
#   status  which daemons run, then `quern workers` if this machine has
#           quern and reaches the master
#   push    copy quern, quern-master, quern-worker and quern-task from this
#           machine's build to every host (PREFIX/bin, PREFIX/libexec)
#
# On each host everything lives in QUERN_REMOTE_DIR (default .quern in the
# ssh user's home): master.pid, master.log, worker.pid, worker.log, work/
# and data/ (the worker's --work-dir and --data-dir).
#
# Environment:
#   QUERN_SSH            ssh command, split on spaces
#                        (default: ssh -o BatchMode=yes -o ConnectTimeout=10)
#   QUERN_SCP            scp command for push, split on spaces
#                        (default: scp -o BatchMode=yes -o ConnectTimeout=10 -q)
#   QUERN_SSH_TIMEOUT    seconds one host's commands may take (default 60)
#   QUERN_SSH_JOBS       hosts handled at once (default 16)
#   QUERN_REMOTE_PREFIX  install prefix on the hosts (default /usr/local; a
#                        relative path is relative to the ssh user's home)
#   QUERN_REMOTE_DIR     run dir on the hosts (default .quern)
#   QUERN_PORT           master port (default 7070)
#   QUERN_SHUFFLE_PORT   worker shuffle port (default 7071)
#   QUERN_MASTER_ARGS    extra quern-master flags, e.g. --dead-ms 20000
#   QUERN_WORKER_ARGS    extra quern-worker flags, e.g. --log-level debug
#                        (both split on spaces)
#   QUERN_BIN            this machine's binaries, for push and status
#                        (default: build/bin of this checkout)
#
# Daemons started this way do not come back after a reboot or a crash;
# for that use the systemd units (deploy/quern-*.service). Where logind
# kills a user's processes at logout (KillUserProcesses=yes), enable
# lingering for the ssh user (loginctl enable-linger USER).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(dirname "$(dirname "$SELF")")
PROG=quern-cluster.sh

read -r -a SSH <<<"${QUERN_SSH:-ssh -o BatchMode=yes -o ConnectTimeout=10}"
read -r -a SCP <<<"${QUERN_SCP:-scp -o BatchMode=yes -o ConnectTimeout=10 -q}"
SSH_TIMEOUT=${QUERN_SSH_TIMEOUT:-60}
JOBS=${QUERN_SSH_JOBS:-16}
RPREFIX=${QUERN_REMOTE_PREFIX:-/usr/local}
RDIR=${QUERN_REMOTE_DIR:-.quern}
PORT=${QUERN_PORT:-7070}
SPORT=${QUERN_SHUFFLE_PORT:-7071}
QBIN=$(realpath -m -- "${QUERN_BIN:-$REPO/build/bin}")

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"
}
die() {
    echo "$PROG: $*" >&2
    exit 1
}
usage_error() {
    echo "$PROG: $*" >&2
    echo "usage: $PROG start|stop|status|push HOSTS   ($PROG help for more)" >&2
    exit 2
}

for v in SSH_TIMEOUT JOBS PORT SPORT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || usage_error "$v must be a positive number, not '${!v}'"
done

# ---- the hosts file --------------------------------------------------------------

MASTER_HOST=""
MASTER_ADDR=""
WORKER_HOSTS=()
declare -A WORKER_SLOTS=() WORKER_ADDR=()

is_ipv4() { [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; }

read_hosts() {
    local file=$1 line n=0 kind host a b extra
    [ -r "$file" ] || die "cannot read the hosts file '$file'"
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%%#*}
        read -r kind host a b extra <<<"$line" || true
        [ -n "${kind:-}" ] || continue
        [ -z "${extra:-}" ] || die "$file:$n: too many fields"
        [ -n "${host:-}" ] || die "$file:$n: '$kind' needs a HOST"
        [[ $host =~ ^[A-Za-z0-9._@:-]+$ ]] || die "$file:$n: bad host '$host'"
        case $kind in
        master)
            [ -z "$MASTER_HOST" ] || die "$file:$n: a second master (the first is $MASTER_HOST)"
            [ -z "${b:-}" ] || die "$file:$n: master HOST [ADDR]"
            MASTER_HOST=$host
            MASTER_ADDR=${a:-}
            ;;
        worker)
            [ -z "${WORKER_SLOTS[$host]:-}" ] || die "$file:$n: a second worker on $host; give one worker more SLOTS"
            if [ -n "${a:-}" ] && ! [[ $a =~ ^[1-9][0-9]*$ ]]; then
                die "$file:$n: SLOTS must be a positive number, not '$a'"
            fi
            if [ -n "${b:-}" ] && ! is_ipv4 "$b"; then
                die "$file:$n: a worker's ADDR must be an IPv4 address, not '$b'"
            fi
            WORKER_HOSTS+=("$host")
            WORKER_SLOTS[$host]=${a:-1}
            WORKER_ADDR[$host]=${b:-}
            ;;
        *) die "$file:$n: unknown kind '$kind' (master or worker)" ;;
        esac
    done <"$file"
    [ -n "$MASTER_HOST" ] || die "$file: no 'master HOST' line"
    if [ -z "$MASTER_ADDR" ]; then
        local name=${MASTER_HOST#*@}
        if is_ipv4 "$name"; then
            MASTER_ADDR=$name
        else
            MASTER_ADDR=$(getent ahostsv4 "$name" | awk 'NR == 1 {print $1}') || true
            [ -n "$MASTER_ADDR" ] ||
                die "$file: cannot resolve $name; give the master's address: master $MASTER_HOST ADDR"
        fi
    fi
    is_ipv4 "$MASTER_ADDR" || die "$file: the master's ADDR must be an IPv4 address, not '$MASTER_ADDR'"
    case $MASTER_ADDR in
    127.*)
        local h
        for h in "${WORKER_HOSTS[@]}"; do
            if [ "$h" != "$MASTER_HOST" ]; then
                echo "$PROG: warning: the master listens on loopback ($MASTER_ADDR), which workers on other hosts cannot reach" >&2
                break
            fi
        done
        ;;
    esac
    MASTER_EP=tcp://$MASTER_ADDR:$PORT
}

# ---- running things on hosts -------------------------------------------------------

# POSIX-shell quoting of one word.
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# remote HOST SCRIPT ARGS...: run the sh SCRIPT on HOST with ARGS, bounded.
remote() {
    local host=$1 script=$2 cmd a
    shift 2
    cmd="sh -s --"
    for a in "$@"; do cmd+=" $(q "$a")"; done
    timeout "$SSH_TIMEOUT" "${SSH[@]}" "$host" "$cmd" <<<"$script"
}

# Run "FUNC HOST" for each HOST, at most JOBS at a time, output kept per host
# and printed in order with a "HOST: " prefix. Fails if any did.
for_hosts() {
    local fn=$1 tmp i host rc=0 pids=()
    shift
    tmp=$(mktemp -d)
    for ((i = 1; i <= $#; i++)); do
        host=${!i}
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
        # The inner subshell keeps set -e (an if or || would turn it off).
        (
            set +e
            (
                set -e
                "$fn" "$host"
            ) >"$tmp/$i.out" 2>&1
            echo $? >"$tmp/$i.rc"
        ) &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    for ((i = 1; i <= $#; i++)); do
        host=${!i}
        sed "s|^|$host: |" "$tmp/$i.out"
        if [ "$(cat "$tmp/$i.rc" 2>/dev/null || echo 1)" != 0 ]; then
            [ -s "$tmp/$i.out" ] || echo "$host: failed (ssh or the remote command; exit $(cat "$tmp/$i.rc" 2>/dev/null || echo '?'))"
            rc=1
        fi
    done
    rm -rf "$tmp"
    return "$rc"
}

# The scripts run on the hosts (POSIX sh). Common part: the run dir, and
# whether the pid in a pid file is still the daemon it names.
# shellcheck disable=SC2016 # expanded on the host
REMOTE_LIB='
set -eu
dir=$1
case $dir in /*) ;; *) dir=$HOME/$dir ;; esac
running() { # running ROLE: the pid from ROLE.pid, if it is quern-ROLE
    [ -f "$dir/$1.pid" ] || return 1
    pid=$(cat "$dir/$1.pid")
    case $pid in "" | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/comm" ]; then comm=$(cat "/proc/$pid/comm")
    else comm=$(ps -o comm= -p "$pid" 2>/dev/null || true); fi
    [ "$comm" = "quern-$1" ]
}
'

# start: DIR ROLE BIN ARGS... (for a worker, ARGS holds @ADDR@ to fill in)
# shellcheck disable=SC2016 # expanded on the host
REMOTE_START=$REMOTE_LIB'
role=$2 bin=$3
shift 3
case $bin in /*) ;; *) bin=$HOME/$bin ;; esac
if running "$role"; then echo "quern-$role already running (pid $pid)"; exit 0; fi
[ -x "$bin" ] || { echo "no $bin here; install Quern (make install) or use push"; exit 1; }
mkdir -p "$dir/work" "$dir/data"
if [ "$role" = worker ]; then
    # Fill in the shuffle address and the dirs.
    maddr=$QUERN_MASTER_ADDR addr=$QUERN_ADDR
    if [ -z "$addr" ]; then
        addr=$(ip -o -4 route get "$maddr" 2>/dev/null | sed -n "s/.* src \([0-9.]*\).*/\1/p")
        [ -n "$addr" ] || { echo "cannot tell which address reaches $maddr (ip route get); give it in the hosts file: worker HOST SLOTS ADDR"; exit 1; }
    fi
    n=$#
    while [ "$n" -gt 0 ]; do
        a=$1
        shift
        case $a in
        @SHUFFLE@) a=tcp://$addr:$QUERN_SHUFFLE_PORT ;;
        @WORK@) a=$dir/work ;;
        @DATA@) a=$dir/data ;;
        esac
        set -- "$@" "$a"
        n=$((n - 1))
    done
fi
log=$dir/$role.log
echo "--- $(date "+%F %T") start: $bin $*" >>"$log"
if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$bin" "$@" </dev/null >>"$log" 2>&1 &
else
    nohup "$bin" "$@" </dev/null >>"$log" 2>&1 &
fi
pid=$!
echo "$pid" >"$dir/$role.pid"
sleep 1
if ! kill -0 "$pid" 2>/dev/null; then
    echo "quern-$role exited at once; $log says:"
    tail -n 10 "$log"
    rm -f "$dir/$role.pid"
    exit 1
fi
echo "quern-$role started (pid $pid): $bin $*"
'

# stop: DIR ROLE
# shellcheck disable=SC2016 # expanded on the host
REMOTE_STOP=$REMOTE_LIB'
role=$2
if ! running "$role"; then rm -f "$dir/$role.pid"; echo "quern-$role not running"; exit 0; fi
kill -INT "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
    echo "quern-$role (pid $pid) still running after 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$dir/$role.pid"
echo "quern-$role stopped (pid $pid)"
'

# status: DIR ROLE
# shellcheck disable=SC2016 # expanded on the host
REMOTE_STATUS=$REMOTE_LIB'
role=$2
if running "$role"; then echo "quern-$role running (pid $pid)"; else echo "quern-$role not running"; fi
'

start_master() {
    local args=()
    read -r -a args <<<"${QUERN_MASTER_ARGS:-}"
    remote "$1" "$REMOTE_START" "$RDIR" master "$RPREFIX/bin/quern-master" \
        --listen "$MASTER_EP" "${args[@]}"
}
start_worker() {
    local host=$1 args=()
    read -r -a args <<<"${QUERN_WORKER_ARGS:-}"
    # The remote script reads these three from its environment.
    local script
    script="QUERN_MASTER_ADDR=$(q "$MASTER_ADDR") QUERN_ADDR=$(q "${WORKER_ADDR[$host]}") QUERN_SHUFFLE_PORT=$(q "$SPORT")
$REMOTE_START"
    remote "$host" "$script" "$RDIR" worker "$RPREFIX/bin/quern-worker" \
        --master "$MASTER_EP" --shuffle @SHUFFLE@ --slots "${WORKER_SLOTS[$host]}" \
        --work-dir @WORK@ --data-dir @DATA@ "${args[@]}"
}
stop_master() { remote "$1" "$REMOTE_STOP" "$RDIR" master; }
stop_worker() { remote "$1" "$REMOTE_STOP" "$RDIR" worker; }
status_master() { remote "$1" "$REMOTE_STATUS" "$RDIR" master; }
status_worker() { remote "$1" "$REMOTE_STATUS" "$RDIR" worker; }

push_host() {
    local host=$1 stage=$RPREFIX/bin/.quern-push
    # shellcheck disable=SC2016 # expanded on the host
    remote "$host" 'set -eu; mkdir -p "$1/bin/.quern-push" "$1/libexec"' "$RPREFIX" || return 1
    timeout "$SSH_TIMEOUT" "${SCP[@]}" "$QBIN/quern" "$QBIN/quern-master" "$QBIN/quern-worker" \
        "$QBIN/../libexec/quern-task" "$host:$stage/" || return 1
    # Rename into place: a running binary is replaced, not overwritten.
    # shellcheck disable=SC2016 # expanded on the host
    remote "$host" 'set -eu; p=$1; s=$p/bin/.quern-push
        chmod 755 "$s"/*
        mv -f "$s/quern-task" "$p/libexec/quern-task"
        for b in quern quern-master quern-worker; do mv -f "$s/$b" "$p/bin/$b"; done
        rmdir "$s"
        echo "installed quern, quern-master, quern-worker in $p/bin, quern-task in $p/libexec"' "$RPREFIX"
}

# ---- commands ------------------------------------------------------------------------

[ $# -ge 1 ] || usage_error "a command is needed"
case $1 in
help | -h | --help)
    usage
    exit 0
    ;;
esac
[ $# -eq 2 ] || usage_error "$1 takes one argument, the hosts file"
CMD=$1
read_hosts "$2"

case $CMD in
start)
    echo "master $MASTER_HOST on $MASTER_EP"
    for_hosts start_master "$MASTER_HOST" || die "the master did not start; workers not started"
    if [ ${#WORKER_HOSTS[@]} -gt 0 ]; then
        for_hosts start_worker "${WORKER_HOSTS[@]}" || die "some workers did not start (see above)"
    fi
    echo "started; clients use --master $MASTER_EP (or QUERN_MASTER=$MASTER_EP)"
    ;;
stop)
    rc=0
    if [ ${#WORKER_HOSTS[@]} -gt 0 ]; then
        for_hosts stop_worker "${WORKER_HOSTS[@]}" || rc=1
    fi
    for_hosts stop_master "$MASTER_HOST" || rc=1
    exit "$rc"
    ;;
status)
    rc=0
    for_hosts status_master "$MASTER_HOST" || rc=1
    if [ ${#WORKER_HOSTS[@]} -gt 0 ]; then
        for_hosts status_worker "${WORKER_HOSTS[@]}" || rc=1
    fi
    if [ -x "$QBIN/quern" ]; then
        echo "quern workers --master $MASTER_EP:"
        timeout 10 "$QBIN/quern" workers --master "$MASTER_EP" ||
            echo "(no answer from here; the daemons' state is above)"
    fi
    exit "$rc"
    ;;
push)
    for b in quern quern-master quern-worker; do
        [ -x "$QBIN/$b" ] || die "no $QBIN/$b; build first (make) or set QUERN_BIN"
    done
    [ -x "$QBIN/../libexec/quern-task" ] || die "no $QBIN/../libexec/quern-task; build first (make)"
    mapfile -t ALL < <(printf '%s\n' "$MASTER_HOST" "${WORKER_HOSTS[@]}" | awk '!seen[$0]++')
    for_hosts push_host "${ALL[@]}"
    ;;
*) usage_error "unknown command '$CMD'" ;;
esac
