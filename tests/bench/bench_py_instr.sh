#!/bin/sh
# The shim's cost inside gunicorn and uWSGI, in instructions (repeatable
# where their CPU figures swing by tens of percent on a shared machine):
# one worker under callgrind, without the shim and under observe, served
# N1 and then, in a run of its own, N2 sequential `Connection: close`
# requests. Per request: the difference between the two runs' user-space
# instructions in the worker (the busiest process), over N2 - N1, so that
# start-up and shutdown cancel out. The shim's ledger has 256 entries
# (--max-sockets), so that both runs are past it (a long-running server's
# steady state: every connection reclaims a released entry).
# PYTHONHASHSEED=0: the interpreter's dicts hash alike in every run; what
# the interpreter does still varies from run to run (uWSGI's worker by a
# few hundred instructions a request, gunicorn's by up to 10,000), which
# the shim's own instructions do not: "its share" is 1 + those over
# none's.
# The kernel's share is not in these figures (bench_servers.sh has the
# CPU); the shim adds one system call per connection (an fstat), and a
# getpeername where the accept's address buffer is not on the main
# thread's stack (uWSGI's is on the heap).
#     bench_py_instr.sh BUILD
# BENCH_PY_N1, BENCH_PY_N2: the two runs' requests (300, 1300).
set -eu
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
N1=${BENCH_PY_N1:-300}
N2=${BENCH_PY_N2:-1300}
# shellcheck disable=SC2034 # PY, STOP_TIMEOUT: read by bench_lib.sh
PY=${PYTHON:-python3} STOP_TIMEOUT=60
START_TIMEOUT=120
TMP=$(mktemp -d /tmp/sockshim-bench-py-instr.XXXXXX)
SESS="bench-py-instr-$$"
export PYTHONHASHSEED=0
# shellcheck source=tests/bench/bench_lib.sh
. "$HERE/bench_lib.sh"
pin_server_client

ROOT=""
cleanup() {
	if [ -n "$ROOT" ] && alive "$ROOT"; then stop_root "$ROOT" "server under callgrind"; fi
	rm -rf "$TMP"
	rm -f "/dev/shm/sockshim.$(id -u).$SESS"
}
trap cleanup EXIT INT TERM
die() {
	echo "bench_py_instr: $*" >&2
	exit 1
}

echo
echo "gunicorn (sync) and uWSGI, one worker under callgrind: user-space instructions per request"
echo "(Connection: close, 1 in flight; the difference between runs of $N1 and $N2 requests)"
if ! command -v valgrind >/dev/null 2>&1; then
	echo "n/a: valgrind not installed"
	exit 0
fi

# requests PORT N: N sequential requests, each on a connection of its own.
requests() {
	# shellcheck disable=SC2086
	$CLI_PIN "$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
PYEOF
}

# run KIND VARIANT N: one server, N requests; prints "total shim", the
# user-space instructions of its busiest process and the shim's part.
run() {
	d=$TMP/$1.$2.$3
	mkdir -p "$d"
	if [ "$2" = observe ]; then
		rm -f "/dev/shm/sockshim.$(id -u).$SESS"
		set -- "$1" "$2" "$3" "$BUILD/sockshim" run --session "$SESS" --max-sockets 256 \
			--accept observe --
	fi
	kind=$1 n=$3
	shift 3
	launch "$kind" 1 "$d" "$@" valgrind --tool=callgrind \
		--callgrind-out-file="$d/cg.%p"
	ROOT=$LAUNCHED
	deadline=$(($(date +%s) + START_TIMEOUT))
	until http_ok "$LPORT"; do
		alive "$ROOT" || die "$kind under callgrind exited: $(tail -3 "$d/out")"
		[ "$(date +%s)" -lt "$deadline" ] || die "$kind under callgrind not serving in ${START_TIMEOUT}s"
		sleep 0.5
	done
	requests "$LPORT" "$n" || die "$kind: the requests failed"
	stop_root "$ROOT" "$kind under callgrind"
	ROOT=""
	best="" most=0
	for f in "$d"/cg.*; do
		t=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$f")
		if [ -n "$t" ] && [ "$t" -gt "$most" ]; then most=$t best=$f; fi
	done
	[ -n "$best" ] || die "no callgrind output ($kind $2)"
	shim=$(by_object "$best" 1 | awk '$1 == "libsockshim.so" { v = $2 } END { print v + 0 }')
	echo "$most $shim"
}

printf "%-10s %10s %10s %8s %14s %10s\n" "per request" "none" "observe" "ratio" "libsockshim.so" \
	"its share"
for kind in gunicorn uwsgi; do
	if ! command -v "$kind" >/dev/null 2>&1; then
		printf "%-10s n/a: not installed\n" "$kind"
		continue
	fi
	for v in none observe; do
		a=$(run "$kind" "$v" "$N1")
		b=$(run "$kind" "$v" "$N2")
		echo "$a $b" | awk -v k="$N2" -v j="$N1" '{ printf "%.0f %.0f\n", ($3 - $1) / (k - j), ($4 - $2) / (k - j) }' \
			>"$TMP/$kind.$v"
	done
	read -r tn _ <"$TMP/$kind.none"
	read -r to so <"$TMP/$kind.observe"
	printf "%-10s %10s %10s %8s %14s %10s\n" "$kind" "$tn" "$to" \
		"$(echo "$to $tn" | awk '{ printf "%.3fx", $1 / $2 }')" "$so" \
		"$(echo "$so $tn" | awk '{ printf "%.3fx", 1 + $1 / $2 }')"
done
echo "ratio: observe / none, the interpreter's variations included; its share: 1 + the shim's"
echo "own instructions / none's (the interpreter's part varies from run to run, by several"
echo "thousand instructions a request in gunicorn's worker; the shim's does not)"
