#!/bin/sh
# make demo: run the bundled pre-forking server under sockshim, drive a few
# connections at it, and show what sockshim saw: the lifecycle log, a
# CLOSE_WAIT leak explained, the thundering herd of workers waiting in poll
# with and without serialized accept, and the TIME_WAIT sockets a
# short-connection client leaves. Loopback only; bounded (a few seconds).
set -eu
BUILD=${1:-build}
S="demo-$$"
PORTFILE=$(mktemp -u /tmp/sockshim-demo.XXXXXX)
REPORT=$PORTFILE.report
RUN_PID=
cleanup() {
	if [ -n "$RUN_PID" ]; then
		kill -TERM "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
	fi
	rm -f "$PORTFILE" "$REPORT" "$REPORT.observe" "$REPORT.serialize"
	for s in "$S" "$S-observe" "$S-serialize" "$S-tw" "$S-client"; do
		"$BUILD/sockshim" clean --session "$s" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT INT TERM

# start_server SESSION MODE ARGS...: the server under sockshim run, in the
# background, its stdout (the -r report at exit) in $REPORT; waits
# (bounded) until it listens.
start_server() {
	session=$1 mode=$2
	shift 2
	rm -f "$PORTFILE"
	"$BUILD/sockshim" run --session "$session" --keep --accept "$mode" -- \
		"$BUILD/examples/prefork_server" -f "$PORTFILE" "$@" >"$REPORT" &
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
	# The herd: workers waiting in poll() on one non-blocking listener are
	# all woken by each connection; those that find it taken get EAGAIN.
	# Serialize lets one worker at a time poll for the listener.
	for mode in observe serialize; do
		echo
		echo "== --accept $mode: prefork_server -w 4 -m poll (workers wait in poll, then accept), 200 connections"
		start_server "$S-$mode" "$mode" -w 4 -m poll -r
		"$BUILD/examples/demo_client" -p "$PORT" -n 200 >/dev/null
		echo "== sockshim stats --session $S-$mode"
		"$BUILD/sockshim" stats --session "$S-$mode"
		stop_server
		echo "== the server's own count at exit"
		cat "$REPORT"
		sed -n 's/.*(EAGAIN; \([0-9.]*\) per accept).*(\([0-9.]*\) us per accept).*/\1 \2/p' \
			"$REPORT" >"$REPORT.$mode"
	done
	read -r obs_sp obs_cpu <"$REPORT.observe" || true
	read -r ser_sp ser_cpu <"$REPORT.serialize" || true
	echo
	echo "== the herd: spurious wakeups per accept: observe ${obs_sp:-?}, serialize ${ser_sp:-?};" \
		"workers' CPU per accept: observe ${obs_cpu:-?} us, serialize ${ser_cpu:-?} us"
fi

# TIME_WAIT: the client closes first (it half-closes, then closes), so the
# TIME_WAIT sockets are its own. Run under sockshim, it is named with its
# call site and a remedy.
echo
echo "== sockshim run --session $S-client -- demo_client -n 100   (a client with one connection per request)"
start_server "$S-tw" observe -w 2
answered=$("$BUILD/sockshim" run --session "$S-client" --keep -- \
	"$BUILD/examples/demo_client" -p "$PORT" -n 100 2>/dev/null | grep -c "hello from") || true
echo "$answered of 100 connections answered"
sleep 0.2 # the server's last closes: until then the client is in FIN_WAIT2
stop_server
echo "== sockshim timewait --session $S-client   (who leaves TIME_WAIT sockets, and what to do)"
"$BUILD/sockshim" timewait --session "$S-client"
