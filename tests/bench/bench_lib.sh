# Sourced by the server benchmarks (bench_accept.sh, bench_servers.sh,
# bench_idle.sh): the process, load and server helpers they share. The
# caller sets PY (its python3), STOP_TIMEOUT and START_TIMEOUT (bounds in
# seconds), SRV_PIN and CLI_PIN (taskset prefixes, or empty:
# pin_server_client), BUILD and
# HERE (tests/bench), and defines die.

# Sets SRV_PIN and CLI_PIN: the server on CPU 0 and the client on CPU 1
# when there are two CPUs and taskset works, else both empty.
pin_server_client() {
	SRV_PIN="" CLI_PIN=""
	if [ "$(nproc)" -ge 2 ] && taskset -c 0 true 2>/dev/null; then
		SRV_PIN="taskset -c 0" CLI_PIN="taskset -c 1"
	fi
}

# by_object FILE REQUESTS: "object instructions-per-request" lines of a
# callgrind output (REQUESTS 1: the object's whole count), read from the
# file by cg_costs.py: callgrind_annotate's report leaves out small
# functions and the object of inlined code (their sum fell 480
# instructions a request short of the shim's in nginx).
by_object() {
	"$PY" "$HERE/cg_costs.py" objects "$1" "$2"
}

# PID and every process below it.
tree_pids() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			mine[root] = 1
			do {
				more = 0
				for (p in parent)
					if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; more = 1 }
			} while (more)
			for (p in mine) print p
		}'
}

# Running and not a zombie (kill -0 succeeds on an unreaped child).
alive() {
	[ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The bench server on 127.0.0.1:PORT answers "ok".
http_ok() { # port
	"$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=1) as r:
    sys.exit(0 if r.status == 200 and r.read() == b"ok\n" else 1)
PYEOF
}

# Stop the server ROOT: SIGTERM, a bounded wait (STOP_TIMEOUT seconds),
# then SIGKILL to whatever of its tree is left, said with LABEL (it should
# not happen).
stop_root() { # root label
	pids=$(tree_pids "$1")
	kill -TERM "$1" 2>/dev/null || true
	i=0
	while alive "$1" && [ $i -lt $((STOP_TIMEOUT * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	left=""
	for p in $pids; do
		if alive "$p"; then left="$left $p"; fi
	done
	if [ -n "$left" ]; then
		echo "  warning: $2 still running ${STOP_TIMEOUT}s after SIGTERM:$left; killed" >&2
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

# ---- Measuring a process tree ----

# CPU nanoseconds and context switches of PIDS, every thread: "ns
# switches". CPU: the scheduler's own sum (/proc/PID/task/*/schedstat,
# first field, nanoseconds), not utime+stime (ticks of 10 ms: too coarse
# for a 1 s run); without schedstat, utime+stime of /proc/PID/stat.
# Switches: voluntary + nonvoluntary of /proc/PID/task/*/status.
usage_of() {
	for p in "$@"; do
		if [ -r /proc/self/schedstat ]; then
			cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{ print "ns", $1 }'
		else
			sed 's/.*) //' "/proc/$p/stat" 2>/dev/null |
				awk -v hz="$(getconf CLK_TCK)" '{ printf "ns %.0f\n", ($12 + $13) * 1e9 / hz }'
		fi
		cat /proc/"$p"/task/*/status 2>/dev/null |
			awk '/^(non)?voluntary_ctxt_switches:/ { print "cs", $2 }'
	done | awk '$1 == "ns" { t += $2 } $1 == "cs" { s += $2 } END { printf "%.0f %d\n", t, s }'
}

# The processes of ROOT's tree that run COMM (the server's own, not
# sockshim run or a tracer above them).
tree_comm_pids() { # root comm
	for p in $(tree_pids "$1"); do
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; then echo "$p"; fi
	done
}

# Every process of ROOT's tree maps libsockshim.so from WANT (a path, or
# "none"); else says which does not, and fails.
maps_shim() { # root want
	for p in $(tree_pids "$1"); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in sockshim | strace | bpftrace) continue ;; esac
		got=$(awk '$6 ~ /libsockshim\.so$/ { print $6; exit }' "/proc/$p/maps" 2>/dev/null)
		if [ "${got:-none}" != "$2" ]; then
			echo "pid $p ($(cat "/proc/$p/comm" 2>/dev/null)) maps ${got:-no shim}, not $2"
			return 1
		fi
	done
}

# build_helper NAME: tests/bench/NAME.c built into BUILD/bench/NAME (a
# second each, so the Makefile needs no rule); run from the checkout.
build_helper() { # name
	mkdir -p "$BUILD/bench"
	${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude \
		-o "$BUILD/bench/$1" "tests/bench/$1.c"
}

# ---- HTTP load ----

# wrk_load PORT CONNS SECONDS [close|keepalive]: "requests req/s" of one
# wrk run (one thread, CONNS in flight, on CLI_PIN's CPU), with
# `Connection: close` on every request or without (HTTP/1.1 keep-alive).
# Calls the caller's die, saying why, when a request failed or none was
# answered.
wrk_load() {
	limit=$(($3 + 30))
	if [ "${4:-close}" = close ]; then
		# shellcheck disable=SC2086
		out=$($CLI_PIN timeout "$limit" wrk -t1 -c"$2" -d"$3s" -H 'Connection: close' \
			"http://127.0.0.1:$1/" 2>&1) || die "wrk failed: $out"
	else
		# shellcheck disable=SC2086
		out=$($CLI_PIN timeout "$limit" wrk -t1 -c"$2" -d"$3s" "http://127.0.0.1:$1/" 2>&1) ||
			die "wrk failed: $out"
	fi
	if echo "$out" | grep -Eq 'Socket errors|Non-2xx'; then
		die "requests failed at $2 connections (${4:-close}): $(echo "$out" |
			grep -E 'Socket errors|Non-2xx')"
	fi
	echo "$out" | awk '/ requests in / { n = $1 } /^Requests\/sec:/ { r = $2 }
		END { if (n == "" || n == 0) exit 1; printf "%d %.1f\n", n, r }' ||
		die "no request answered at $2 connections (${4:-close}): $out"
}

# The bundled prefork_server on 127.0.0.1:PORT answers a line.
line_ok() { # port
	"$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    s.sendall(b"ping\n")
    s.shutdown(socket.SHUT_WR)
    sys.exit(0 if s.recv(64).startswith(b"hello from worker ") else 1)
PYEOF
}

# ---- The servers ----

# The process name of server KIND's master and workers.
server_comm() { # kind
	case $1 in
	prefork) echo prefork_server ;;
	*) echo "$1" ;;
	esac
}

# An nginx configuration in DIR: WORKERS workers on 127.0.0.1:PORT, "ok"
# to every request, keep-alive as nginx's defaults (a request with
# `Connection: close` is answered and closed), no access log.
nginx_conf() { # dir workers port
	temp="    client_body_temp_path $1/client_body;"
	for m in proxy fastcgi uwsgi scgi; do
		if ! nginx -V 2>&1 | grep -q -- "--without-http_${m}_module"; then
			temp="$temp
    ${m}_temp_path $1/$m;"
		fi
	done
	cat >"$1/nginx.conf" <<NGINXEOF
daemon off;
master_process on;
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
$temp
    server {
        listen 127.0.0.1:$3;
        location / { return 200 "ok\n"; }
    }
}
NGINXEOF
}

# The HTTP modes (close, keepalive) each launch of server KIND serves:
# one word a launch, its modes joined by commas. nginx and gunicorn serve
# both from one launch; uWSGI needs a socket of another kind for each (see
# launch).
launch_modes() { # kind
	case $1 in
	uwsgi) echo close keepalive ;;
	*) echo close,keepalive ;;
	esac
}

# launch KIND WORKERS DIR [WRAPPER...]: starts server KIND (nginx,
# gunicorn: sync workers, uwsgi: for HTTP_MODE close (the default) its
# HTTP socket, saying `Connection: close`, one connection per request; for
# keepalive its HTTP/1.1 socket; prefork: the bundled
# prefork_server) with WORKERS workers on a free port of 127.0.0.1, and
# SERVER_OPTS (split at spaces) at the end of its command line; its files
# and output (DIR/out) in DIR, under WRAPPER (sockshim run ..., strace
# ...) if given, on SRV_PIN's CPU. Sets LAUNCHED (the pid of the tree's
# root) and LPORT (empty for prefork until serving finds it). Needs BUILD,
# HERE (tests/bench).
launch() {
	kind=$1 workers=$2 dir=$3
	shift 3
	mkdir -p "$dir"
	LPORT=
	case $kind in
	nginx)
		LPORT=$(free_port)
		nginx_conf "$dir" "$workers" "$LPORT"
		set -- "$@" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
		;;
	gunicorn)
		LPORT=$(free_port)
		set -- "$@" gunicorn --workers "$workers" --worker-class sync \
			--bind "127.0.0.1:$LPORT" --chdir "$HERE" --log-level warning bench_accept_app:app
		;;
	uwsgi)
		# uWSGI's HTTP/1.1 socket keeps every connection open, even after
		# a request that says `Connection: close` (proto/http.c: "Connection:
		# close is not honoured"), and turns the thunder lock off (it sets
		# is_et). Its plain HTTP socket closes after every response, but
		# does not say so, which wrk counts as a read error: it is told to
		# (--add-header), as nginx answers a request that asked to close.
		LPORT=$(free_port)
		if [ "${HTTP_MODE:-close}" = keepalive ]; then
			set -- "$@" uwsgi --http11-socket "127.0.0.1:$LPORT"
		else
			set -- "$@" uwsgi --http-socket "127.0.0.1:$LPORT" --add-header "Connection: close"
		fi
		set -- "$@" --plugin python3 \
			--processes "$workers" --master --wsgi-file "$HERE/bench_accept_app.py" \
			--callable app --need-app --die-on-term --disable-logging
		;;
	prefork)
		rm -f "$dir/port"
		set -- "$@" "$BUILD/examples/prefork_server" -w "$workers" -f "$dir/port"
		;;
	*)
		die "no server kind $kind"
		;;
	esac
	# shellcheck disable=SC2086
	PYTHONDONTWRITEBYTECODE=1 $SRV_PIN "$@" ${SERVER_OPTS:-} >"$dir/out" 2>&1 </dev/null &
	LAUNCHED=$!
}

# serving KIND WORKERS ROOT DIR: waits (START_TIMEOUT seconds at most)
# until the server ROOT launched in DIR has its master and WORKERS workers
# and answers; sets LPORT for prefork. Calls the caller's die otherwise.
serving() {
	deadline=$(($(date +%s) + START_TIMEOUT))
	while :; do
		alive "$3" || die "$1 ($4) exited at start-up: $(tail -n 5 "$4/out" 2>/dev/null)"
		if [ "$1" = prefork ] && [ -s "$4/port" ]; then LPORT=$(cat "$4/port"); fi
		if [ -n "$LPORT" ] && [ "$(tree_comm_pids "$3" "$(server_comm "$1")" | wc -l)" -ge $(($2 + 1)) ]; then
			if [ "$1" = prefork ]; then line_ok "$LPORT" && break; else http_ok "$LPORT" && break; fi
		fi
		[ "$(date +%s)" -lt "$deadline" ] ||
			die "$1 ($4) did not answer within ${START_TIMEOUT}s: $(tail -n 5 "$4/out" 2>/dev/null)"
		sleep 0.1
	done
}

# ---- Figures over rounds ----

# The median of the numbers on stdin ("n/a" without any).
median_in() {
	sort -n | awk '{ x[NR] = $1 } END { if (!NR) print "n/a"; else if (NR % 2) print x[(NR + 1) / 2];
		else print (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
}

# Their spread: (max - min) / median, in percent ("n/a" under 2).
spread_in() {
	sort -n | awk '{ x[NR] = $1 } END { if (NR < 2) { print "n/a"; exit }
		m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
		printf "%.0f%%\n", (m > 0) ? 100 * (x[NR] - x[1]) / m : 0 }'
}
