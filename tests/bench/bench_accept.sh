#!/bin/sh
# make bench, accept contention: real pre-forked servers side by side in one
# run, without the shim, under --accept observe and serialize, with a single
# worker (the herd-free floor) and uWSGI's own --thunder-lock. For each:
# requests/s, server CPU us and context switches per request (every process
# of the server, from /proc), spurious wakeups and empty accepts per request
# (the session's listener table). Then the issue's ratios, met or not.
# Prints; never fails on a figure. Fails only if a server does not start or
# a request fails. Loopback only, every wait bounded, servers stopped by pid.
# Usage: bench_accept.sh [BUILD]; BENCH_ACCEPT_SECONDS (2; QUICK=1: 1) per
# run, BENCH_ACCEPT_ROUNDS (3; QUICK=1: 1) rounds of every configuration,
# best of them reported (other programs only ever slow a run down);
# BENCH_ACCEPT_CONFIGS to run others than the issue's (see CONFIGS below).
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
HERE=$(pwd)/tests/bench
if [ "${QUICK:-0}" = 1 ]; then
	SECS=${BENCH_ACCEPT_SECONDS:-1}
	ROUNDS=${BENCH_ACCEPT_ROUNDS:-1}
else
	SECS=${BENCH_ACCEPT_SECONDS:-2}
	ROUNDS=${BENCH_ACCEPT_ROUNDS:-3}
fi
WARM_SECS=1
START_TIMEOUT=20 # seconds for a server to answer
STOP_TIMEOUT=10  # seconds for a server to exit after SIGTERM
PY=${PYTHON:-python3}
TOOL=$BUILD/sockshim
LOAD=$BUILD/bench/bench_accept_load
PROBE=$BUILD/bench/bench_accept_probe
TMP=$(mktemp -d /tmp/sockshim-bench-accept.XXXXXX)
RES=$TMP/results
SESS="bench-accept-$$"
NSESS=0
ROOT=     # the running server's pid
SERVER=   # its kind: gunicorn, prefork, uwsgi
SESSION=  # its sockshim session, empty without the shim
PORT=
LOG=$TMP/server/out # launch's output file in TMP/server

# ---- Processes ----

# tree_pids, alive, free_port, http_ok, usage_of, wrk_load, launch, serving
. "$(dirname "$0")/bench_lib.sh"

# Stop the server: SIGTERM to its pid, bounded wait, then SIGKILL to
# whatever of its tree is left (said, since it should not happen).
stop_server() {
	[ -n "$ROOT" ] || return 0
	stop_root "$ROOT" "$SERVER ($CONFIG)"
	ROOT=
	if [ -n "$SESSION" ]; then rm -f "/dev/shm/sockshim.$(id -u).$SESSION"; fi
}

cleanup() {
	stop_server
	rm -rf "$TMP"
	rm -f /dev/shm/sockshim."$(id -u)"."$SESS"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench_accept: ${CONFIG:+$SERVER ($CONFIG): }$*" >&2
	if [ -s "$LOG" ]; then
		echo "bench_accept: the server's output (last 20 lines):" >&2
		tail -n 20 "$LOG" | sed 's/^/  /' >&2
	fi
	exit 1
}

# ---- Set-up: packages, helpers, cores ----

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v gunicorn >/dev/null 2>&1 || missing="$missing gunicorn"
command -v uwsgi >/dev/null 2>&1 || missing="$missing uwsgi"
[ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing="$missing uwsgi-plugin-python3"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "bench_accept: installing$missing"
	# shellcheck disable=SC2086
	(apt-get install -y $missing || (apt-get update && apt-get install -y $missing)) \
		>/dev/null 2>&1 || true
fi
has_wrk=0 has_gunicorn=0 has_uwsgi=0
if command -v wrk >/dev/null 2>&1; then has_wrk=1; fi
if [ $has_wrk = 1 ] && command -v gunicorn >/dev/null 2>&1; then has_gunicorn=1; fi
if [ $has_wrk = 1 ] && command -v uwsgi >/dev/null 2>&1 &&
	[ -f /usr/lib/uwsgi/plugins/python3_plugin.so ]; then has_uwsgi=1; fi

# The two helpers, built here (a second each) so the Makefile needs no rule.
for h in bench_accept_load bench_accept_probe; do build_helper "$h"; done

if [ "$(nproc)" -ge 2 ]; then
	SRV_PIN="taskset -c 0" CLI_PIN="taskset -c 1" PINNED="server on CPU 0, client on CPU 1"
else
	SRV_PIN="" CLI_PIN="" PINNED="one CPU: server and client share it"
fi

# ---- One configuration: start, load, measure, stop ----

# start_server KIND WORKERS MODE [tl]: MODE none (no shim), observe or
# serialize; tl: uWSGI's --thunder-lock. Returns once it answers with
# every worker there.
start_server() {
	SERVER=$1
	workers=$2 mode=$3 tl=${4:-}
	SESSION=
	set --
	if [ "$mode" != none ]; then
		NSESS=$((NSESS + 1))
		SESSION=$SESS-$NSESS
		set -- "$TOOL" run --session "$SESSION" --accept "$mode" --
	fi
	SERVER_OPTS=
	if [ "$tl" = tl ]; then SERVER_OPTS=--thunder-lock; fi
	launch "$SERVER" "$workers" "$TMP/server" "$@"
	ROOT=$LAUNCHED
	serving "$SERVER" "$workers" "$ROOT" "$TMP/server"
	PORT=$LPORT
}

# load CONNS SECONDS: "requests requests_per_s"; fails, saying why, if a
# request failed.
load() {
	limit=$(($2 + 30))
	if [ "$SERVER" = prefork ]; then
		# shellcheck disable=SC2086
		out=$($CLI_PIN timeout "$limit" "$LOAD" "$PORT" "$1" "$2" 2>&1) ||
			die "$SERVER ($CONFIG): requests failed at $1 connections: $out"
		echo "$out" | awk '$1 == "requests" { printf "%d %.1f\n", $2, $2 / $6 }'
		return
	fi
	wrk_load "$PORT" "$1" "$2" close
}

# Spurious wakeups, empty accepts and connections accepted so far:
# "spurious empty accepts", or "n/a n/a n/a" without the shim.
listener_counts() {
	if [ -z "$SESSION" ]; then
		echo "n/a n/a n/a"
		return
	fi
	"$PROBE" "$SESSION" | awk '{ for (i = 1; i < NF; i += 2) v[$i] = $(i + 1) }
		END { if (v["listeners"]) print v["spurious"], v["empty"], v["accepts"]; else print "n/a n/a n/a" }'
}

# measure ID CONNS ROUND: one run, appended to the results as
# "ID CONNS ROUND req/s cpu_us/req switches/req spurious/req empty/req
# accepted/req" (the last three n/a without the shim).
measure() {
	pids=$(tree_pids "$ROOT")
	# shellcheck disable=SC2086
	u0=$(usage_of $pids)
	c0=$(listener_counts)
	r=$(load "$2" "$SECS")
	# shellcheck disable=SC2086
	u1=$(usage_of $pids)
	c1=$(listener_counts)
	if [ "$(tree_pids "$ROOT" | sort)" != "$(echo "$pids" | sort)" ]; then
		echo "  warning: $SERVER ($CONFIG): its processes changed during the run" >&2
	fi
	echo "$1 $2 $3 $r $u0 $u1 $c0 $c1" | awk '{
		n = $4
		cpu = ($8 - $6) / 1e3 / n
		cs = ($9 - $7) / n
		spur = $10 == "n/a" ? "n/a" : sprintf("%.3f", ($13 - $10) / n)
		empty = $11 == "n/a" ? "n/a" : sprintf("%.3f", ($14 - $11) / n)
		acc = $12 == "n/a" ? "n/a" : sprintf("%.3f", ($15 - $12) / n)
		printf "%s %s %s %s %.1f %.2f %s %s %s\n", $1, $2, $3, $5, cpu, cs, spur, empty, acc
	}' >>"$RES"
}

run_config() { # ID ROUND
	CONFIG=$1
	IFS=: read -r kind workers mode tl <<EOF
$1
EOF
	start_server "$kind" "$workers" "$mode" "$tl"
	load 16 "$WARM_SECS" >/dev/null # warm-up: every worker in its loop, caches hot
	for conns in 1 16; do measure "$1" "$conns" "$2"; done
	stop_server
}

# ---- The run ----

# KIND:WORKERS:MODE[:tl]; BENCH_ACCEPT_CONFIGS chooses others (MODE may
# also be off), for a closer look at a few.
CONFIGS=""
if [ -n "${BENCH_ACCEPT_CONFIGS:-}" ]; then
	CONFIGS=$BENCH_ACCEPT_CONFIGS
	has_gunicorn=1 has_uwsgi=1 # as asked
elif [ $has_gunicorn = 1 ]; then
	CONFIGS="$CONFIGS gunicorn:4:none gunicorn:4:observe gunicorn:4:serialize gunicorn:1:none"
fi
if [ -z "${BENCH_ACCEPT_CONFIGS:-}" ]; then
	CONFIGS="$CONFIGS prefork:4:none prefork:4:observe prefork:4:serialize prefork:1:none"
fi
if [ $has_uwsgi = 1 ] && [ -z "${BENCH_ACCEPT_CONFIGS:-}" ]; then
	CONFIGS="$CONFIGS uwsgi:4:none uwsgi:4:observe uwsgi:4:serialize uwsgi:4:none:tl uwsgi:1:none"
fi

echo
echo "accept contention: $SECS s per run at 1 and 16 connections in flight, $ROUNDS rounds,"
echo "best of them (req/s the highest, CPU and switches the lowest, spurious and empty the median);"
echo "$PINNED; HTTP driven by wrk -H 'Connection: close', prefork_server by"
echo "bench_accept_load (its line protocol). Per request: server CPU us (scheduler time of every"
echo "server thread), context switches (every thread), spurious wakeups and empty accepts"
echo "(listener table); acc/req: connections the server accepted per request (listener table;"
echo "1 when each request had its connection: uWSGI serves its HTTP socket, which closes after"
echo "every response and says so); spread: how far apart the rounds' req/s were (the noise)."
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $has_gunicorn = 1 ] || echo "  gunicorn skipped: install it with apt-get install -y wrk gunicorn"
[ $has_uwsgi = 1 ] || echo "  uWSGI skipped: install it with apt-get install -y wrk uwsgi uwsgi-plugin-python3"
: >"$RES"
round=1
while [ $round -le "$ROUNDS" ]; do
	for c in $CONFIGS; do run_config "$c" "$round"; done
	round=$((round + 1))
done

# ---- The table and the ratios ----

# Column K of ID at CONNS over the rounds (4: req/s, the highest; 5: CPU
# us, 6: switches, the lowest; 7: spurious, 8: empty, 9: accepted, the median, as
# counts are not slowed down by other load); n/a when not measured.
best() {
	awk -v id="$1" -v c="$2" -v k="$3" '$1 == id && $2 == c && $k != "n/a" { print $k }' "$RES" |
		sort -n | awk -v k="$3" '{ v[NR] = $1 }
			END { if (!NR) print "n/a"; else if (k == 4) print v[NR]; else if (k <= 6) print v[1];
			      else print v[int((NR + 1) / 2)] }'
}

# How far apart the rounds' req/s of ID at CONNS are: (max - min) / max,
# in percent; a ratio that misses its target by less is within the noise.
spread() {
	awk -v id="$1" -v c="$2" '$1 == id && $2 == c {
			if (n++ == 0 || $4 > hi) hi = $4
			if (n == 1 || $4 < lo) lo = $4 }
		END { if (n < 2 || hi <= 0) print "n/a"; else printf "%.0f%%\n", 100 * (hi - lo) / hi }' "$RES"
}

label() {
	IFS=: read -r kind workers mode tl <<EOF
$1
EOF
	unit=worker
	[ "$kind" = uwsgi ] && unit=process
	[ "$workers" = 1 ] || unit=${unit}s
	[ "$unit" = processs ] && unit=processes
	case $mode in
	none) how="no shim" ;;
	*) how=$mode ;;
	esac
	[ "$tl" = tl ] && how="--thunder-lock"
	name=$kind
	[ "$kind" = uwsgi ] && name=uWSGI
	echo "$name|$workers $unit, $how"
}

echo
printf "%-9s %-28s %5s %9s %7s %11s %10s %13s %10s %8s\n" server configuration conns "req/s" \
	"spread" "CPU us/req" "ctxsw/req" "spurious/req" "empty/req" "acc/req"
for c in $CONFIGS; do
	l=$(label "$c")
	for conns in 1 16; do
		printf "%-9s %-28s %5s %9s %7s %11s %10s %13s %10s %8s\n" "${l%%|*}" "${l#*|}" "$conns" \
			"$(best "$c" "$conns" 4)" "$(spread "$c" "$conns")" "$(best "$c" "$conns" 5)" \
			"$(best "$c" "$conns" 6)" "$(best "$c" "$conns" 7)" "$(best "$c" "$conns" 8)" \
			"$(best "$c" "$conns" 9)"
	done
done

# ratio A B CONNS K OP TARGET: best K of A over best K of B, and whether it
# meets OP (>= or <=) TARGET.
ratio() {
	a=$(best "$1" "$3" "$4")
	b=$(best "$2" "$3" "$4")
	echo "$a $b" | awk -v op="$5" -v t="$6" '
		$1 == "n/a" || $2 == "n/a" || $2 == 0 { printf "%-13s", "n/a"; exit }
		{ r = $1 / $2; ok = op == ">=" ? r >= t : op == "<=" ? r <= t : -1
		  printf "%-13s", sprintf("%.3f%s", r, ok == -1 ? "" : ok ? " met" : " not met") }'
}

ratio_line() { # SERVER WHAT A B K OP TARGET
	printf "%-9s %-42s %-13s" "$1" "$2" "${6:+$6 }$7"
	for conns in 1 16; do ratio "$3" "$4" "$conns" "$5" "$6" "$7"; printf " "; done
	echo
}

echo
printf "%-9s %-42s %-13s%-13s %-13s\n" server ratio target "1 conn" "16 conns"
for s in gunicorn prefork uwsgi; do
	case " $CONFIGS " in *" $s:4:none "*) ;; *) continue ;; esac
	name=$s
	[ "$s" = uwsgi ] && name=uWSGI
	ratio_line "$name" "observe / no shim, req/s" "$s:4:observe" "$s:4:none" 4 ">=" 0.97
	ratio_line "$name" "serialize (4) / single worker, CPU us/req" "$s:4:serialize" "$s:1:none" 5 "<=" 1.05
	ratio_line "$name" "serialize / observe, req/s" "$s:4:serialize" "$s:4:observe" 4 ">=" 1.0
	if [ "$s" = uwsgi ]; then
		ratio_line "$name" "--thunder-lock (4) / single, CPU us/req" "$s:4:none:tl" \
			"$s:1:none" 5 "" "(competitor)"
		ratio_line "$name" "serialize / --thunder-lock, req/s" "$s:4:serialize" "$s:4:none:tl" 4 \
			"" "(competitor)"
	fi
done
echo "On one core a worker woken for a connection another took finds it gone before it"
echo "returns to user space: the herd shows in ctxsw/req (against the single worker) more"
echo "than in spurious/req. Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
