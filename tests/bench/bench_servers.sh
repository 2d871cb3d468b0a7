#!/bin/sh
# make bench, what observing costs a real server, side by side in one run:
# nginx-light (2 and 4 workers), gunicorn (4 sync workers) and uWSGI (4
# processes) serving "ok", loaded by wrk with `Connection: close` and with
# keep-alive, at 1 and 16 connections in flight, each server without the
# shim, under `sockshim run --accept observe`, under `--accept serialize`,
# under `strace -f` and under bpftrace, tracing the same calls. (Not
# LTTng: LTTng-UST traces only the tracepoints built into a program, not
# an unmodified server's socket calls, and its kernel tracer needs
# lttng-modules built for the running kernel; bpftrace is the kernel-side
# tracer that needs neither.)
# The variants of one server run at once (on CPU 0, wrk on CPU 1) and are
# loaded in turn, ROUNDS alternating rounds. Per run: requests/s, server
# CPU microseconds per request (every thread of the server's tree, the
# tracer included: sockshim run, strace, bpftrace; from /proc) and context
# switches per request. Per cell: the median of the rounds, their spread
# ((max - min) / median) and the median's ratio to the run without the
# shim; then the issue's targets, met or not.
# Prints; never fails on a figure. Fails, saying why, when a server does
# not start or a request fails. Loopback only, every wait bounded, every
# process it starts stopped by pid.
# Usage: bench_servers.sh [BUILD]; BENCH_SERVERS_SECONDS (1) per run,
# BENCH_SERVERS_ROUNDS (3), BENCH_SERVERS ("nginx:2 nginx:4 gunicorn:4
# uwsgi:4"), BENCH_SERVERS_VARIANTS ("none observe serialize strace
# bpftrace"); QUICK=1: one round, without nginx:4.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
HERE=$(pwd)/tests/bench
if [ "${QUICK:-0}" = 1 ]; then
	SECS=${BENCH_SERVERS_SECONDS:-1}
	ROUNDS=${BENCH_SERVERS_ROUNDS:-1}
	SERVERS=${BENCH_SERVERS:-nginx:2 gunicorn:4 uwsgi:4}
else
	SECS=${BENCH_SERVERS_SECONDS:-1}
	ROUNDS=${BENCH_SERVERS_ROUNDS:-3}
	SERVERS=${BENCH_SERVERS:-nginx:2 nginx:4 gunicorn:4 uwsgi:4}
fi
VARIANTS=${BENCH_SERVERS_VARIANTS:-none observe serialize strace bpftrace}
MODES="close keepalive"
CONNS="1 16"
START_TIMEOUT=20 # seconds for a server (or bpftrace) to be ready
STOP_TIMEOUT=10  # seconds for a server to exit after SIGTERM
PY=${PYTHON:-python3}
TOOL=$BUILD/sockshim
TMP=$(mktemp -d /tmp/sockshim-bench-servers.XXXXXX)
RES=$TMP/results
SESS="bench-servers-$$"
RUNNING="" # the variants whose servers run now
# The socket calls the shim wraps to log a socket's life, which strace and
# bpftrace trace in their columns (fork and exec: strace -f follows them).
TRACED="socket socketpair bind listen accept accept4 connect shutdown close close_range dup dup2 dup3 fcntl setsockopt"
. "$HERE/bench_lib.sh"

die() {
	echo "bench_servers: $*" >&2
	for l in "$TMP"/*/out "$TMP"/*/error.log "$TMP"/*/bpftrace.err; do
		if [ -s "$l" ]; then
			echo "bench_servers: $l (last 10 lines):" >&2
			tail -n 10 "$l" | sed 's/^/  /' >&2
		fi
	done
	exit 1
}

stop_all() {
	for v in $RUNNING; do
		eval "root=\$ROOT_$v main=\$MAIN_$v tracer=\$TRACER_$v"
		if [ -n "$tracer" ]; then stop_root "$tracer" "bpftrace ($v)"; fi
		# strace -f detaches on SIGTERM and leaves its tracee running:
		# stop the server below it first; strace then ends with it.
		if [ "$main" != "$root" ]; then stop_root "$main" "$v server"; fi
		stop_root "$root" "$v"
	done
	RUNNING=""
}

cleanup() {
	stop_all
	rm -rf "$TMP"
	rm -f /dev/shm/sockshim."$(id -u)"."$SESS"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- What can run here ----

missing=""
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
command -v gunicorn >/dev/null 2>&1 || missing="$missing gunicorn"
command -v uwsgi >/dev/null 2>&1 || missing="$missing uwsgi"
[ -f /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing="$missing uwsgi-plugin-python3"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
command -v bpftrace >/dev/null 2>&1 || missing="$missing bpftrace"
echo
if ! command -v wrk >/dev/null 2>&1; then
	echo "servers side by side: skipped, needs wrk (apt-get install -y$missing)"
	exit 0
fi
if [ -n "$missing" ]; then echo "servers side by side: missing$missing (apt-get install -y$missing)"; fi

# Why a variant or a server cannot be measured here, or nothing.
NA_strace="" NA_bpftrace=""
command -v strace >/dev/null 2>&1 || NA_strace="n/a: strace not installed"
if ! command -v bpftrace >/dev/null 2>&1; then
	NA_bpftrace="n/a: bpftrace not installed"
else
	# Loads a program on a syscall tracepoint, and says it is attached.
	# (A string of bpftrace holds 64 bytes at most: the path comes from
	# the environment of the shell its system() runs.)
	probe_out=$(BT_READY=$TMP/bpftrace-probe timeout 20 bpftrace --unsafe -e "
		tracepoint:syscalls:sys_exit_close /pid == 0/ { printf(\"x\"); }
		BEGIN { system(\"touch \$BT_READY\"); exit(); }" 2>&1) || true
	if [ ! -e "$TMP/bpftrace-probe" ]; then
		NA_bpftrace="n/a: bpftrace cannot run here ($(echo "$probe_out" | grep -v RLIMIT_MEMLOCK |
			grep -m1 ERROR | cut -c1-80))"
	fi
fi
server_na() { # kind
	case $1 in
	nginx) command -v nginx >/dev/null 2>&1 || echo "n/a: nginx-light not installed" ;;
	gunicorn) command -v gunicorn >/dev/null 2>&1 || echo "n/a: gunicorn not installed" ;;
	uwsgi) { command -v uwsgi >/dev/null 2>&1 && [ -f /usr/lib/uwsgi/plugins/python3_plugin.so ]; } ||
		echo "n/a: uwsgi, uwsgi-plugin-python3 not installed" ;;
	esac
}

if [ "$(nproc)" -ge 2 ] && taskset -c 0 true 2>/dev/null; then
	SRV_PIN="taskset -c 0" CLI_PIN="taskset -c 1" PINNED="servers and tracers on CPU 0, wrk on CPU 1"
else
	SRV_PIN="" CLI_PIN="" PINNED="not pinned (one CPU, or taskset cannot)"
fi

# ---- One variant of one server ----

# bpftrace attached to the processes of ROOT (the server's tree), one line
# per traced call at its exit (time, pid, tid, call, result) to
# /dev/null, as strace -o /dev/null; sets TRACER_<v>. Attached for the
# variant's own runs only: while a syscall tracepoint is attached, every
# system call of every process takes the kernel's slow path, which would
# slow the other variants (and bpftrace's start-up would count as its
# cost).
attach_bpftrace() { # v root
	filter=$(tree_pids "$2" | awk '{ printf "%spid == %s", (NR > 1 ? " || " : ""), $1 }')
	probes=""
	for c in $TRACED; do
		if [ -d "/sys/kernel/tracing/events/syscalls/sys_exit_$c" ] ||
			[ -d "/sys/kernel/debug/tracing/events/syscalls/sys_exit_$c" ]; then
			probes="$probes${probes:+,}tracepoint:syscalls:sys_exit_$c"
		fi
	done
	[ -n "$probes" ] || probes=$(echo "$TRACED" | awk '{ for (i = 1; i <= NF; i++)
		printf "%stracepoint:syscalls:sys_exit_%s", (i > 1 ? "," : ""), $i }')
	ready=$TMP/$1/bpftrace.ready
	rm -f "$ready"
	# shellcheck disable=SC2086
	BT_READY=$ready $SRV_PIN bpftrace --unsafe -B full -o /dev/null -e "
		BEGIN { system(\"touch \$BT_READY\"); }
		$probes /$filter/ { printf(\"%llu %d %d %s %d\\n\", nsecs, pid, tid, probe, args->ret); }" \
		>"$TMP/$1/bpftrace.err" 2>&1 </dev/null &
	eval "TRACER_$1=$!"
	deadline=$(($(date +%s) + START_TIMEOUT))
	while [ ! -e "$ready" ]; do
		eval "alive \$TRACER_$1" || die "bpftrace ($1) exited at start-up"
		[ "$(date +%s)" -lt "$deadline" ] || die "bpftrace ($1) not attached within ${START_TIMEOUT}s"
		sleep 0.1
	done
}

# start KIND WORKERS VARIANT: the server under VARIANT, serving, checked
# to map the shim asked for and no other; sets ROOT_, MAIN_, PORT_,
# TRACER_<v>.
start() {
	kind=$1 workers=$2 v=$3
	d=$TMP/$v
	lib=none
	case $v in
	none | bpftrace) set -- ;;
	observe | serialize)
		set -- "$TOOL" run --session "$SESS-$v" --accept "$v" --
		lib=$BUILD/libsockshim.so
		;;
	strace)
		# --seccomp-bpf: only the traced calls stop the server (strace's
		# cheapest way to trace some calls).
		set -- strace -f --seccomp-bpf -qq -e signal=none -o /dev/null \
			-e trace="$(echo "$TRACED" | tr ' ' ,)" --
		;;
	esac
	launch "$kind" "$workers" "$d" "$@"
	RUNNING="$RUNNING $v"
	eval "ROOT_$v=$LAUNCHED MAIN_$v=$LAUNCHED TRACER_$v="
	serving "$kind" "$workers" "$LAUNCHED" "$d"
	eval "PORT_$v=$LPORT"
	if [ "$v" = strace ]; then
		eval "MAIN_$v=\$(ps -o pid= --ppid $LAUNCHED | awk 'NR == 1 { print \$1 }')"
	fi
	why=$(maps_shim "$LAUNCHED" "$lib") || die "$kind ($v): $why"
}

# CPU 0's busy and total time so far, in ns: "busy total" (/proc/stat:
# user, nice, system, irq, softirq, steal; and with idle and iowait).
cpu0_times() {
	awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu0" {
		printf "%.0f %.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz,
			($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9) * 1e9 / hz }' /proc/stat
}

# measure SERVER VARIANT MODE CONNS ROUND: one wrk run, appended to the
# results as "SERVER VARIANT MODE CONNS ROUND req/s cpu_us/req ctxsw/req
# other%": other%, the share of CPU 0's time (where the server runs) that
# went to other programs and the hypervisor (steal) during the run: the
# noise; n/a when not pinned.
measure() {
	eval "port=\$PORT_$2 root=\$ROOT_$2"
	if [ "$2" = bpftrace ]; then attach_bpftrace "$2" "$root"; fi
	eval "tracer=\$TRACER_$2"
	pids="$(tree_pids "$root") $tracer"
	# shellcheck disable=SC2086
	u0=$(usage_of $pids)
	c0=$(cpu0_times)
	r=$(wrk_load "$port" "$4" "$SECS" "$3")
	c1=$(cpu0_times)
	# shellcheck disable=SC2086
	u1=$(usage_of $pids)
	if [ -n "$tracer" ]; then
		kill -INT "$tracer" 2>/dev/null || true # bpftrace's own stop (Ctrl-C)
		stop_root "$tracer" "bpftrace ($2)"
		eval "TRACER_$2="
	fi
	echo "$1 $2 $3 $4 $5 $r $u0 $u1 $c0 $c1" | awk -v pinned="$SRV_PIN" '{ n = $6
		other = "n/a"
		if (pinned != "" && $15 > $13) {
			other = 100 * (($14 - $12) - ($10 - $8)) / ($15 - $13)
			other = sprintf("%.0f", other < 0 ? 0 : other)
		}
		printf "%s %s %s %s %s %s %.2f %.3f %s\n", $1, $2, $3, $4, $5, $7, ($10 - $8) / 1e3 / n,
			($11 - $9) / n, other }' >>"$RES"
}

# ---- The run ----

echo "servers side by side: ${SECS} s per run, $ROUNDS round(s) alternating the variants; $PINNED."
echo "Per request: CPU us of every thread of the server's tree and its tracer (scheduler time,"
echo "/proc/PID/task/*/schedstat), context switches (voluntary + nonvoluntary, every thread)."
echo "observe, serialize: sockshim run --accept observe|serialize (this build);"
echo "strace: strace -f --seccomp-bpf -o /dev/null; bpftrace: a line per call at its exit to"
echo "/dev/null, attached for its own runs only; both trace the calls the shim logs a socket's"
echo "life by:"
echo "  $TRACED"
lttng_why="LTTng-UST sees only tracepoints built into a program; its kernel tracer needs lttng-modules"
if [ ! -d "/lib/modules/$(uname -r)" ]; then lttng_why="$lttng_why (no modules for $(uname -r) here)"; fi
echo "lttng: n/a: $lttng_why."
echo "close: wrk -H 'Connection: close'; keepalive: HTTP/1.1 keep-alive (gunicorn's sync workers"
echo "close every connection anyway). Median of the rounds, spread (max-min)/median, x: / none."
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$RES"
MEASURED=""
for s in $SERVERS; do
	kind=${s%%:*} workers=${s#*:}
	na=$(server_na "$kind")
	if [ -n "$na" ]; then
		eval "NA_SERVER_$kind=\"\$na\""
		continue
	fi
	MEASURED="$MEASURED $s"
	vs=""
	for v in $VARIANTS; do
		eval "na=\${NA_$v:-}"
		if [ -z "$na" ]; then
			start "$kind" "$workers" "$v"
			vs="$vs $v"
		fi
	done
	for v in $vs; do
		eval "port=\$PORT_$v"
		wrk_load "$port" 16 1 close >/dev/null # warm-up: workers in their loop, caches hot
	done
	round=1
	while [ $round -le "$ROUNDS" ]; do
		for mode in $MODES; do
			for conns in $CONNS; do
				for v in $vs; do measure "$s" "$v" "$mode" "$conns" "$round"; done
			done
		done
		round=$((round + 1))
	done
	stop_all
done

# fig SERVER VARIANT MODE CONNS K (6: req/s, 7: CPU us/req, 8: ctxsw/req,
# 9: other%) and FN (median_in, spread_in or best_in).
fig() {
	awk -v s="$1" -v v="$2" -v m="$3" -v c="$4" -v k="$5" \
		'$1 == s && $2 == v && $3 == m && $4 == c && $k != "n/a" { print $k }' "$RES" | $6 "$5"
}
# The best of the rounds: the highest req/s (K 6), the lowest of the
# others (other programs only ever slow a run down).
best_in() { # k
	sort -n | awk -v k="$1" '{ x[NR] = $1 } END { if (!NR) print "n/a"; else print k == 6 ? x[NR] : x[1] }'
}
# The ratio to the run without the shim, of the medians (or of FN's).
times_none() { # server variant mode conns k [fn]
	f=${6:-median_in}
	echo "$(fig "$1" "$2" "$3" "$4" "$5" "$f") $(fig "$1" none "$3" "$4" "$5" "$f")" |
		awk '$1 == "n/a" || $2 == "n/a" || $2 == 0 { print "n/a"; exit } { printf "%.3f\n", $1 / $2 }'
}
# VALUE with DECIMALS decimals, or as it is (n/a).
num() { # decimals value
	echo "$2" | awk -v d="$1" '$1 == "n/a" { print; exit } { printf "%.*f\n", d, $1 }'
}
server_name() { # kind:workers
	case ${1%%:*} in
	nginx) echo "nginx-light ${1#*:}w" ;;
	gunicorn) echo "gunicorn ${1#*:}w" ;;
	uwsgi) echo "uWSGI ${1#*:}p" ;;
	esac
}

echo
printf "%-15s %-9s %3s %-10s %9s %5s %6s %8s %5s %6s %7s %5s %6s %5s\n" server mode conn variant \
	"req/s" sprd "x" "CPU us" sprd "x" "ctxsw" sprd "x" "oth%"
for s in $SERVERS; do
	kind=${s%%:*}
	eval "na=\${NA_SERVER_$kind:-}"
	if [ -n "$na" ]; then
		printf "%-15s %s\n" "$(server_name "$s")" "$na"
		continue
	fi
	for mode in $MODES; do
		for conns in $CONNS; do
			for v in $VARIANTS; do
				eval "na=\${NA_$v:-}"
				if [ -n "$na" ]; then
					printf "%-15s %-9s %3s %-10s %s\n" "$(server_name "$s")" "$mode" "$conns" "$v" "$na"
					continue
				fi
				printf "%-15s %-9s %3s %-10s %9s %5s %6s %8s %5s %6s %7s %5s %6s %5s\n" \
					"$(server_name "$s")" "$mode" "$conns" "$v" \
					"$(num 1 "$(fig "$s" "$v" "$mode" "$conns" 6 median_in)")" \
					"$(fig "$s" "$v" "$mode" "$conns" 6 spread_in)" \
					"$(times_none "$s" "$v" "$mode" "$conns" 6)" \
					"$(num 2 "$(fig "$s" "$v" "$mode" "$conns" 7 median_in)")" \
					"$(fig "$s" "$v" "$mode" "$conns" 7 spread_in)" \
					"$(times_none "$s" "$v" "$mode" "$conns" 7)" \
					"$(num 3 "$(fig "$s" "$v" "$mode" "$conns" 8 median_in)")" \
					"$(fig "$s" "$v" "$mode" "$conns" 8 spread_in)" \
					"$(times_none "$s" "$v" "$mode" "$conns" 8)" \
					"$(num 0 "$(fig "$s" "$v" "$mode" "$conns" 9 median_in)")"
			done
		done
	done
done

# The issue's targets for observe against no shim: target SERVER MODE
# CONNS K OP LIMIT WHAT, for the medians and for the best rounds.
target() {
	printf "%-15s %-9s %3s %-12s %-9s" "$(server_name "$1")" "$2" "$3" "$7" "$5 $6"
	for f in median_in best_in; do
		times_none "$1" observe "$2" "$3" "$4" "$f" | awk -v op="$5" -v t="$6" '
			$1 == "n/a" { printf " %-15s", "n/a"; exit }
			{ ok = op == ">=" ? $1 >= t : $1 <= t; printf " %-15s", $1 (ok ? " met" : " not met") }'
	done
	echo
}
echo
echo "targets, observe / none: of the medians, and of the best rounds (the highest req/s, the"
echo "lowest CPU: other programs only ever add); a miss smaller than the spread is in the noise."
echo "oth%: the median share of CPU 0 other programs and the hypervisor took during the runs."
printf "%-15s %-9s %3s %-12s %-9s %-15s %-15s\n" server mode conn ratio target median best
for s in $MEASURED; do
	case $s in
	nginx:*)
		for c in 16 1; do
			target "$s" close "$c" 7 "<=" 1.03 "CPU us/req"
			target "$s" close "$c" 6 ">=" 0.97 "req/s"
		done
		for c in 16 1; do target "$s" keepalive "$c" 7 "<=" 1.01 "CPU us/req"; done
		;;
	*)
		for m in $MODES; do
			for c in 16 1; do target "$s" "$m" "$c" 7 "<=" 1.02 "CPU us/req"; done
		done
		;;
	esac
done
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
