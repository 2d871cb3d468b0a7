#!/bin/sh
# make bench: the shim's overhead, side by side with a run without it, in
# one run: per call, the ring, the readers over 10,000s of sockets,
# start-up, real servers without the shim, under observe, serialize,
# strace and bpftrace (bench_servers.sh), the shim's instructions per
# request inside nginx (bench_nginx_instr.sh) and inside gunicorn and
# uWSGI (bench_py_instr.sh), idle pools' wakeups
# (bench_idle.sh), accept contention (bench_accept.sh) and the herd as the
# kernel counts it (bench_herd.py). Prints figures and ratios; asserts
# nothing (machines are noisy: the instruction counts from callgrind are
# the repeatable figures). About 30 minutes on two cores (bench_servers.sh
# 15 of them; 38 with other work on the machine); QUICK=1 in the
# environment: 13 minutes, 3 rounds of each server figure.
#     bench.sh [BUILD [calls]]   calls: the per-call table only
set -eu
BUILD=${1:-build}
ONLY=${2:-all}
LIB=$(cd "$BUILD" && pwd)/libsockshim.so
CALLS=$BUILD/bench/bench_calls
SESSION="bench-$$"
export SOCKSHIM_SESSION="$SESSION"
trap 'rm -f /dev/shm/sockshim.$(id -u).$SESSION' EXIT INT TERM

# Pin to one core when we can: fewer migrations, steadier figures.
PIN=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then PIN="taskset -c 1"; fi

# Instructions per call from callgrind: the difference between N and 2N
# calls, so start-up costs cancel out (N = 100000: what start-up varies by
# run is then below one instruction per call). socket, accept, accept_addr
# and connect run N/20 of their pairs (one loopback connection each).
instr_per_call() { # preload(0|1) what
	if ! command -v valgrind >/dev/null 2>&1; then echo "n/a"; return; fi
	total() {
		if [ "$1" = 1 ]; then
			# A fresh session each run: a connection's cost depends on
			# how full the ledger is.
			rm -f "/dev/shm/sockshim.$(id -u).$SESSION"
			LD_PRELOAD="$LIB" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
				"$CALLS" "$2" "$3" 2>&1
		else
			valgrind --tool=callgrind --callgrind-out-file=/dev/null "$CALLS" "$2" "$3" 2>&1
		fi | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
	}
	a=$(total "$1" "$2" 100000)
	b=$(total "$1" "$2" 200000)
	case $2 in
	socket | accept | accept_addr | connect) echo $(( (b - a) / 5000 )) ;;
	*) echo $(( (b - a) / 100000 )) ;;
	esac
}

# What each bench_calls case calls.
label() {
	case $1 in
	fcntl) echo "fcntl(F_SETFD)" ;;
	fcntl_getfl) echo "fcntl(F_GETFL)" ;;
	fcntl_dupfd) echo "fcntl(F_DUPFD)" ;;
	setsockopt_linger) echo "setsockopt(SO_LINGER)" ;;
	nodelay) echo "setsockopt(TCP_NODELAY)" ;;
	socket) echo "socket()+close() pair" ;;
	accept) echo "accept(NULL)+close()" ;;
	accept_addr) echo "accept4(addr)+close()" ;;
	connect) echo "socket()+connect()+close()" ;;
	*) echo "$1()" ;;
	esac
}
UNTRACKED="read write close dup dup2 dup3 fcntl fcntl_getfl fcntl_dupfd setsockopt setsockopt_linger nodelay"

# Best of 5 alternating runs of each variant (QUICK=1: 2), ns per call.
NS_RUNS=5
[ "${QUICK:-0}" = 1 ] && NS_RUNS=2
ns_per_call() { # preload(0|1) what n
	for i in $(seq "$NS_RUNS"); do
		if [ "$1" = 1 ]; then
			rm -f "/dev/shm/sockshim.$(id -u).$SESSION"
			LD_PRELOAD="$LIB" $PIN "$CALLS" "$2" "$3"
		else
			$PIN "$CALLS" "$2" "$3"
		fi
	done | awk '{print $2}' | sort -n | head -1
}

echo "sockshim bench: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf "%-46s %12s %12s %10s %s\n" "per call" "without" "with shim" "overhead" "target"
for what in $UNTRACKED; do
	base=$(instr_per_call 0 "$what")
	shim=$(instr_per_call 1 "$what")
	printf "%-46s %12s %12s %10s %s\n" "$(label "$what") untracked, instructions" "$base" "$shim" \
		"$( [ "$base" = n/a ] && echo n/a || echo "+$((shim - base))")" "<= +15"
done
CONNECTION="socket accept accept_addr connect"
for what in $CONNECTION; do
	base=$(instr_per_call 0 "$what")
	shim=$(instr_per_call 1 "$what")
	printf "%-46s %12s %12s %10s\n" "$(label "$what"), instructions" "$base" "$shim" \
		"$( [ "$base" = n/a ] && echo n/a || echo "+$((shim - base))")"
done
# A long-running server's ledger is full of released entries: each new
# connection's claim searches its probe window and takes the entry
# released longest ago. A 256-entry ledger fills within the run, so the
# difference measures that steady state: instructions and first-level
# data cache read misses (callgrind's cache simulation) per connection.
steady() { # n
	if ! command -v valgrind >/dev/null 2>&1; then echo "n/a n/a"; return; fi
	rm -f "/dev/shm/sockshim.$(id -u).$SESSION"
	SOCKSHIM_MAX_SOCKETS=256 LD_PRELOAD="$LIB" valgrind --tool=callgrind --cache-sim=yes \
		--callgrind-out-file=/dev/stdout "$CALLS" accept_addr "$1" 2>/dev/null | awk '
		/^events:/ { for (i = 2; i <= NF; i++) col[$i] = i }
		/^summary:/ { print $col["Ir"], $col["D1mr"], $col["D1mw"], $col["DLmr"], $col["DLmw"] }'
	rm -f "/dev/shm/sockshim.$(id -u).$SESSION"
}
a=$(steady 100000)
b=$(steady 200000)
# per_conn FIELD FORMAT: (2N - N) / 5000 connections of summary field FIELD.
per_conn() {
	echo "$a $b" | awk -v f="$1" -v fmt="$2" '$1 == "n/a" { print "n/a"; next } { printf fmt, ($(f + 5) - $f) / 5000 }'
}
printf "%-46s %12s %12s\n" "accept4(addr)+close(), full ledger, instructions" "" "$(per_conn 1 %d)"
printf "%-46s %12s %12s\n" "accept4(addr)+close(), full ledger, D1 misses" "" \
	"$(per_conn 2 %.1f) read, $(per_conn 3 %.1f) write"
printf "%-46s %12s %12s\n" "accept4(addr)+close(), full ledger, LL misses" "" \
	"$(per_conn 4 %.1f) read, $(per_conn 5 %.1f) write"
for what in $UNTRACKED; do
	base=$(ns_per_call 0 "$what" 1000000)
	shim=$(ns_per_call 1 "$what" 1000000)
	printf "%-46s %12s %12s %10s\n" "$(label "$what") untracked, ns" "$base" "$shim" \
		"$(echo "$base $shim" | awk '{printf "%.2fx", $2 / $1}')"
done
base=$(ns_per_call 0 socket 2000000)
shim=$(ns_per_call 1 socket 2000000)
printf "%-46s %12s %12s %10s %s\n" "socket()+close() pair, ns" "$base" "$shim" \
	"$(echo "$base $shim" | awk '{printf "%.2fx", $2 / $1}')" "<= 1.10x"
for what in accept accept_addr connect; do
	base=$(ns_per_call 0 "$what" 400000)
	shim=$(ns_per_call 1 "$what" 400000)
	printf "%-46s %12s %12s %10s\n" "$(label "$what"), ns" "$base" "$shim" \
		"$(echo "$base $shim" | awk '{printf "%.2fx", $2 / $1}')"
done
[ "$ONLY" = calls ] && exit 0
echo
echo "ring (best of 3 runs)"
best_of() { # key
	for i in 1 2 3; do $PIN "$BUILD/bench/bench_ring" 2000000; done |
		awk -v k="$1" '$1 == k { if (b == "" || (k ~ /per_s/ ? $2 > b : $2 < b)) b = $2 } END { print b }'
}
printf "%-34s %12s %s\n" "append, 1 writer, ns" "$(best_of append_ns_1_writer)" "<= 25"
printf "%-34s %12s %s\n" "append, 2 writers, ns" "$(best_of append_ns_2_writers)" "<= 60"
printf "%-34s %12s %s\n" "clock + append, 1 writer, ns" "$(best_of append_with_clock_ns_1_writer)" "(what an event costs)"
printf "%-34s %12s %s\n" "clock + append, 2 writers, ns" "$(best_of append_with_clock_ns_2_writers)" ""
printf "%-34s %12s %s\n" "reader, events/s" "$(best_of reader_events_per_s)" ">= 5000000"
echo
# closewait over 10,000 sockets in CLOSE_WAIT, made on loopback by a program
# under the shim (so the ledger holds them all); best and median of 7 runs,
# output to a file. Needs RLIMIT_NOFILE >= 10256 (raised when allowed).
CW_SESSION="bench-cw-$$"
trap 'rm -f /dev/shm/sockshim.$(id -u).$SESSION /dev/shm/sockshim.$(id -u).$CW_SESSION' EXIT INT TERM
echo "closewait (10000 sockets in CLOSE_WAIT, best and median of 7 runs)"
if cw=$("$BUILD/sockshim" run --session "$CW_SESSION" --max-sockets 65536 -- \
	"$BUILD/bench/bench_closewait" "$(cd "$BUILD" && pwd)/sockshim" "$CW_SESSION" 10000 2>&1); then
	get() { echo "$cw" | awk -v k="$1" '$1 == k { print $2 }'; }
	printf "%-34s %12s %s\n" "closewait, table, ms (best)" "$(get closewait_ms_best)" "< 100 ms"
	printf "%-34s %12s\n" "closewait, table, ms (median)" "$(get closewait_ms_median)"
	printf "%-34s %12s %s\n" "closewait --json, ms (best)" "$(get closewait_json_ms_best)" "< 100 ms"
	printf "%-34s %12s\n" "closewait --json, ms (median)" "$(get closewait_json_ms_median)"
	echo "$cw" | sed -n 's/^closewait_summary /  counted: /p'
else
	echo "  closewait benchmark failed: $cw"
fi
# timewait over 30,000 TIME_WAIT sockets and conns over 10,000 connections
# (ESTABLISHED, FIN_WAIT2 and CLOSE_WAIT, both ends held), all the
# session's, made on loopback under the shim (bench_tw_conns.c); best and
# median of 7 runs each, spawn to exit. timewait reads every TIME_WAIT of
# the host: the summary's time_wait is how many there were (another
# program's load shows), attributed how many were the session's.
TW_SESSION="bench-tw-$$"
CN_SESSION="bench-cn-$$"
trap 'rm -f /dev/shm/sockshim.$(id -u).$SESSION /dev/shm/sockshim.$(id -u).$CW_SESSION \
	/dev/shm/sockshim.$(id -u).$TW_SESSION /dev/shm/sockshim.$(id -u).$CN_SESSION' EXIT INT TERM
echo
echo "timewait (30000 TIME_WAIT) and conns (10000 connections), best and median of 7 runs"
for what in timewait conns; do
	if [ $what = timewait ]; then s=$TW_SESSION n=30000; else s=$CN_SESSION n=10000; fi
	if out=$("$BUILD/sockshim" run --session "$s" --max-sockets 131072 -- \
		"$BUILD/bench/bench_tw_conns" "$(cd "$BUILD" && pwd)/sockshim" "$s" $what $n 2>&1); then
		get() { echo "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
		printf "%-34s %12s %s\n" "$what, table, ms (best)" "$(get ${what}_ms_best)" "< 150 ms"
		printf "%-34s %12s\n" "$what, table, ms (median)" "$(get ${what}_ms_median)"
		printf "%-34s %12s %s\n" "$what --json, ms (best)" "$(get ${what}_json_ms_best)" "< 150 ms"
		printf "%-34s %12s\n" "$what --json, ms (median)" "$(get ${what}_json_ms_median)"
		echo "$out" | sed -n "s/^${what}_summary /  counted: /p"
		if [ $what = timewait ]; then
			got=$(echo "$out" | sed -n 's/^timewait_summary .*"attributed":\([0-9]*\).*/\1/p')
			if [ "${got:-0}" -lt $n ]; then
				echo "  note: $got of the $n in TIME_WAIT when measured (the host's tcp_max_tw_buckets," \
					"$(cat /proc/sys/net/ipv4/tcp_max_tw_buckets 2>/dev/null), full of others'?)"
			fi
		fi
	else
		echo "  $what benchmark failed: $out"
	fi
	rm -f "/dev/shm/sockshim.$(id -u).$s"
done
sh "$(dirname "$0")/bench_startup.sh" "$BUILD"
sh "$(dirname "$0")/bench_servers.sh" "$BUILD"
# The same servers' CPU per request without the shim and under observe,
# loaded at the same time rather than in turn (bench_ab.sh: the host's
# drift, which the table above pairs by round, then hits both alike), with
# a second run without the shim to show the method's own spread.
echo
echo "nginx-light, CPU per request, loaded at the same time (bench_ab.sh, $([ "${QUICK:-0}" = 1 ] && echo 4 || echo 8) rounds of 3 s)"
for mode in close keepalive; do
	for conns in 1 16; do
		MODE=$mode CONNS=$conns ROUNDS=$([ "${QUICK:-0}" = 1 ] && echo 4 || echo 8) \
			sh "$(dirname "$0")/bench_ab.sh" none "$BUILD" | sed -n '/^  /p' |
			sed "s/^/  $mode, $conns in flight: /"
	done
done
sh "$(dirname "$0")/bench_nginx_instr.sh" "$BUILD"
sh "$(dirname "$0")/bench_py_instr.sh" "$BUILD"
sh "$(dirname "$0")/bench_idle.sh" "$BUILD"
sh "$(dirname "$0")/bench_accept.sh" "$BUILD"
${PYTHON:-python3} "$(dirname "$0")/bench_herd.py" "$BUILD"
