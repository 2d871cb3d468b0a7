#!/bin/sh
# The shim's cost inside a real server, in instructions (repeatable where
# wall-clock CPU figures swing 10-40% on a shared machine): nginx-light,
# one process (master_process off), under callgrind with its cache
# simulation, without the shim and under observe. Each is warmed up with
# more connections than the ledger has entries (a long-running server's
# steady state: every connection reclaims a released entry) with
# callgrind's instrumentation off, then measured over SECONDS of
# `Connection: close` requests, 1 in flight, and then over SECONDS of
# keep-alive requests on one connection (each window a callgrind dump of
# its own). Prints user-space instructions per request by object (nginx,
# libc, the shim), the ratio, the shim's cache misses per request and its
# costliest functions, for each window. The kernel's share is not in
# these figures (bench_servers.sh has the CPU): the shim makes no system
# call of its own on a keep-alive request, so there its added share of
# the server's CPU is below its share of the user-space instructions.
#     bench_nginx_instr.sh BUILD
# BENCH_INSTR_SECONDS: each measured window (10).
# BENCH_INSTR_KEEP: a directory to keep the callgrind outputs in
# (VARIANT.MODE.cg.out, VARIANT.MODE.requests), for callgrind_annotate or
# cg_costs.py.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${BENCH_INSTR_SECONDS:-10}
# shellcheck disable=SC2034 # PY, STOP_TIMEOUT: read by bench_lib.sh
PY=${PYTHON:-python3} STOP_TIMEOUT=20
START_TIMEOUT=60
TMP=$(mktemp -d /tmp/sockshim-bench-instr.XXXXXX)
SESS="bench-instr-$$"
# shellcheck source=tests/bench/bench_lib.sh
. "$HERE/bench_lib.sh"
pin_server_client

ROOT=""
cleanup() {
	if [ -n "$ROOT" ] && alive "$ROOT"; then kill -KILL "$ROOT" 2>/dev/null || true; fi
	rm -rf "$TMP"
	rm -f "/dev/shm/sockshim.$(id -u).$SESS"
}
trap cleanup EXIT INT TERM
die() {
	echo "bench_nginx_instr: $*" >&2
	exit 1
}

echo
echo "nginx-light, one process under callgrind: user-space instructions per request (Connection: close, 1 in"
echo "flight, then keep-alive; ${SECS} s each, measured after a warm-up past the ledger's $(printf %s "${SOCKSHIM_MAX_SOCKETS:-16384}") entries)"
for tool in valgrind callgrind_control nginx wrk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "n/a: $tool not installed"
		exit 0
	fi
done

# run VARIANT (none|observe): one measured server; leaves TMP/VARIANT/cg.out
# and TMP/VARIANT/requests.
run() {
	d=$TMP/$1
	mkdir -p "$d"
	port=$(free_port)
	nginx_conf "$d" 1 "$port"
	sed -i 's/^master_process on;/master_process off;/' "$d/nginx.conf"
	if [ "$1" = observe ]; then
		set -- "$BUILD/sockshim" run --session "$SESS" --accept observe --
	else
		set --
	fi
	# shellcheck disable=SC2086
	$SRV_PIN "$@" valgrind --tool=callgrind --instr-atstart=no --cache-sim=yes \
		--callgrind-out-file="$d/cg.out" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" \
		>"$d/out" 2>&1 </dev/null &
	ROOT=$!
	deadline=$(($(date +%s) + START_TIMEOUT))
	until http_ok "$port"; do
		alive "$ROOT" || die "nginx under callgrind exited: $(tail -3 "$d/out")"
		[ "$(date +%s)" -lt "$deadline" ] || die "nginx under callgrind not serving in ${START_TIMEOUT}s"
		sleep 0.5
	done
	warm=0
	while [ "$warm" -lt $((${SOCKSHIM_MAX_SOCKETS:-16384} * 3 / 2)) ]; do
		warm=$((warm + $(wrk_load "$port" 4 5 close | awk '{ print $1 }')))
	done
	pid=$(cat "$d/nginx.pid")
	callgrind_control -i on "$pid" >/dev/null 2>&1
	# Each window ends with a dump (cg.out.1, cg.out.2), which zeroes
	# the counts for the next.
	# shellcheck disable=SC2086
	$CLI_PIN wrk -t1 -c1 -d"${SECS}s" -H 'Connection: close' "http://127.0.0.1:$port/" |
		awk '/ requests in / { print $1 }' >"$d/close.requests"
	callgrind_control -d "$pid" >/dev/null 2>&1
	# shellcheck disable=SC2086
	$CLI_PIN wrk -t1 -c1 -d"${SECS}s" "http://127.0.0.1:$port/" |
		awk '/ requests in / { print $1 }' >"$d/keepalive.requests"
	callgrind_control -d "$pid" >/dev/null 2>&1
	kill -TERM "$pid"
	stop_root "$ROOT" "nginx under callgrind"
	ROOT=""
	for part in 1 2; do
		[ -s "$d/cg.out.$part" ] || die "no callgrind dump $part ($1)"
	done
	mv "$d/cg.out.1" "$d/close.cg.out"
	mv "$d/cg.out.2" "$d/keepalive.cg.out"
}

# of VARIANT MODE OBJECT: its figure in TMP/VARIANT/MODE.objects, 0 if absent.
of() {
	awk -v o="$3" '$1 == o { v = $2 } END { print v + 0 }' "$TMP/$1/$2.objects"
}

for v in none observe; do
	run "$v"
	for mode in close keepalive; do
		by_object "$TMP/$v/$mode.cg.out" "$(cat "$TMP/$v/$mode.requests")" >"$TMP/$v/$mode.objects"
		if [ -n "${BENCH_INSTR_KEEP:-}" ]; then
			mkdir -p "$BENCH_INSTR_KEEP" &&
				cp "$TMP/$v/$mode.cg.out" "$BENCH_INSTR_KEEP/$v.$mode.cg.out" &&
				cp "$TMP/$v/$mode.requests" "$BENCH_INSTR_KEEP/$v.$mode.requests"
		fi
	done
done
for mode in close keepalive; do
	cg=$TMP/observe/$mode.cg.out
	n=$(cat "$TMP/observe/$mode.requests")
	if [ "$mode" = close ]; then
		echo "Connection: close, 1 in flight ($(cat "$TMP/none/$mode.requests") and $n requests measured):"
	else
		echo "keep-alive, one connection ($(cat "$TMP/none/$mode.requests") and $n requests measured):"
	fi
	printf "%-28s %10s %10s\n" "per request" "none" "observe"
	for o in nginx libc.so.6 libsockshim.so; do
		printf "%-28s %10s %10s\n" "$o" "$(of none "$mode" "$o")" "$(of observe "$mode" "$o")"
	done
	tn=$(awk '{ s += $2 } END { print s }' "$TMP/none/$mode.objects")
	to=$(awk '{ s += $2 } END { print s }' "$TMP/observe/$mode.objects")
	printf "%-28s %10s %10s %8s\n" "all user-space" "$tn" "$to" \
		"$(echo "$to $tn" | awk '{ printf "%.3fx", $1 / $2 }')"
	# The shim's own cache misses per request (callgrind's simulated caches).
	"$PY" "$HERE/cg_costs.py" misses "$cg" libsockshim.so "$n" | awk '
		{ v[$1] = $2 }
		END { printf "shim, per request: %.1f first-level read misses, %.1f write misses; %.1f last-level read, %.1f write\n",
			v["D1mr"], v["D1mw"], v["DLmr"], v["DLmw"] }'
	echo "the shim's costliest functions, instructions per request:"
	"$PY" "$HERE/cg_costs.py" functions "$cg" libsockshim.so "$n" 10 |
		awk '{ printf "  %-26s %7.2f\n", $1, $2 }'
done
