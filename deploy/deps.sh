#!/bin/sh
# Install the Debian packages Quern needs to build, test and run.
#
# Idempotent: a package that is already installed is left alone, and when
# nothing is missing the script does no apt work at all. When another apt or
# dpkg run holds the package locks, it waits for that process to exit
# instead of failing.
#
# Usage: deploy/deps.sh [EXTRA-PACKAGE...]
set -eu

PACKAGES="libzmq3-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
liblz4-dev libzstd-dev libbz2-dev liblzma-dev libcriterion-dev
libmicrohttpd-dev libjansson-dev libsodium-dev libxxhash-dev libsqlite3-dev
libseccomp-dev pkg-config gcc make gzip bzip2 xz-utils zstd lz4"

# How long to wait for another package manager run, in seconds.
LOCK_WAIT=${QUERN_APT_LOCK_WAIT:-1800}

missing=""
for p in $PACKAGES "$@"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps.sh: missing packages:$missing" >&2
        echo "deps.sh: run this script as root (or install sudo)" >&2
        exit 1
    fi
fi

# Print the pids that hold a POSIX lock on one of apt's or dpkg's lock files,
# read from /proc/locks (fields: n: POSIX ADVISORY WRITE PID MAJ:MIN:INODE ...).
lock_holders() {
    inodes=""
    for f in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock \
        /var/lib/apt/lists/lock /var/cache/apt/archives/lock; do
        [ -e "$f" ] && inodes="$inodes $(stat -c %i "$f")"
    done
    [ -r /proc/locks ] || return 0
    awk -v inodes="$inodes" -v self="$$" '
        BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
        $2 == "->" { next }
        { split($6, dev, ":"); if ((dev[3] in want) && $5 != self) print $5 }
    ' /proc/locks | sort -u
}

# Block until no other process holds the package locks. Waiting is on the
# holder's exit (tail --pid), not on a fixed delay.
wait_for_locks() {
    deadline=$(($(date +%s) + LOCK_WAIT))
    while :; do
        holders=$(lock_holders)
        [ -z "$holders" ] && return 0
        now=$(date +%s)
        if [ "$now" -ge "$deadline" ]; then
            echo "deps.sh: apt/dpkg locks still held by pid(s) $holders" \
                "after ${LOCK_WAIT}s; let that run finish and try again" >&2
            exit 1
        fi
        for pid in $holders; do
            echo "deps.sh: waiting for package manager pid $pid to finish" >&2
            timeout $((deadline - now)) tail --pid="$pid" -f /dev/null || true
        done
    done
}

APT="env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=$LOCK_WAIT"

echo "deps.sh: installing$missing"
wait_for_locks
# Install from the current package lists first; refresh them only when a
# package is unknown or its archive moved on (a fresh machine has no lists).
# shellcheck disable=SC2086
if ! $SUDO $APT install --no-install-recommends $missing; then
    wait_for_locks
    $SUDO $APT update
    wait_for_locks
    $SUDO $APT install --no-install-recommends $missing
fi
