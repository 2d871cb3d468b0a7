#!/bin/sh
# make bench, start-up: what the shim adds to every new program image, for
# ledger sizes 256, 16,384 and 1,048,576 (start-up must not grow with it),
# and a server that runs a subprocess per request, side by side with and
# without the shim. Prints; asserts nothing.
set -eu
BUILD=$1
LIB=$(cd "$BUILD" && pwd)/libsockshim.so
TOOL=$(cd "$BUILD" && pwd)/sockshim
UID_=$(id -u)
SESS="bench-start-$$"
trap 'rm -f /dev/shm/sockshim.$UID_.$SESS-*' EXIT INT TERM

instr() { # [env...] -- program: callgrind's instruction count
	env "$@" valgrind --tool=callgrind --callgrind-out-file=/dev/null /bin/true 2>&1 |
		sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

# Best of 7 runs of 200 starts, microseconds per start.
us_per_start() { # [env...]
	best=""
	for r in 1 2 3 4 5 6 7; do
		t0=$(date +%s%N)
		i=0
		while [ $i -lt 200 ]; do env "$@" /bin/true; i=$((i + 1)); done
		t=$(( ($(date +%s%N) - t0) / 200000 ))
		if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
	done
	echo "$best"
}

echo
echo "start-up of a preloaded /bin/true (the session exists; best of 7 x 200 for time)"
printf "%-34s %12s %12s %12s %s\n" "ledger size" "instructions" "added" "us/start" "target"
base_i=n/a
command -v valgrind >/dev/null 2>&1 && base_i=$(instr X=1)
base_t=$(us_per_start X=1)
printf "%-34s %12s %12s %12s\n" "no shim" "$base_i" "-" "$base_t"
for n in 256 16384 1048576; do
	s="$SESS-$n"
	SOCKSHIM_SESSION=$s SOCKSHIM_MAX_SOCKETS=$n LD_PRELOAD=$LIB /bin/true
	i=n/a
	[ "$base_i" = n/a ] || i=$(instr SOCKSHIM_SESSION=$s LD_PRELOAD=$LIB)
	t=$(us_per_start SOCKSHIM_SESSION=$s LD_PRELOAD=$LIB)
	printf "%-34s %12s %12s %12s %s\n" "$n" "$i" \
		"$([ "$i" = n/a ] && echo n/a || echo "+$((i - base_i))")" "$t" \
		"<= +300000, +500 us"
done

# A server that answers each request by running a program (CGI style).
PORT_FILE=$(mktemp)
cat > "$PORT_FILE.py" <<'PY'
import http.server, socketserver, subprocess, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out = subprocess.run(["/bin/echo", "ok"], stdout=subprocess.PIPE).stdout
        self.send_response(200); self.send_header("Content-Length", str(len(out)))
        self.end_headers(); self.wfile.write(out)
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
run_server() { # label [env...]: requests/s of 300 sequential requests
	label=$1; shift
	: > "$PORT_FILE"
	env "$@" python3 "$PORT_FILE.py" "$PORT_FILE" &
	pid=$!
	i=0
	while [ ! -s "$PORT_FILE" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	port=$(cat "$PORT_FILE")
	t0=$(date +%s%N)
	python3 -c "
import socket, sys
for _ in range(300):
    s = socket.create_connection(('127.0.0.1', $port), timeout=10)
    s.sendall(b'GET / HTTP/1.0\r\n\r\n'); d = b''
    while True:
        b = s.recv(4096)
        if not b: break
        d += b
    s.close()
    assert d.endswith(b'ok\n'), d
"
	t=$(( ($(date +%s%N) - t0) / 1000000 ))
	kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
	echo "$t"
}
echo
echo "subprocess per request (python3 http.server running /bin/echo, 300 requests, 3 rounds)"
best_base="" best_shim=""
for r in 1 2 3; do
	b=$(run_server none X=1)
	s=$(run_server shim SOCKSHIM_SESSION=$SESS-cgi LD_PRELOAD=$LIB)
	[ -z "$best_base" ] || [ "$b" -lt "$best_base" ] && best_base=$b
	[ -z "$best_shim" ] || [ "$s" -lt "$best_shim" ] && best_shim=$s
done
printf "%-34s %12s %12s %10s %s\n" "300 requests, ms (best)" "$best_base" "$best_shim" \
	"$(echo "$best_base $best_shim" | awk '{printf "%.2fx", $2 / $1}')" "<= 1.20x"
rm -f "$PORT_FILE" "$PORT_FILE.py"
