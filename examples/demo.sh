#!/bin/sh
# make demo: run the bundled pre-forking server under sockshim, drive a few
# connections at it, and show what sockshim saw. Loopback only; bounded.
set -eu
BUILD=${1:-build}
SESSION="demo-$$"
PORTFILE=$(mktemp -u /tmp/sockshim-demo.XXXXXX)
cleanup() {
	[ -n "${RUN_PID:-}" ] && kill -TERM "$RUN_PID" 2>/dev/null && wait "$RUN_PID" 2>/dev/null
	rm -f "$PORTFILE"
	"$BUILD/sockshim" clean --session "$SESSION" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

echo "== sockshim run --session $SESSION --keep -- prefork_server -w 3"
"$BUILD/sockshim" run --session "$SESSION" --keep -- \
	"$BUILD/examples/prefork_server" -w 3 -f "$PORTFILE" &
RUN_PID=$!
i=0
while [ ! -s "$PORTFILE" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then echo "demo: the server did not start" >&2; exit 1; fi
	sleep 0.05
done
PORT=$(cat "$PORTFILE")

echo "== 5 client connections to 127.0.0.1:$PORT"
"$BUILD/examples/demo_client" -p "$PORT" -n 5

echo
echo "== sockshim events --session $SESSION (while the server runs)"
"$BUILD/sockshim" events --session "$SESSION"

echo
echo "== the same as JSON, accepts only"
"$BUILD/sockshim" events --session "$SESSION" --json --type accept | head -2

kill -TERM "$RUN_PID"
wait "$RUN_PID" 2>/dev/null || true
RUN_PID=
echo
echo "== after SIGTERM: the workers' accepts end with EINTR, the listener closes"
"$BUILD/sockshim" events --session "$SESSION" --type accept,close,exit | tail -5
