#!/bin/sh
# A change's cost, side by side, measured at the same instants: a server
# (KIND: nginx-light with 2 workers by default) without the shim and under
# `sockshim run --accept observe` of each BUILD given, all on CPU 0, all
# loaded at once, each by its own wrk (MODE close: `Connection: close`;
# keepalive: HTTP/1.1 keep-alive; CONNS in flight, CPU 1), ROUNDS rounds
# of AB_SECONDS. Prints each run's server CPU
# per request (the scheduler's nanoseconds, every process of the server),
# then per build the median of its per-round ratios to the run without
# the shim of the same round, and their min-max.
#
# Why at once: this host's speed drifts by tens of percent over seconds,
# so servers loaded in turn, even in alternating order, compare their
# moments as much as their code (here: 0.74-1.27 between rounds of 2 s).
# Loaded at once, both see the same moments; a second run without the
# shim (the argument `none`) shows what is left of the method's own
# spread (here: 0.99-1.00 over 8 rounds).
#
# Loopback only; every server it starts is stopped by pid. For judging a
# shim change against main (bench_ab.sh /tmp/main-build build), and part
# of make bench (bench.sh: none and the build, nginx-light, close and
# keep-alive, 1 and 16 in flight).
#     bench_ab.sh BUILD|none...   KIND (nginx), WORKERS (2), MODE (close),
#                                 CONNS (1), ROUNDS (12), AB_SECONDS (3)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2034 # PY, STOP_TIMEOUT, START_TIMEOUT: read by bench_lib.sh
PY=${PYTHON:-python3} STOP_TIMEOUT=20 START_TIMEOUT=30
# shellcheck source=tests/bench/bench_lib.sh
. "$HERE/bench_lib.sh"
pin_server_client
KIND=${KIND:-nginx} WORKERS=${WORKERS:-2} MODE=${MODE:-close}
case $MODE in
close | keepalive) ;;
*) echo "bench_ab: MODE is close or keepalive, not $MODE" >&2; exit 2 ;;
esac
# uWSGI serves one mode per socket (bench_lib.sh, launch).
HTTP_MODE=$MODE
export HTTP_MODE
CONNS=${CONNS:-1} ROUNDS=${ROUNDS:-12} SECONDS_EACH=${AB_SECONDS:-3}
[ $# -ge 1 ] || { echo "usage: bench_ab.sh BUILD|none..." >&2; exit 2; }
for tool in wrk "$KIND"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "n/a: $tool not installed"
		exit 0
	fi
done
TMP=$(mktemp -d /tmp/sockshim-bench-ab.XXXXXX)
ROOTS=""
cleanup() {
	for r in $ROOTS; do stop_root "$r" "$KIND" || true; done
	rm -rf "$TMP"
	rm -f /dev/shm/sockshim."$(id -u)".bench-ab-$$-*
}
trap cleanup EXIT INT TERM
die() {
	echo "bench_ab: $*" >&2
	exit 1
}
n=0
for v in none "$@"; do
	n=$((n + 1))
	d=$TMP/v$n
	if [ "$v" = none ]; then
		launch "$KIND" "$WORKERS" "$d"
		# The second run without the shim: named apart from the first.
		[ $n = 1 ] && name=none || name="none($n)"
	else
		[ -x "$v/sockshim" ] || die "$v/sockshim: no such build"
		launch "$KIND" "$WORKERS" "$d" "$v/sockshim" run --session "bench-ab-$$-$n" --accept observe --
		name=$v
	fi
	ROOTS="$ROOTS $LAUNCHED"
	echo "$LAUNCHED" >"$d/root"
	echo "$LPORT" >"$d/port"
	echo "$name" >"$d/name"
	serving "$KIND" "$WORKERS" "$LAUNCHED" "$d"
	# Past the ledger's 16384 entries: every connection then reclaims one.
	wrk_load "$LPORT" 16 8 "$MODE" >/dev/null
	tree_comm_pids "$LAUNCHED" "$(server_comm "$KIND")" >"$d/pids"
done
for r in $(seq "$ROUNDS"); do
	for k in $(seq "$n"); do
		# shellcheck disable=SC2046
		usage_of $(cat "$TMP/v$k/pids") >"$TMP/v$k/before"
	done
	# All at once: wrk_load (bench_lib.sh) in the background, each saying
	# "requests req/s" or why it failed (on stderr; then nothing).
	for k in $(seq "$n"); do
		d=$TMP/v$k
		wrk_load "$(cat "$d/port")" "$CONNS" "$SECONDS_EACH" "$MODE" >"$d/load" &
	done
	wait
	for k in $(seq "$n"); do
		d=$TMP/v$k
		# shellcheck disable=SC2046
		after=$(usage_of $(cat "$d/pids"))
		req=$(awk '{ print $1 }' "$d/load")
		[ -n "$req" ] || die "$(cat "$d/name"): its load failed (above)"
		echo "$r $(cat "$d/name") $req $(cat "$d/before") $after" |
			awk '{ printf "round %d %s %d requests %.2f us/req\n", $1, $2, $3, ($6 - $4) / 1000 / $3 }'
	done
done | tee "$TMP/runs"
echo "$KIND ($WORKERS workers), CPU per request / none, loaded at the same time (median, min-max),"
echo "$MODE, $CONNS in flight:"
for k in $(seq 2 "$n"); do
	v=$(cat "$TMP/v$k/name")
	awk -v v="$v" '$3 == "none" { none[$2] = $6 } $3 == v { mine[$2] = $6 }
		END { for (r in mine) if (r in none) print mine[r] / none[r] }' "$TMP/runs" | sort -n |
		awk -v v="$v" '{ x[NR] = $1 } END { m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
			printf "  %-30s %.3f (%.2f-%.2f, %d rounds)\n", v, m, x[1], x[NR], NR }'
done
