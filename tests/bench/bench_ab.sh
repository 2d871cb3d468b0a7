#!/bin/sh
# A change's cost, side by side: nginx-light (2 workers, CPU 0) without the
# shim and under `sockshim run --accept observe` of each BUILD given, all
# running at once and loaded in turn by wrk (`Connection: close`, CONNS in
# flight, CPU 1), ROUNDS rounds of 2 s, the order reversed every round.
# Prints each run's server CPU per request, then per build the median of
# its per-round ratios to the run without the shim of the same round (the
# host's speed drifts over seconds: only neighbours compare) and their
# min-max. Not part of make bench: for judging a shim change against
# main (e.g. bench_ab.sh /tmp/main-build build). Loopback only; every
# server it starts is stopped by pid.
#     bench_ab.sh BUILD...   CONNS (1), ROUNDS (12)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2034 # PY, STOP_TIMEOUT, START_TIMEOUT: read by bench_lib.sh
PY=${PYTHON:-python3} STOP_TIMEOUT=20 START_TIMEOUT=30
# shellcheck source=tests/bench/bench_lib.sh
. "$HERE/bench_lib.sh"
pin_server_client
CONNS=${CONNS:-1} ROUNDS=${ROUNDS:-12}
[ $# -ge 1 ] || { echo "usage: bench_ab.sh BUILD..." >&2; exit 2; }
TMP=$(mktemp -d /tmp/sockshim-bench-ab.XXXXXX)
ROOTS=""
cleanup() {
	for r in $ROOTS; do stop_root "$r" "nginx" || true; done
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
		launch nginx 2 "$d"
	else
		[ -x "$v/sockshim" ] || die "$v/sockshim: no such build"
		launch nginx 2 "$d" "$v/sockshim" run --session "bench-ab-$$-$n" --accept observe --
	fi
	ROOTS="$ROOTS $LAUNCHED"
	echo "$LAUNCHED" >"$d/root"
	echo "$LPORT" >"$d/port"
	echo "$v" >"$d/name"
	serving nginx 2 "$LAUNCHED" "$d"
	# Past the ledger's 16384 entries: every connection then reclaims one.
	wrk_load "$LPORT" 16 8 close >/dev/null
done
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order=$(seq 1 "$n"); else order=$(seq "$n" -1 1); fi
	for k in $order; do
		d=$TMP/v$k
		# shellcheck disable=SC2046
		pids=$(tree_comm_pids "$(cat "$d/root")" nginx)
		# shellcheck disable=SC2086
		a=$(usage_of $pids)
		req=$(wrk_load "$(cat "$d/port")" "$CONNS" 2 close | awk '{ print $1 }')
		# shellcheck disable=SC2086
		b=$(usage_of $pids)
		echo "$r $(cat "$d/name") $req $a $b" |
			awk '{ printf "round %d %s %d requests %.2f us/req\n", $1, $2, $3, ($6 - $4) / 1000 / $3 }'
	done
done | tee "$TMP/runs"
echo "CPU per request / none, paired by round (median, min-max), $CONNS in flight:"
for v in "$@"; do
	awk -v v="$v" '$3 == "none" { none[$2] = $6 } $3 == v { mine[$2] = $6 }
		END { for (r in mine) if (r in none) print mine[r] / none[r] }' "$TMP/runs" | sort -n |
		awk -v v="$v" '{ x[NR] = $1 } END { m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
			printf "  %-30s %.3f (%.2f-%.2f, %d rounds)\n", v, m, x[1], x[NR], NR }'
done
