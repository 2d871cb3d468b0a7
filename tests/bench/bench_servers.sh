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
# uWSGI is launched once per mode: for close on its HTTP socket, which
# closes after every response and says `Connection: close`, for keep-alive
# on its HTTP/1.1 socket, which never honours a request's close (see
# launch in bench_lib.sh); each cell prints the connections accepted per
# request (the shim's listener table), so that a close cell shows it is one.
# The variants of one server run at once (on CPU 0, wrk on CPU 1), each
# warmed up first to its steady state: wrk (close, 16 in flight) until it
# served 1.5x the ledger's entries and, under the shim, no ledger entry is
# left that no socket has had (after that, every connection reclaims a
# released entry, as in a server that has run for a while; before it,
# each touches fresh shared pages). Then per cell (server, close or
# keep-alive, connections in flight) ROUNDS rounds, chained: a run
# without the shim, the variants' runs (the order reversed every round),
# a run without the shim, ... (ABBA: none, observe, serialize, none,
# serialize, observe, none, ...). The host's speed drifts over seconds
# (other tenants): each variant's run is compared with the runs without
# the shim around it, interpolated to its place in the chain (the mean of
# the two when it sits between them), and the ratio reported is the
# median of those per-round ratios, with their min-max. The tracers cost
# many times the noise: they run in the first TRACER_ROUNDS rounds only,
# in a block of their own between two runs without the shim, and not at
# all with keep-alive at 1 in flight (no call they trace per request
# there; left out to keep make bench within 25 minutes, said in the
# table).
# Per run: requests/s, server CPU microseconds per request (every thread
# of the server's tree, the tracer included: sockshim run, strace,
# bpftrace; from /proc), context switches per request, and the share of
# CPU 0 other programs took (a round whose runs saw more than OTH_LIMIT%
# is flagged, and the targets are also given without the flagged rounds;
# nothing is dropped silently).
# Prints; never fails on a figure. Fails, saying why, when a server does
# not start or a request fails. Loopback only, every wait bounded, every
# process it starts stopped by pid.
# Usage: bench_servers.sh [BUILD]; BENCH_SERVERS_SECONDS (1) per run,
# BENCH_SERVERS_ROUNDS (10), BENCH_SERVERS_TRACER_ROUNDS (3),
# BENCH_SERVERS ("nginx:2 nginx:4 gunicorn:4 uwsgi:4"),
# BENCH_SERVERS_VARIANTS ("none observe serialize strace bpftrace"),
# BENCH_SERVERS_WARMUP (connections per server before measuring: 1.5x
# the ledger's entries; under the shim, also until the ledger has no
# never-used entry); QUICK=1: 3 rounds, tracers in 1, without nginx:4.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
CHECKOUT=$(pwd)
HERE=$CHECKOUT/tests/bench
if [ "${QUICK:-0}" = 1 ]; then
	SECS=${BENCH_SERVERS_SECONDS:-1}
	ROUNDS=${BENCH_SERVERS_ROUNDS:-3}
	TRACER_ROUNDS=${BENCH_SERVERS_TRACER_ROUNDS:-1}
	SERVERS=${BENCH_SERVERS:-nginx:2 gunicorn:4 uwsgi:4}
else
	SECS=${BENCH_SERVERS_SECONDS:-1}
	ROUNDS=${BENCH_SERVERS_ROUNDS:-10}
	TRACER_ROUNDS=${BENCH_SERVERS_TRACER_ROUNDS:-3}
	SERVERS=${BENCH_SERVERS:-nginx:2 nginx:4 gunicorn:4 uwsgi:4}
fi
VARIANTS=${BENCH_SERVERS_VARIANTS:-none observe serialize strace bpftrace}
# The variants, none first (every other one is compared with it: it runs
# even when not asked for).
SHOWN=none$(echo "$VARIANTS" | awk '{ for (i = 1; i <= NF; i++) if ($i != "none") printf " %s", $i }')
MODES="close keepalive"
CONNS="1 16"
START_TIMEOUT=20 # seconds for a server (or bpftrace) to be ready
STOP_TIMEOUT=10  # seconds for a server to exit after SIGTERM
OTH_LIMIT=10     # % of CPU 0 taken by other programs that flags a round as noisy
WARM_LIMIT=180   # seconds a server's warm-up may take at most
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
		# shellcheck disable=SC2154 # main, root: set by the eval above
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
# shellcheck disable=SC2034 # NA_<variant> is read by eval "\${NA_$v}"
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
		# shellcheck disable=SC2034
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

# The session's listener counters (accepts), to count the connections of a run.
build_helper bench_accept_probe || die "cannot build tests/bench/bench_accept_probe.c"
PROBE=$BUILD/bench/bench_accept_probe

pin_server_client
if [ -n "$SRV_PIN" ]; then
	PINNED="servers and tracers on CPU 0, wrk on CPU 1"
else
	PINNED="not pinned (one CPU, or taskset cannot)"
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

# The segment of variant V's session (observe, serialize), or nothing.
segment_of() { # v
	case $1 in
	observe | serialize) echo "/dev/shm/sockshim.$(id -u).$SESS-$1" ;;
	esac
}

# "reclaimed full": the ledger counters of variant V's session (0 0
# without the shim): entries of released sockets given to new ones, and
# sockets not recorded for want of a free entry.
ledger_counters() { # v
	seg=$(segment_of "$1")
	if [ -z "$seg" ] || [ -z "$COUNTER_OFFSETS" ]; then
		echo "0 0"
		return
	fi
	# shellcheck disable=SC2086 # two numbers, split on purpose
	set -- $COUNTER_OFFSETS
	echo "$(od -An -t u8 -j "$1" -N 8 "$seg") $(od -An -t u8 -j "$2" -N 8 "$seg")" |
		awk 'NF == 2 { print $1, $2; next } { print "0 0" }'
}

# The connections variant V's server accepted so far (the session's
# listener table, every accept counted by the shim), or - without the shim.
accepts_of() { # v
	case $1 in
	observe | serialize)
		"$PROBE" "$SESS-$1" | awk '{ for (i = 1; i < NF; i += 2) if ($i == "accepts") print $(i + 1) }' ;;
	*) echo - ;;
	esac
}

# warm_up SERVER V: wrk (close, 16 in flight) on variant V's server until
# it served WARM connections and, under the shim, its ledger has no entry
# no socket has had yet; at most WARM_LIMIT seconds. Under the shim, it
# stops early when fewer than half of a wrk run's connections reached the
# ledger (took a never-used entry, reclaimed one or were counted full):
# then the server answered many of wrk's requests on one connection (wrk
# counts requests: uWSGI's HTTP/1.1 socket keeps a connection open after a
# request that says `Connection: close`: 59,788 requests on 4 connections
# in 2 s, every connection accepted recorded), and its ledger would never
# fill. Appends "SERVER V connections unused capacity run
# recorded" to $TMP/warm (unused, capacity: - without the shim; run,
# recorded: that last run's connections and how many reached the ledger,
# or 0 0). A launch that serves keep-alive only (uWSGI's HTTP/1.1
# socket) is warmed up with keep-alive requests, WARM of them: its runs
# accept a connection or so per request in flight, so the ledger's state
# does not matter to them, and its connections would never fill it.
warm_up() { # server v
	eval "port=\$PORT_$2"
	seg=$(segment_of "$2")
	wmode=close
	case " $LAUNCH " in *" close "*) ;; *) wmode=keepalive seg= ;; esac
	served=0 rate=0 fill="- -" short="0 0" before=""
	deadline=$(($(date +%s) + WARM_LIMIT))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if [ -n "$seg" ]; then
			fill=$("$PY" "$HERE/ledger_state.py" "$CHECKOUT" fill "$seg" | awk '{ print $2, $1 }') ||
				die "cannot read the ledger of $seg"
			now="${fill%% *} $(ledger_counters "$2")"
			if [ -n "$before" ] && [ "$served" -ge "$WARM" ]; then
				recorded=$(echo "$before $now" | awk '{ print ($1 - $4) + ($5 - $2) + ($6 - $3) }')
				if [ $((recorded * 2)) -lt "${r%% *}" ]; then
					short="${r%% *} $recorded"
					break
				fi
			fi
			before=$now
		fi
		unused=${fill%% *}
		if [ "$served" -ge "$WARM" ] && { [ "$unused" = - ] || [ "$unused" = 0 ]; }; then break; fi
		# Long enough for what is left at the rate seen (1 s to learn it),
		# in runs of 5 s at most (the rate changes).
		secs=$(echo "$WARM $served $rate" | awk '{ s = $3 > 0 ? int(($1 - $2) / $3) + 1 : 1
			print s < 1 ? 1 : (s > 5 ? 5 : s) }')
		# shellcheck disable=SC2154 # port: set by the eval above
		r=$(wrk_load "$port" 16 "$secs" "$wmode")
		served=$((served + ${r%% *}))
		rate=${r#* }
	done
	echo "$1 $2 $served $fill $short $wmode" >>"$TMP/warm"
}

# measure SERVER VARIANT MODE CONNS ROUND SEQ: one wrk run, appended to
# the results as "SERVER VARIANT MODE CONNS ROUND SEQ req/s cpu_us/req
# ctxsw/req other% requests reclaimed full accepted": SEQ, its place in the
# cell's chain of runs; other%, the share of CPU 0's time (where the
# server runs) that went to other programs and the hypervisor (steal)
# during the run: the noise, n/a when not pinned; reclaimed and full, how
# much the session's ledger counters grew (0 without the shim); accepted,
# the connections the server accepted during the run (the listener table:
# - without the shim).
measure() {
	eval "port=\$PORT_$2 root=\$ROOT_$2"
	if [ "$2" = bpftrace ]; then attach_bpftrace "$2" "$root"; fi
	eval "tracer=\$TRACER_$2"
	pids="$(tree_pids "$root") $tracer"
	l0=$(ledger_counters "$2")
	a0=$(accepts_of "$2")
	# shellcheck disable=SC2086
	u0=$(usage_of $pids)
	c0=$(cpu0_times)
	r=$(wrk_load "$port" "$4" "$SECS" "$3")
	c1=$(cpu0_times)
	# shellcheck disable=SC2086
	u1=$(usage_of $pids)
	l1=$(ledger_counters "$2")
	a1=$(accepts_of "$2")
	if [ -n "$tracer" ]; then
		kill -INT "$tracer" 2>/dev/null || true # bpftrace's own stop (Ctrl-C)
		stop_root "$tracer" "bpftrace ($2)"
		eval "TRACER_$2="
	fi
	echo "$1 $2 $3 $4 $5 $6 $r $u0 $u1 $c0 $c1 $l0 $l1 $a0 $a1" | awk -v pinned="$SRV_PIN" '{ n = $7
		other = "n/a"
		if (pinned != "" && $16 > $14) {
			other = 100 * (($15 - $13) - ($11 - $9)) / ($16 - $14)
			other = sprintf("%.0f", other < 0 ? 0 : other)
		}
		printf "%s %s %s %s %s %s %s %.2f %.3f %s %d %d %d %s\n", $1, $2, $3, $4, $5, $6, $8,
			($11 - $9) / 1e3 / n, ($12 - $10) / n, other, n, $19 - $17, $20 - $18,
			$21 == "-" ? "-" : $22 - $21 }' >>"$RES"
}

# Why variant V is not measured in cell MODE CONNS, or nothing: the
# tracers are left out of keep-alive at 1 in flight, where they trace no
# call per request (a connection's calls are at its start and end), to
# keep make bench within 25 minutes.
cell_na() { # v mode conns
	case $1:$2:$3 in
	strace:keepalive:1 | bpftrace:keepalive:1)
		echo "not measured: keep-alive at 1 in flight makes no traced call per request" ;;
	esac
}

# The variants' runs of round ROUND of cell MODE CONNS, in the order of
# that round (reversed every other round): the shim's variants; in the
# first TRACER_ROUNDS rounds, a run without the shim and the tracers
# after them.
round_runs() { # round mode conns
	shims="" tracers=""
	for v in $vs; do
		[ -z "$(cell_na "$v" "$2" "$3")" ] || continue
		case $v in
		none) ;;
		strace | bpftrace) [ "$1" -gt "$TRACER_ROUNDS" ] || tracers="$tracers $v" ;;
		*) shims="$shims $v" ;;
		esac
	done
	if [ $(($1 % 2)) = 0 ]; then
		shims=$(echo "$shims" | awk '{ for (i = NF; i >= 1; i--) printf " %s", $i }')
		tracers=$(echo "$tracers" | awk '{ for (i = NF; i >= 1; i--) printf " %s", $i }')
	fi
	echo "$shims${tracers:+ none}$tracers"
}

# ---- The run ----

echo "servers side by side: ${SECS} s per run, $ROUNDS round(s) per cell, the tracers in" \
	"$TRACER_ROUNDS of them; $PINNED."
echo "Steady state: each server (every variant, none too) first served the warm-up connections"
echo "below with wrk (close, 16 in flight); under the shim, until every ledger entry had had a"
echo "socket, so that each connection measured reclaims a released entry, as in a long-running"
echo "server."
echo "Rounds chained ABBA: none, observe, serialize, none, serialize, observe, none, ... (tracers:"
echo "none, strace, bpftrace, none in their rounds). A ratio x is per round: the variant's run"
echo "against the runs without the shim around it (interpolated to its place: the host's speed"
echo "drifts over seconds); the table gives the median of the rounds' ratios and their min-max,"
echo "and the median of the absolute figures. none's own x: each run without the shim against"
echo "the ones around it, what the pairing gives when nothing differs (the noise floor)."
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
echo "close every connection anyway). uWSGI: one launch per mode, its HTTP socket saying"
echo "'Connection: close' for close, its HTTP/1.1 socket for keepalive (which keeps a connection"
echo "open even after a request that says close: one socket cannot serve both)."
echo "acc/req: the connections the server accepted per request answered, over the cell's runs"
echo "under the shim (its listener table counts every accept; - without the shim): 1 for a close"
echo "run that is one; about conns / requests for keep-alive."
echo "oth%: the median share of CPU 0 other programs and the hypervisor took during the runs;"
echo ">${OTH_LIMIT}%: the rounds in which it exceeded ${OTH_LIMIT}% in the variant's run or a run it is"
echo "compared with (kept in the figures; the targets below are also given without them)."
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$RES"
: >"$TMP/warm"
COUNTER_OFFSETS=$("$PY" "$HERE/ledger_state.py" "$CHECKOUT" counters) ||
	die "cannot read the segment's layout (tests/integration/segment.py)"
started=$(date +%s)
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
	for v in $SHOWN; do
		eval "na=\${NA_$v:-}"
		if [ -z "$na" ]; then vs="$vs $v"; fi
	done
	# One launch of every variant for the modes it serves (uWSGI: one for
	# close, one for keep-alive), warmed up, measured, stopped.
	for launch in $(launch_modes "$kind"); do
		LAUNCH=$(echo "$launch" | tr , " ")
		# shellcheck disable=SC2034 # read by launch (bench_lib.sh)
		HTTP_MODE=${LAUNCH%% *}
		for v in $vs; do start "$kind" "$workers" "$v"; done
		# The connections to warm up with: 1.5x the ledger's entries (the
		# windows of its last free entries fill past its capacity).
		cap=${SOCKSHIM_MAX_SOCKETS:-16384}
		for v in $vs; do
			seg=$(segment_of "$v")
			if [ -n "$seg" ]; then
				cap=$("$PY" "$HERE/ledger_state.py" "$CHECKOUT" fill "$seg" | awk '{ print $1 }') ||
					die "cannot read the ledger of $seg"
				break
			fi
		done
		WARM=${BENCH_SERVERS_WARMUP:-$((cap * 3 / 2))}
		for v in $vs; do warm_up "$s" "$v"; done
		for mode in $LAUNCH; do
			for conns in $CONNS; do
				seq=1
				measure "$s" none "$mode" "$conns" 1 $seq
				round=1
				while [ $round -le "$ROUNDS" ]; do
					for v in $(round_runs $round "$mode" "$conns"); do
						seq=$((seq + 1))
						measure "$s" "$v" "$mode" "$conns" $round $seq
					done
					seq=$((seq + 1))
					measure "$s" none "$mode" "$conns" $round $seq
					round=$((round + 1))
				done
			done
		done
		stop_all
	done
done
elapsed=$(($(date +%s) - started))

# The figures of every cell and variant, from the results, one line each:
# "SERVER VARIANT MODE CONNS" then, for req/s, CPU us/req and ctxsw/req
# (K = 7, 8, 9 of a result): the median of the runs, and the median, min
# and max of the per-round ratios to the runs without the shim around
# each (interpolated to its place in the chain); then the median oth%, the
# rounds flagged noisy (oth% > OTH_LIMIT in the run or a run it is
# compared with), the rounds, and the median ratios of CPU and req/s
# without the flagged rounds (n/a when all were), and the spread of the
# CPU runs ((max - min) / median, %); last, the connections accepted per
# request over all the runs (under the shim; n/a without it).
summarize() {
	awk -v lim="$OTH_LIMIT" '
	function median(a, n,    i, j, t, b) {
		if (!n) return "n/a"
		for (i = 1; i <= n; i++) b[i] = a[i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && b[j - 1] > b[j]; j--) { t = b[j]; b[j] = b[j - 1]; b[j - 1] = t }
		return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
	}
	function lo(a, n,    i, m) { if (!n) return "n/a"; m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
	function hi(a, n,    i, m) { if (!n) return "n/a"; m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
	function noisy(o) { return o != "n/a" && o + 0 > lim }
	function put(arr, cnt, key, val) { arr[key, ++cnt[key]] = val }
	function list(arr, cnt, key, out,    i) { for (i = 1; i <= cnt[key]; i++) out[i] = arr[key, i]; return cnt[key] + 0 }
	{
		cell = $1 SUBSEP $3 SUBSEP $4
		if (!(cell in seen)) { seen[cell] = 1; cells[++ncells] = cell }
		v[cell, $6] = $2; oth[cell, $6] = $10
		for (k = 7; k <= 9; k++) x[cell, $6, k] = $k
		if ($6 > last[cell]) last[cell] = $6
		key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4
		if (!(key in keyseen)) { keyseen[key] = 1; keys[++nkeys] = key }
		for (k = 7; k <= 9; k++) put(abs, nabs, key SUBSEP k, $k)
		if ($10 != "n/a") put(othv, noth, key, $10)
		if ($14 != "-") { acc[key] += $14; accreq[key] += $11 }
	}
	END {
		for (c = 1; c <= ncells; c++) {
			cell = cells[c]
			split(cell, part, SUBSEP)
			for (p = 1; p <= last[cell]; p++) {
				if (!((cell, p) in v)) continue
				# The runs without the shim before and after (other than p).
				for (a = p - 1; a >= 1 && v[cell, a] != "none"; a--) ;
				for (b = p + 1; b <= last[cell] && v[cell, b] != "none"; b++) ;
				if (a < 1 || b > last[cell]) continue
				key = part[1] SUBSEP v[cell, p] SUBSEP part[2] SUBSEP part[3]
				bad = noisy(oth[cell, p]) || noisy(oth[cell, a]) || noisy(oth[cell, b])
				rounds[key]++
				if (bad) flagged[key]++
				for (k = 7; k <= 9; k++) {
					ref = x[cell, a, k] + (x[cell, b, k] - x[cell, a, k]) * (p - a) / (b - a)
					if (ref <= 0) continue
					put(ratio, nratio, key SUBSEP k, x[cell, p, k] / ref)
					if (!bad) put(quiet, nquiet, key SUBSEP k, x[cell, p, k] / ref)
				}
			}
		}
		for (i = 1; i <= nkeys; i++) {
			key = keys[i]
			line = key
			gsub(SUBSEP, " ", line)
			for (k = 7; k <= 9; k++) {
				n = list(abs, nabs, key SUBSEP k, vals)
				line = line " " median(vals, n)
				if (k == 8) {
					m = median(vals, n)
					line = line " " (n < 2 || m <= 0 ? "n/a" : sprintf("%.0f%%", 100 * (hi(vals, n) - lo(vals, n)) / m))
				}
				n = list(ratio, nratio, key SUBSEP k, vals)
				line = line " " median(vals, n) " " lo(vals, n) " " hi(vals, n)
			}
			n = list(othv, noth, key, vals)
			line = line " " median(vals, n) " " flagged[key] + 0 " " rounds[key] + 0
			n = list(quiet, nquiet, key SUBSEP 8, vals)
			line = line " " median(vals, n)
			n = list(quiet, nquiet, key SUBSEP 7, vals)
			line = line " " median(vals, n) " " n
			line = line " " (accreq[key] > 0 ? sprintf("%.3f", acc[key] / accreq[key]) : "n/a")
			print line
		}
	}' "$RES"
}
summarize >"$TMP/summary"

# Field F of the summary of SERVER VARIANT MODE CONNS (n/a without one):
# 5 req/s, 6-8 its ratio (median, min, max), 9 CPU us/req, 10 their
# spread, 11-13 its ratio, 14 ctxsw/req, 15-17 its ratio, 18 oth%, 19
# rounds flagged noisy, 20 rounds, 21 CPU ratio without the flagged
# rounds, 22 req/s ratio without them, 23 how many rounds those are, 24
# connections accepted per request (n/a without the shim).
sum_of() { # server variant mode conns f
	awk -v s="$1" -v v="$2" -v m="$3" -v c="$4" -v f="$5" '
		$1 == s && $2 == v && $3 == m && $4 == c { print $f; found = 1 }
		END { if (!found) print "n/a" }' "$TMP/summary"
}
# VALUE with DECIMALS decimals, or as it is (n/a).
num() { # decimals value
	echo "$2" | awk -v d="$1" '$1 == "n/a" { print; exit } { printf "%.*f\n", d, $1 }'
}
# The min-max of two values, each with DECIMALS decimals.
range() { # decimals lo hi
	echo "$2 $3" | awk -v d="$1" '$1 == "n/a" { print "n/a"; exit } { printf "%.*f-%.*f\n", d, $1, d, $2 }'
}
server_name() { # kind:workers
	case ${1%%:*} in
	nginx) echo "nginx-light ${1#*:}w" ;;
	gunicorn) echo "gunicorn ${1#*:}w" ;;
	uwsgi) echo "uWSGI ${1#*:}p" ;;
	esac
}

echo
ROW="%-15s %-9s %4s %-10s %9s %6s %-11s %8s %5s %6s %-11s %7s %6s %4s %5s %7s\n"
# shellcheck disable=SC2059
printf "$ROW" server mode conn variant "req/s" x "x min-max" "CPU us" sprd x "x min-max" \
	ctxsw x "oth%" ">${OTH_LIMIT}%" "acc/req"
for s in $SERVERS; do
	kind=${s%%:*}
	eval "na=\${NA_SERVER_$kind:-}"
	if [ -n "$na" ]; then
		printf "%-15s %s\n" "$(server_name "$s")" "$na"
		continue
	fi
	for mode in $MODES; do
		for conns in $CONNS; do
			for v in $SHOWN; do
				eval "na=\${NA_$v:-}"
				[ -n "$na" ] || na=$(cell_na "$v" "$mode" "$conns")
				if [ -n "$na" ]; then
					printf "%-15s %-9s %4s %-10s %s\n" "$(server_name "$s")" "$mode" "$conns" "$v" "$na"
					continue
				fi
				f() { sum_of "$s" "$v" "$mode" "$conns" "$1"; }
				# shellcheck disable=SC2059
				printf "$ROW" "$(server_name "$s")" "$mode" "$conns" "$v" \
					"$(num 1 "$(f 5)")" "$(num 3 "$(f 6)")" "$(range 2 "$(f 7)" "$(f 8)")" \
					"$(num 2 "$(f 9)")" "$(f 10)" "$(num 3 "$(f 11)")" "$(range 2 "$(f 12)" "$(f 13)")" \
					"$(num 3 "$(f 14)")" "$(num 3 "$(f 15)")" "$(num 0 "$(f 18)")" "$(f 19)/$(f 20)" \
					"$(f 24 | sed 's|^n/a$|-|')"
			done
		done
	done
done

# How each server was warmed up, and whether the runs measured were in
# the ledger's steady state: of the connections of the close runs under
# the shim, how many reclaimed a released entry.
echo
echo "steady state: connections served before measuring, and the ledger after them (entries no"
echo "socket has had yet, of all); in the measured close runs, the requests answered (a connection"
echo "each; wrk does not count the ones cut by the run's end), the connections accepted (listener"
echo "table) and the connections that reclaimed a"
echo "released ledger entry (each one, in the steady state) or went unrecorded (ledger_full):"
for s in $MEASURED; do
	awk -v s="$s" -v name="$(server_name "$s")" '
		FILENAME != ARGV[1] && $1 == s {
			if ($8 == "keepalive")
				printf "  %-15s %-10s %7d warm-up requests on keep-alive (a launch for keep-alive" \
					" only: its runs accept a few connections, the ledger has no bearing)", name, $2, $3
			else
				printf "  %-15s %-10s %7d warm-up connections", name, $2, $3
			if ($4 != "-") printf "; ledger: %d of %d entries never used", $4, $5
			if ($6 > 0) printf "\n  %-15s %-10s NOT steady: of its last %d requests, %d reached the" \
				" ledger as new connections (the server kept its connections open: its close" \
				" runs are keep-alive runs)", name, $2, $6, $7
			printf "\n"
		}
		FILENAME == ARGV[1] && $1 == s && $3 == "close" && ($2 == "observe" || $2 == "serialize") {
			n[$2] += $11; r[$2] += $12; full[$2] += $13; acc[$2] += $14
		}
		END {
			split("observe serialize", vs, " ")
			for (i = 1; i <= 2; i++) {
				v = vs[i]
				if (v in n)
					printf "  %-15s %-10s measured close runs: %d requests, %d connections accepted, %d" \
						" reclaimed (%.1f%%), %d unrecorded\n", name, v, n[v], acc[v], r[v],
						n[v] ? 100 * r[v] / n[v] : 0, full[v]
			}
		}' "$RES" "$TMP/warm"
done

# The issue's targets for observe against no shim: target SERVER MODE
# CONNS F OP LIMIT WHAT (F: the summary's median ratio, min, max follow;
# QF: the one without the noisy rounds).
target() { # server mode conns f qf op limit what
	med=$(sum_of "$1" observe "$2" "$3" "$4")
	lo=$(sum_of "$1" observe "$2" "$3" $(($4 + 1)))
	hi=$(sum_of "$1" observe "$2" "$3" $(($4 + 2)))
	q=$(sum_of "$1" observe "$2" "$3" "$5")
	nq=$(sum_of "$1" observe "$2" "$3" 23)
	nr=$(sum_of "$1" observe "$2" "$3" 20)
	echo "$med $lo $hi $q $nq $nr" | awk -v name="$(server_name "$1")" -v m="$2" -v c="$3" \
		-v what="$8" -v op="$6" -v t="$7" '
		function verdict(x) { if (x == "n/a") return "n/a"; return sprintf("%.3f %s", x,
			(op == ">=" ? x >= t : x <= t) ? "met" : "not met") }
		{ printf "%-15s %-9s %4s %-12s %-9s %-13s %-11s %-13s %s\n", name, m, c, what, op " " t,
			verdict($1), $2 == "n/a" ? "n/a" : sprintf("%.2f-%.2f", $2, $3), verdict($4),
			$5 "/" $6 }'
}
echo
echo "targets, observe / none: the median of the per-round paired ratios (and their min-max),"
echo "over all rounds and over the rounds not flagged noisy (how many of all)."
printf "%-15s %-9s %4s %-12s %-9s %-13s %-11s %-13s %s\n" server mode conn ratio target \
	median min-max quiet rounds
for s in $MEASURED; do
	case $s in
	nginx:*)
		for c in 16 1; do
			target "$s" close "$c" 11 21 "<=" 1.03 "CPU us/req"
			target "$s" close "$c" 6 22 ">=" 0.97 "req/s"
		done
		for c in 16 1; do target "$s" keepalive "$c" 11 21 "<=" 1.01 "CPU us/req"; done
		;;
	*)
		for m in $MODES; do
			for c in 16 1; do target "$s" "$m" "$c" 11 21 "<=" 1.02 "CPU us/req"; done
		done
		;;
	esac
done
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg); measured in $((elapsed / 60)) min $((elapsed % 60)) s."
