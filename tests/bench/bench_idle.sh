#!/bin/sh
# make bench, idle wakeups: how often the workers of an idle 4-worker pool
# wake when no connection comes, without the shim, under `sockshim run
# --accept observe` and under `--accept serialize` (where a worker waits
# for the accept lock or the poll token instead of the kernel's
# listener): the bundled prefork_server waiting in accept (block) and in
# poll, and gunicorn's sync workers (select). Every pool starts at once,
# answers one request (so the lock or token has been taken and handed on),
# settles, and then each worker's context switches (voluntary +
# nonvoluntary, every thread, /proc/PID/task/*/status) are counted over
# IDLE seconds: one switch per wakeup of a worker that sleeps again.
# Prints per worker and the highest, beside the issue's target for
# serialize (<= 1 per second). Prints; never fails on a figure. Fails,
# saying why, when a server does not start. Loopback only, every wait
# bounded, every process it starts stopped by pid.
# Usage: bench_idle.sh [BUILD]; BENCH_IDLE_SECONDS (10; QUICK=1: 3).
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
HERE=$(pwd)/tests/bench
if [ "${QUICK:-0}" = 1 ]; then IDLE=${BENCH_IDLE_SECONDS:-3}; else IDLE=${BENCH_IDLE_SECONDS:-10}; fi
WORKERS=4
SETTLE=1         # seconds after the start and after the request
START_TIMEOUT=20 # seconds for a server to answer
STOP_TIMEOUT=10  # seconds for a server to exit after SIGTERM
PY=${PYTHON:-python3}
TOOL=$BUILD/sockshim
TMP=$(mktemp -d /tmp/sockshim-bench-idle.XXXXXX)
SESS="bench-idle-$$"
POOLS="prefork-block prefork-poll gunicorn"
MODES="none observe serialize"
RUNNING="" # "pool:mode" of the servers started
SRV_PIN=""
. "$HERE/bench_lib.sh"

die() {
	echo "bench_idle: $*" >&2
	exit 1
}

cleanup() {
	for id in $RUNNING; do
		eval "stop_root \$ROOT_$(echo "$id" | tr ':-' '__') \"$id\""
	done
	rm -rf "$TMP"
	rm -f /dev/shm/sockshim."$(id -u)"."$SESS"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo
if ! command -v gunicorn >/dev/null 2>&1; then
	echo "idle wakeups: gunicorn skipped, not installed (apt-get install -y gunicorn)"
	POOLS="prefork-block prefork-poll"
fi

# The pool's kind and the prefork_server options of its way to wait.
pool_kind() { case $1 in prefork-*) echo prefork ;; *) echo "$1" ;; esac; }
pool_opts() { case $1 in prefork-poll) echo "-m poll" ;; *) echo "" ;; esac; }
pool_name() {
	case $1 in
	prefork-block) echo "prefork_server -w 4 (accept)" ;;
	prefork-poll) echo "prefork_server -w 4 -m poll" ;;
	gunicorn) echo "gunicorn -w 4 sync (select)" ;;
	esac
}

# The workers of the pool started as ROOT: the children of its master
# (the tree's process of the server's name whose parent is not).
workers_of() { # root kind
	comm=$(server_comm "$2")
	pids=$(tree_comm_pids "$1" "$comm")
	for p in $pids; do
		pp=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)
		case " $(echo "$pids" | tr '\n' ' ') " in *" $pp "*) echo "$p" ;; esac
	done
}

# Context switches of every thread of PID.
switches_of() { # pid
	usage_of "$1" | awk '{ print $2 }'
}

for pool in $POOLS; do
	for mode in $MODES; do
		id=$pool:$mode var=$(echo "$id" | tr ':-' '__')
		set --
		if [ "$mode" != none ]; then set -- "$TOOL" run --session "$SESS-$pool-$mode" --accept "$mode" --; fi
		SERVER_OPTS=$(pool_opts "$pool")
		launch "$(pool_kind "$pool")" $WORKERS "$TMP/$pool-$mode" "$@"
		RUNNING="$RUNNING $id"
		eval "ROOT_$var=$LAUNCHED"
		serving "$(pool_kind "$pool")" $WORKERS "$LAUNCHED" "$TMP/$pool-$mode"
		eval "PORT_$var=$LPORT"
	done
done
sleep $SETTLE
# One request to each: its lock or token taken and handed on.
for id in $RUNNING; do
	var=$(echo "$id" | tr ':-' '__')
	eval "port=\$PORT_$var"
	case $id in
	prefork*) line_ok "$port" || die "$id: the request failed" ;;
	*) http_ok "$port" || die "$id: the request failed" ;;
	esac
done
sleep $SETTLE
for id in $RUNNING; do
	var=$(echo "$id" | tr ':-' '__')
	eval "root=\$ROOT_$var"
	w=$(workers_of "$root" "$(pool_kind "${id%%:*}")")
	[ "$(echo "$w" | wc -w)" = $WORKERS ] || die "$id: $(echo "$w" | wc -w) workers, not $WORKERS"
	eval "WORKERS_$var=\"$(echo "$w" | tr '\n' ' ')\""
	before=""
	for p in $w; do before="$before $(switches_of "$p")"; done
	eval "BEFORE_$var=\"$before\""
done
t0=$(date +%s%N)
sleep "$IDLE"
t1=$(date +%s%N)
for id in $RUNNING; do
	var=$(echo "$id" | tr ':-' '__')
	eval "w=\$WORKERS_$var"
	after=""
	for p in $w; do after="$after $(switches_of "$p")"; done
	eval "AFTER_$var=\"$after\""
done

echo "idle wakeups per second per worker: 4-worker pools, no connection for ${IDLE} s"
echo "(after one request each), context switches of each worker's threads from /proc;"
echo "all pools at once, not pinned. Target under serialize: <= 1 per second per worker."
printf "%-30s %-10s %8s %8s %8s %8s %8s %s\n" pool variant w1 w2 w3 w4 max target
for id in $RUNNING; do
	var=$(echo "$id" | tr ':-' '__')
	eval "b=\$BEFORE_$var a=\$AFTER_$var"
	mode=${id#*:}
	echo "$b" "$a" | awk -v secs="$(echo "$t0 $t1" | awk '{ print ($2 - $1) / 1e9 }')" \
		-v pool="$(pool_name "${id%%:*}")" -v mode="$mode" '{
		n = NF / 2; line = sprintf("%-30s %-10s", pool, mode); max = -1
		for (i = 1; i <= n; i++) {
			r = ($(n + i) - $i) / secs
			if (r > max) max = r
			line = line sprintf(" %8.1f", r)
		}
		target = mode == "serialize" ? (max <= 1 ? "<= 1: met" : "<= 1: not met") : ""
		printf "%s %8.1f %s\n", line, max, target
	}'
done
