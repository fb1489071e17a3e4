#!/usr/bin/env bash
# netns-cluster.sh -- a Quern cluster of several "hosts" on this one machine.
#
# Each host is a Linux network namespace with its own loopback, one veth
# into a private bridge, and one address that exists only inside it; the
# bridge has no address in the root namespace, so the cluster cannot be
# reached from (or reach) anything but itself. Traffic between hosts
# crosses real network interfaces, can be cut with nftables, and is
# counted per host.
#
# Run `deploy/netns-cluster.sh help` for the commands. Root only.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
DEPLOY=$(dirname "$SELF")
REPO=$(dirname "$DEPLOY")
PROG=netns-cluster.sh
REGISTRY=/run/quern-netns # NAME -> DIR, so later commands need no --dir
MASTER_PORT=7070
HTTP_PORT=8080 # the master's status page (inside the cluster's network)
SHUFFLE_PORT=7071
WAIT_S=${QUERN_NETNS_WAIT:-20} # how long up/start wait for workers
STOP_S=10                      # how long a daemon gets after SIGTERM

usage() {
    cat <<EOF
usage: $PROG COMMAND [ARGS]

A Quern cluster on this machine: a private bridge (no address outside the
cluster) and network namespaces NAME-master, NAME-client, NAME-w1 ...
NAME-wN on the subnet 10.A.B.0/24 (master .1, client .2, worker i .(10+i)).
Root only.

  up N [--name NAME] [--dir DIR] [--subnet 10.A.B] [--slots S] [--curve]
        create the hosts, start quern-master on tcp://10.A.B.1:$MASTER_PORT and
        N quern-workers (shuffle on tcp://10.A.B.(10+i):$SHUFFLE_PORT, work and
        data dirs DIR/wI/{work,data}, S slots each, default 1), and wait up
        to ${WAIT_S} s for all N workers to be alive. --curve: a key pair per
        host and one for the client (quern keygen DIR/keys/HOST), every public
        key in DIR/keys/trusted, every daemon given --curve-secret
        DIR/keys/HOST.key --curve-trusted DIR/keys/trusted; clients need
        \$CURVE_CLIENT_ARGS from env
  down                  stop every daemon started here (SIGINT, SIGKILL after
                        ${STOP_S} s), delete the namespaces, veths and bridge;
                        works after a partial up; keeps DIR (logs)
  exec HOST [CMD...]    run CMD (default: a shell) in HOST's namespace, with
                        QUERN_MASTER set to the master's endpoint
  cut HOST              drop all of HOST's traffic except loopback (nftables
                        table quern_cut in its namespace)
  restore HOST          remove that table again
  stop HOST [--now]     SIGTERM HOST's daemon (a worker drains first) and
                        wait up to ${STOP_S} s for it to exit; --now: SIGINT
                        (a worker stops at once, what it held is lost to
                        the cluster until it is back)
  kill HOST             SIGKILL HOST's daemon (a crash: it says no goodbye)
                        and wait for it to exit
  start HOST            start HOST's daemon again with the same flags
  status                hosts, addresses, daemons, cuts
  env                   shell assignments (MASTER, DIR, W1 ...) for eval
  bytes [--json]        rx and tx bytes of each host's interface, and the
                        bytes that crossed the bridge (sum of what hosts sent)

HOST is master, client, or w1 ... wN. Every command takes --name NAME and
--dir DIR (before or after the command; for exec, before HOST). NAME is
1-10 lowercase letters and digits; up defaults to "qn", other commands to
the only cluster that is up, else "qn". DIR defaults to
$REPO/build/netns/NAME. The subnet defaults to one derived from NAME.

Environment:
  QUERN_BIN     folder with quern, quern-master, quern-worker
                (default $REPO/build/bin)
  MASTER_ARGS   extra quern-master flags, split on spaces (up only)
                e.g. MASTER_ARGS='--dead-ms 3000 --heartbeat-ms 500'
  WORKER_ARGS   extra quern-worker flags, split on spaces (up only)
  QUERN_NETNS_WAIT  seconds up and start wait for workers (default 20)

Files under DIR: master.log, wI.log, pids/HOST.pid, args/HOST (each
daemon's command line), state, keys/ (with --curve), wI/work, wI/data.

Example:
  $PROG up 4 --name qt
  $PROG exec client build/bin/quern workers
  $PROG cut w2; sleep 12; $PROG restore w2
  $PROG bytes
  $PROG down
EOF
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}
usage_error() {
    echo "$PROG: $*" >&2
    echo "run '$PROG help' for usage" >&2
    exit 2
}
now() { date +%s; }

# ---- options and names -------------------------------------------------------

NAME=""
DIR=""
SUBNET=""
SLOTS=1
CURVE=0
NOW=0 # stop --now

# Parse --name/--dir (and, for up, the others) from "$@"; what is left goes
# to REST. Stops at the first non-option when STOP_AT_ARG is 1 (exec).
REST=()
parse_opts() {
    local allow_up=$1 stop_at_arg=$2
    shift 2
    REST=()
    while [ $# -gt 0 ]; do
        case $1 in
        --name | --dir | --subnet | --slots)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            case $1 in
            --name) NAME=$2 ;;
            --dir) DIR=$2 ;;
            --subnet | --slots)
                [ "$allow_up" = 1 ] || usage_error "$1 is an option of up only"
                if [ "$1" = --subnet ]; then SUBNET=$2; else SLOTS=$2; fi
                ;;
            esac
            shift 2
            ;;
        --name=* | --dir=* | --subnet=* | --slots=*)
            local k=${1%%=*} v=${1#*=}
            set -- "$k" "$v" "${@:2}"
            ;;
        --curve)
            [ "$allow_up" = 1 ] || usage_error "--curve is an option of up only"
            CURVE=1
            shift
            ;;
        --now)
            [ "$CMD" = stop ] || usage_error "--now is an option of stop only"
            NOW=1
            shift
            ;;
        --)
            shift
            REST+=("$@")
            return
            ;;
        -*) usage_error "unknown option '$1'" ;;
        *)
            REST+=("$1")
            shift
            if [ "$stop_at_arg" = 1 ]; then
                REST+=("$@")
                return
            fi
            ;;
        esac
    done
}

check_name() {
    [[ $NAME =~ ^[a-z][a-z0-9]{0,9}$ ]] ||
        usage_error "--name must be 1-10 lowercase letters and digits, starting with a letter, not '$NAME'"
}

# NAME and DIR for a command other than up.
resolve_cluster() {
    if [ -z "$NAME" ] && [ -n "$DIR" ] && [ -f "$DIR/state" ]; then
        NAME=$(sed -n 's/^NAME=//p' "$DIR/state")
    fi
    if [ -z "$NAME" ]; then
        local up=()
        if [ -d "$REGISTRY" ]; then
            mapfile -t up < <(find "$REGISTRY" -mindepth 1 -maxdepth 1 -type f -printf '%f\n' | sort)
        fi
        if [ ${#up[@]} -eq 1 ]; then
            NAME=${up[0]}
        elif [ ${#up[@]} -gt 1 ]; then
            die "clusters ${up[*]} are up; say which with --name"
        else
            NAME=qn
        fi
    fi
    check_name
    if [ -z "$DIR" ]; then
        if [ -f "$REGISTRY/$NAME" ]; then
            DIR=$(cat "$REGISTRY/$NAME")
        else
            DIR=$REPO/build/netns/$NAME
        fi
    fi
    DIR=$(realpath -m -- "$DIR")
}

# Load DIR/state (N, SUBNET, QBIN, CURVE, ...); dies if the cluster is not up.
load_state() {
    [ -f "$DIR/state" ] || die "no cluster '$NAME' here (no $DIR/state); start one with '$PROG up N --name $NAME'"
    # shellcheck source=/dev/null
    source "$DIR/state"
    [ -e "/run/netns/$(ns_of master)" ] ||
        die "cluster '$NAME' is not up (no namespace $(ns_of master)); start it with '$PROG up N --name $NAME'"
}

BR() { echo "$NAME-br"; }
ns_of() { echo "$NAME-$1"; }
veth_of() {
    case $1 in
    master) echo "$NAME-m" ;;
    client) echo "$NAME-c" ;;
    *) echo "$NAME-$1" ;;
    esac
}
ip_of() {
    case $1 in
    master) echo "$SUBNET.1" ;;
    client) echo "$SUBNET.2" ;;
    w*) echo "$SUBNET.$((10 + ${1#w}))" ;;
    esac
}
hosts() {
    echo master
    echo client
    local i
    for ((i = 1; i <= N; i++)); do echo "w$i"; done
}
check_host() {
    case $1 in
    master | client) return 0 ;;
    w[1-9] | w[1-9][0-9] | w[1-9][0-9][0-9])
        [ "${1#w}" -le "$N" ] && return 0
        ;;
    esac
    die "no host '$1' in cluster '$NAME' (hosts: master, client, w1 ... w$N)"
}
master_ep() { echo "tcp://$SUBNET.1:$MASTER_PORT"; }
shuffle_ep() { echo "tcp://$(ip_of "$1"):$SHUFFLE_PORT"; }

# A subnet 10.A.B derived from NAME (100 <= A < 200), so that two clusters
# get different ones. The namespaces are isolated from the machine, so the
# subnet cannot clash with a real network; it only has to be stable.
subnet_for() {
    local h
    h=$(printf '%s' "$1" | cksum | cut -d' ' -f1)
    echo "10.$((100 + h % 100)).$(((h / 100) % 256))"
}

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces)"
}

# ---- processes -----------------------------------------------------------------

# Alive and not a zombie.
pid_alive() {
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Is PID the daemon we started for HOST: a quern-master or quern-worker
# binary, running in HOST's namespace? Guards against a recycled pid.
pid_is_ours() {
    local pid=$1 host=$2 exe want
    pid_alive "$pid" || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}
    case $host in
    master) want=quern-master ;;
    *) want=quern-worker ;;
    esac
    [ "$(basename -- "$exe")" = "$want" ] || return 1
    [ "$(ip netns identify "$pid" 2>/dev/null)" = "$(ns_of "$host")" ]
}

pid_of() {
    local f=$DIR/pids/$1.pid
    [ -f "$f" ] && cat "$f"
}

# Wait up to $2 seconds for pid $1 to exit. The daemons are not our
# children: once exited they stay zombies until init reaps them, which
# `tail --pid` would wait for, so each short tail is followed by a check
# that counts a zombie as gone.
wait_exit() {
    local pid=$1 secs=$2 deadline
    [ "$secs" -gt 0 ] || secs=1
    deadline=$(($(now) + secs))
    while pid_alive "$pid"; do
        [ "$(now)" -lt "$deadline" ] || return 1
        timeout 0.2 tail --pid="$pid" -s 0.05 -f /dev/null 2>/dev/null || true
    done
}

# Signal SIG (TERM: a worker drains first; INT: it stops at once) to the
# daemons of the given hosts, wait up to STOP_S seconds in all, then
# SIGKILL what is left. Only pids from DIR/pids that still are ours.
stop_hosts() {
    local sig=$1 host pid deadline left
    shift
    local -A running=()
    for host in "$@"; do
        pid=$(pid_of "$host") || continue
        if pid_is_ours "$pid" "$host"; then
            kill "-$sig" "$pid" 2>/dev/null || true
            running[$host]=$pid
        fi
    done
    deadline=$(($(now) + STOP_S))
    for host in "${!running[@]}"; do
        pid=${running[$host]}
        left=$((deadline - $(now)))
        if wait_exit "$pid" "$left"; then
            echo "stopped $host (pid $pid)"
        else
            echo "$host (pid $pid) still running after ${STOP_S} s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait_exit "$pid" 5 || echo "$PROG: pid $pid did not die" >&2
        fi
    done
    for host in "$@"; do rm -f "$DIR/pids/$host.pid"; done
}

# Start HOST's daemon from DIR/args/HOST, log appended to DIR/HOST.log.
start_daemon() {
    local host=$1 pid deadline exe bin argv=()
    mapfile -d '' -t argv <"$DIR/args/$host"
    bin=$(readlink -f -- "${argv[0]}")
    # No QUERN_PARENT_PID: the daemons must outlive this script.
    env -u QUERN_PARENT_PID ip netns exec "$(ns_of "$host")" \
        setsid "${argv[@]}" </dev/null >>"$DIR/$host.log" 2>&1 &
    pid=$!
    echo "$pid" >"$DIR/pids/$host.pid"
    # ip netns exec and setsid exec in place: wait for the daemon itself.
    deadline=$(($(now) + 3))
    while :; do
        exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
        [ "${exe% (deleted)}" = "$bin" ] && break
        if ! pid_alive "$pid" || [ "$(now)" -ge "$deadline" ]; then
            echo "$PROG: $host: ${argv[0]##*/} did not start; $DIR/$host.log says:" >&2
            tail -n 20 "$DIR/$host.log" | sed 's/^/    /' >&2
            return 1
        fi
        sleep 0.05
    done
    echo "started $host: pid $pid, ${argv[*]}"
}

# `quern workers --json` from the client namespace; empty on failure.
workers_json() {
    local secs=${1:-6}
    local cargs=()
    if [ "${CURVE:-0}" = 1 ]; then
        cargs=(--curve-secret "$DIR/keys/client.key" --curve-master "$DIR/keys/master.pub")
    fi
    timeout "$secs" ip netns exec "$(ns_of client)" "$QBIN/quern" workers \
        --master "$(master_ep)" --json "${cargs[@]}" 2>/dev/null || true
}

# How many of the given workers (w1 ...) the master lists as alive: an
# alive entry with the worker's shuffle endpoint and the pid we started (a
# stopped worker stays "alive" in the list until the dead timeout).
count_alive() {
    local json want host pid
    want=$(for host in "$@"; do
        pid=$(pid_of "$host") || pid=0
        printf '%s %s\n' "$(shuffle_ep "$host")" "$pid"
    done | jq -R 'split(" ") | {ep: .[0], pid: (.[1] | tonumber)}' | jq -sc .)
    json=$(workers_json "${WAIT_LEFT:-6}")
    [ -n "$json" ] || {
        echo 0
        return
    }
    jq --argjson want "$want" \
        '[.[] | select(.alive) | {ep: .shuffle_endpoint, pid}] as $alive
         | [$want[] | select(. as $w | $alive | index([$w]) != null)] | length' \
        <<<"$json" 2>/dev/null || echo 0
}

show_logs() {
    local host
    for host in "$@"; do
        [ -f "$DIR/$host.log" ] || continue
        echo "--- $DIR/$host.log (last 15 lines)" >&2
        tail -n 15 "$DIR/$host.log" >&2
    done
}

# Wait up to WAIT_S seconds until the master lists the given workers alive;
# fail fast when a daemon exits.
wait_alive() {
    local deadline n host pid want=$#
    deadline=$(($(now) + WAIT_S))
    while :; do
        for host in master "$@"; do
            pid=$(pid_of "$host") || continue
            if ! pid_alive "$pid"; then
                echo "$PROG: $host's daemon (pid $pid) exited" >&2
                show_logs master "$@"
                return 1
            fi
        done
        WAIT_LEFT=$((deadline - $(now)))
        [ "$WAIT_LEFT" -ge 1 ] || WAIT_LEFT=1
        n=$(count_alive "$@")
        [ "$n" -ge "$want" ] && return 0
        if [ "$(now)" -ge "$deadline" ]; then
            echo "$PROG: only $n of $want workers alive after ${WAIT_S} s" >&2
            show_logs master "$@"
            if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
                echo "$PROG: note: bridged traffic goes through this machine's iptables" \
                    "(net.bridge.bridge-nf-call-iptables=1); a FORWARD policy of DROP blocks the cluster" >&2
            fi
            return 1
        fi
        sleep 0.2
    done
}

# ---- commands --------------------------------------------------------------------

cmd_up() {
    parse_opts 1 0 "$@"
    [ ${#REST[@]} -eq 1 ] || usage_error "up takes one argument, the number of workers"
    N=${REST[0]}
    if ! [[ $N =~ ^[1-9][0-9]{0,2}$ ]] || [ "$N" -gt 244 ]; then
        usage_error "N must be 1 to 244, not '$N'"
    fi
    [[ $SLOTS =~ ^[1-9][0-9]*$ ]] || usage_error "--slots must be a positive number, not '$SLOTS'"
    NAME=${NAME:-qn}
    check_name
    [ ${#NAME} -le $((15 - 2 - ${#N})) ] ||
        usage_error "--name '$NAME' is too long for $N workers (interface names are at most 15 characters)"
    if [ -n "$SUBNET" ]; then
        if ! [[ $SUBNET =~ ^10\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
            [ "${BASH_REMATCH[1]}" -gt 255 ] || [ "${BASH_REMATCH[2]}" -gt 255 ]; then
            usage_error "--subnet must look like 10.A.B, not '$SUBNET'"
        fi
    else
        SUBNET=$(subnet_for "$NAME")
    fi
    DIR=$(realpath -m -- "${DIR:-$REPO/build/netns/$NAME}")
    QBIN=$(realpath -m -- "${QUERN_BIN:-$REPO/build/bin}")
    need_root
    "$DEPLOY/deps.sh" iproute2 nftables jq

    local b
    for b in quern quern-master quern-worker; do
        [ -x "$QBIN/$b" ] || die "no $QBIN/$b; build first (make), or set QUERN_BIN"
    done
    if ip netns list | awk '{print $1}' | grep -qx "$(ns_of master)" ||
        ip link show "$(BR)" >/dev/null 2>&1 || [ -f "$REGISTRY/$NAME" ]; then
        die "cluster '$NAME' is already (partly) up; run '$PROG down --name $NAME' first"
    fi

    # State first, so that down can undo a partial up.
    mkdir -p "$DIR" "$REGISTRY"
    rm -rf "$DIR/pids" "$DIR/args"
    mkdir -p "$DIR/pids" "$DIR/args"
    {
        printf 'NAME=%q\nN=%q\nSUBNET=%q\nSLOTS=%q\nCURVE=%q\nQBIN=%q\n' \
            "$NAME" "$N" "$SUBNET" "$SLOTS" "$CURVE" "$QBIN"
    } >"$DIR/state"
    echo "$DIR" >"$REGISTRY/$NAME"
    UP_DONE=0
    trap '[ "$UP_DONE" = 1 ] || echo "$PROG: up failed; undo what it made with: $PROG down --name $NAME" >&2' EXIT

    # The bridge: no address here, no IPv6 chatter, up.
    ip link add "$(BR)" type bridge
    sysctl -q -w "net.ipv6.conf.$(BR).disable_ipv6=1" >/dev/null 2>&1 || true
    ip link set "$(BR)" up

    local host ns veth
    for host in $(hosts); do
        ns=$(ns_of "$host")
        veth=$(veth_of "$host")
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 \
            net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
        ip link add "$veth" type veth peer name eth0 netns "$ns"
        sysctl -q -w "net.ipv6.conf.$veth.disable_ipv6=1" >/dev/null 2>&1 || true
        ip link set "$veth" master "$(BR)" up
        ip -n "$ns" addr add "$(ip_of "$host")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    echo "cluster $NAME: bridge $(BR), namespaces $(ns_of master), $(ns_of client), $(ns_of w1) ... $(ns_of "w$N") on $SUBNET.0/24"

    # Keys: one pair per host; every public key in keys/trusted.
    local margs=() wargs=()
    if [ "$CURVE" = 1 ]; then
        mkdir -p "$DIR/keys/trusted"
        chmod 700 "$DIR/keys"
        rm -f "$DIR/keys"/*.key "$DIR/keys"/*.pub "$DIR/keys/trusted"/*.pub
        for host in master client $(hosts | grep '^w'); do
            "$QBIN/quern" keygen "$DIR/keys/$host" ||
                die "'quern keygen $DIR/keys/$host' failed; does this quern have keygen?"
            if [ ! -f "$DIR/keys/$host.key" ] || [ ! -f "$DIR/keys/$host.pub" ]; then
                die "quern keygen did not write $DIR/keys/$host.key and .pub"
            fi
            chmod 600 "$DIR/keys/$host.key"
            cp "$DIR/keys/$host.pub" "$DIR/keys/trusted/$host.pub"
        done
        echo "keys: $DIR/keys/HOST.key, public keys in $DIR/keys/trusted"
    fi
    curve_of() {
        [ "$CURVE" = 1 ] || return 0
        printf '%s\0' --curve-secret "$DIR/keys/$1.key" --curve-trusted "$DIR/keys/trusted"
    }

    read -r -a margs <<<"${MASTER_ARGS:-}"
    read -r -a wargs <<<"${WORKER_ARGS:-}"
    {
        printf '%s\0' "$QBIN/quern-master" --listen "$(master_ep)" \
            --http "$SUBNET.1:$HTTP_PORT" "${margs[@]}"
        curve_of master
    } >"$DIR/args/master"
    : >"$DIR/master.log"
    start_daemon master
    for host in $(hosts | grep '^w'); do
        mkdir -p "$DIR/$host/work" "$DIR/$host/data"
        {
            printf '%s\0' "$QBIN/quern-worker" --master "$(master_ep)" \
                --shuffle "$(shuffle_ep "$host")" \
                --work-dir "$DIR/$host/work" --data-dir "$DIR/$host/data" \
                --slots "$SLOTS" "${wargs[@]}"
            curve_of "$host"
        } >"$DIR/args/$host"
        : >"$DIR/$host.log"
        start_daemon "$host"
    done
    unset -f curve_of

    mapfile -t WS < <(hosts | grep '^w')
    wait_alive "${WS[@]}"
    UP_DONE=1
    echo "cluster $NAME is up: master $(master_ep), $N workers alive"
    echo "  $PROG exec client $QBIN/quern workers    # QUERN_MASTER is set there"
    echo "  eval \"\$($PROG env --name $NAME)\"; $PROG down --name $NAME"
}

cmd_down() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 0 ] || usage_error "down takes no arguments"
    need_root
    resolve_cluster
    N=0
    SUBNET=""
    if [ -f "$DIR/state" ]; then
        # shellcheck source=/dev/null
        source "$DIR/state"
    fi
    local found=0
    if [ -d "$DIR/pids" ] || [ -f "$REGISTRY/$NAME" ] || ip link show "$(BR)" >/dev/null 2>&1 ||
        ip netns list | awk '{print $1}' | grep -Eq "^$NAME-(master|client|w[0-9]+)\$"; then
        found=1
    fi
    # Daemons, by the pids we recorded; workers first, then the master.
    local host hs=()
    if [ -d "$DIR/pids" ]; then
        for f in "$DIR"/pids/w*.pid; do
            [ -e "$f" ] && hs+=("$(basename "$f" .pid)")
        done
        [ ${#hs[@]} -eq 0 ] || stop_hosts INT "${hs[@]}"
        [ -e "$DIR/pids/master.pid" ] && stop_hosts INT master
    fi
    # Root-side veths (each takes its peer with it), then the bridge.
    local links=() l
    if ip link show "$(BR)" >/dev/null 2>&1; then
        mapfile -t links < <(ip -j link show master "$(BR)" | jq -r '.[].ifname')
    fi
    for host in master client; do links+=("$(veth_of "$host")"); done
    for ((i = 1; i <= N; i++)); do links+=("$(veth_of "w$i")"); done
    for l in $(printf '%s\n' "${links[@]}" | sort -u); do
        if ip link show "$l" >/dev/null 2>&1; then
            ip link del "$l"
        fi
    done
    if ip link show "$(BR)" >/dev/null 2>&1; then
        ip link del "$(BR)"
    fi
    # Namespaces named after this cluster.
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$NAME-(master|client|w[0-9]+)\$" || true); do
        ip netns del "$ns"
    done
    rm -f "$REGISTRY/$NAME"
    rm -rf "$DIR/pids"
    if [ "$found" = 1 ]; then
        echo "cluster $NAME is down (logs kept in $DIR)"
    else
        echo "cluster $NAME: nothing was up"
    fi
}

cmd_exec() {
    parse_opts 0 1 "$@"
    [ ${#REST[@]} -ge 1 ] || usage_error "exec needs a HOST"
    need_root
    resolve_cluster
    load_state
    local host=${REST[0]}
    check_host "$host"
    local cmd=("${REST[@]:1}")
    [ ${#cmd[@]} -gt 0 ] || cmd=("${SHELL:-/bin/bash}")
    exec ip netns exec "$(ns_of "$host")" \
        env QUERN_MASTER="${QUERN_MASTER:-$(master_ep)}" "${cmd[@]}"
}

cmd_cut() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 1 ] || usage_error "cut takes one HOST"
    need_root
    resolve_cluster
    load_state
    local host=${REST[0]}
    check_host "$host"
    # "table; delete table" first makes this idempotent.
    ip netns exec "$(ns_of "$host")" nft -f - <<'EOF'
table inet quern_cut
delete table inet quern_cut
table inet quern_cut {
    chain input {
        type filter hook input priority filter; policy drop;
        iif lo accept
    }
    chain output {
        type filter hook output priority filter; policy drop;
        oif lo accept
    }
}
EOF
    echo "cut $host: all traffic but loopback dropped in $(ns_of "$host")"
}

cmd_restore() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 1 ] || usage_error "restore takes one HOST"
    need_root
    resolve_cluster
    load_state
    local host=${REST[0]} ns
    check_host "$host"
    ns=$(ns_of "$host")
    if ip netns exec "$ns" nft list table inet quern_cut >/dev/null 2>&1; then
        ip netns exec "$ns" nft delete table inet quern_cut
    fi
    echo "restored $host"
}

# stop and kill: signal HOST's daemon by the pid we recorded.
stop_or_kill() {
    local verb=$1
    shift
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 1 ] || usage_error "$verb takes one HOST"
    need_root
    resolve_cluster
    load_state
    local host=${REST[0]} pid
    check_host "$host"
    [ "$host" != client ] || die "the client host runs no daemon"
    if ! pid=$(pid_of "$host") || ! pid_is_ours "$pid" "$host"; then
        rm -f "$DIR/pids/$host.pid"
        echo "$host: not running"
        return 0
    fi
    if [ "$verb" = stop ]; then
        if [ "$NOW" = 1 ]; then stop_hosts INT "$host"; else stop_hosts TERM "$host"; fi
        return
    fi
    kill -KILL "$pid"
    wait_exit "$pid" 5 || die "$host (pid $pid) did not die"
    rm -f "$DIR/pids/$host.pid"
    echo "killed $host (pid $pid)"
}

cmd_start() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 1 ] || usage_error "start takes one HOST"
    need_root
    resolve_cluster
    load_state
    local host=${REST[0]} pid
    check_host "$host"
    [ "$host" != client ] || die "the client host runs no daemon"
    [ -f "$DIR/args/$host" ] || die "no $DIR/args/$host: was $host ever started by up?"
    if pid=$(pid_of "$host") && pid_is_ours "$pid" "$host"; then
        die "$host is running (pid $pid); stop it first"
    fi
    start_daemon "$host"
    if [ "$host" = master ]; then
        # Workers reconnect on their own; wait until all are back.
        mapfile -t WS < <(hosts | grep '^w')
        wait_alive "${WS[@]}"
        echo "master is back and all $N workers are alive"
    else
        wait_alive "$host"
        echo "$host is alive"
    fi
}

cmd_status() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 0 ] || usage_error "status takes no arguments"
    need_root
    resolve_cluster
    load_state
    local host pid run cut
    echo "cluster $NAME in $DIR, master $(master_ep)"
    printf '%-8s %-16s %-20s %s\n' HOST ADDRESS DAEMON NETWORK
    for host in $(hosts); do
        run=-
        if [ "$host" != client ]; then
            run="stopped"
            if pid=$(pid_of "$host") && pid_is_ours "$pid" "$host"; then
                run="running (pid $pid)"
            fi
        fi
        cut=up
        if ip netns exec "$(ns_of "$host")" nft list table inet quern_cut >/dev/null 2>&1; then
            cut=CUT
        fi
        printf '%-8s %-16s %-20s %s\n' "$host" "$(ip_of "$host")" "$run" "$cut"
    done
}

cmd_env() {
    parse_opts 0 0 "$@"
    [ ${#REST[@]} -eq 0 ] || usage_error "env takes no arguments"
    resolve_cluster
    load_state
    local host ws=()
    printf 'NAME=%q\n' "$NAME"
    printf 'DIR=%q\n' "$DIR"
    printf 'MASTER=%q\n' "$(master_ep)"
    printf 'QUERN_BIN=%q\n' "$QBIN"
    printf 'N=%q\n' "$N"
    for host in $(hosts | grep '^w'); do
        printf '%s=%q\n' "${host^^}" "$(shuffle_ep "$host")"
        ws+=("$(shuffle_ep "$host")")
    done
    printf "WORKERS='%s'\n" "${ws[*]}"
    if [ "$CURVE" = 1 ]; then
        printf "CURVE_CLIENT_ARGS='%s'\n" "--curve-secret $DIR/keys/client.key --curve-master $DIR/keys/master.pub"
        printf 'CURVE_KEYS=%q\n' "$DIR/keys"
    fi
}

cmd_bytes() {
    local json=0 a args=()
    for a in "$@"; do
        if [ "$a" = --json ]; then json=1; else args+=("$a"); fi
    done
    parse_opts 0 0 "${args[@]}"
    [ ${#REST[@]} -eq 0 ] || usage_error "bytes takes only --json"
    need_root
    resolve_cluster
    load_state
    local host rows="" s
    for host in $(hosts); do
        s=$(ip -n "$(ns_of "$host")" -s -j link show dev eth0 |
            jq -c --arg h "$host" --arg a "$(ip_of "$host")" \
                '.[0].stats64 | {host: $h, address: $a, rx: .rx.bytes, tx: .tx.bytes}')
        rows+=$s$'\n'
    done
    local all
    all=$(jq -s '{hosts: ., bridge_bytes: (map(.tx) | add), rx_total: (map(.rx) | add)}' <<<"$rows")
    if [ "$json" = 1 ]; then
        echo "$all"
        return
    fi
    printf '%-8s %-16s %14s %14s\n' HOST ADDRESS RX_BYTES TX_BYTES
    jq -r '.hosts[] | "\(.host) \(.address) \(.rx) \(.tx)"' <<<"$all" |
        while read -r h a r t; do
            printf '%-8s %-16s %14s %14s\n' "$h" "$a" "$r" "$t"
        done
    jq -r '"bytes across the bridge: \(.bridge_bytes) (sum of what the hosts sent; \(.rx_total) received)"' <<<"$all"
}

# ---- main ------------------------------------------------------------------------

# Options before the command (--name, --dir) are kept for it.
PRE=()
while [ $# -gt 0 ]; do
    case $1 in
    --name | --dir)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        PRE+=("$1" "$2")
        shift 2
        ;;
    --name=* | --dir=*)
        PRE+=("$1")
        shift
        ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || {
    usage >&2
    exit 2
}
CMD=$1
shift
case $CMD in
up) cmd_up "${PRE[@]}" "$@" ;;
down) cmd_down "${PRE[@]}" "$@" ;;
exec) cmd_exec "${PRE[@]}" "$@" ;;
cut) cmd_cut "${PRE[@]}" "$@" ;;
restore) cmd_restore "${PRE[@]}" "$@" ;;
stop | kill) stop_or_kill "$CMD" "${PRE[@]}" "$@" ;;
start) cmd_start "${PRE[@]}" "$@" ;;
status) cmd_status "${PRE[@]}" "$@" ;;
env) cmd_env "${PRE[@]}" "$@" ;;
bytes) cmd_bytes "${PRE[@]}" "$@" ;;
help | -h | --help) usage ;;
*) usage_error "unknown command '$CMD'" ;;
esac
