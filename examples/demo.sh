#!/bin/sh
# make demo: run the bundled pre-forking server under sockshim, drive a few
# connections at it, and show what sockshim saw: the lifecycle log, a
# CLOSE_WAIT leak explained, and accept statistics. Loopback only; bounded.
set -eu
BUILD=${1:-build}
S="demo-$$"
PORTFILE=$(mktemp -u /tmp/sockshim-demo.XXXXXX)
RUN_PID=
cleanup() {
	if [ -n "$RUN_PID" ]; then
		kill -TERM "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
	fi
	rm -f "$PORTFILE"
	for s in "$S" "$S-observe" "$S-serialize"; do
		"$BUILD/sockshim" clean --session "$s" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT INT TERM

# start_server SESSION MODE ARGS...: the server under sockshim run, in the
# background; waits (bounded) until it listens.
start_server() {
	session=$1 mode=$2
	shift 2
	rm -f "$PORTFILE"
	"$BUILD/sockshim" run --session "$session" --keep --accept "$mode" -- \
		"$BUILD/examples/prefork_server" -f "$PORTFILE" "$@" &
	RUN_PID=$!
	i=0
	while [ ! -s "$PORTFILE" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then echo "demo: the server did not start" >&2; exit 1; fi
		sleep 0.05
	done
	PORT=$(cat "$PORTFILE")
}

stop_server() {
	kill -TERM "$RUN_PID"
	wait "$RUN_PID" 2>/dev/null || true
	RUN_PID=
}

echo "== sockshim run --session $S -- prefork_server -w 3 -l   (-l: a helper inherits a connection)"
start_server "$S" observe -w 3 -l
echo "== 5 client connections to 127.0.0.1:$PORT"
"$BUILD/examples/demo_client" -p "$PORT" -n 5
sleep 0.2

echo
echo "== sockshim events --session $S"
"$BUILD/sockshim" events --session "$S"

echo
echo "== sockshim closewait --session $S   (why are connections stuck in CLOSE_WAIT?)"
"$BUILD/sockshim" closewait --session "$S" | sed -n '/^INHERITED/,/^$/p'
stop_server

if "$BUILD/sockshim" stats --help >/dev/null 2>&1; then
	for mode in observe serialize; do
		echo
		echo "== --accept $mode: 4 workers, 200 connections; sockshim stats"
		start_server "$S-$mode" "$mode" -w 4
		"$BUILD/examples/demo_client" -p "$PORT" -n 200 >/dev/null
		"$BUILD/sockshim" stats --session "$S-$mode"
		stop_server
	done
fi
