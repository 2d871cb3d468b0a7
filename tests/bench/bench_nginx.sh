#!/bin/sh
# make bench, per-connection overhead: nginx-light (WORKERS workers) under
# wrk with `Connection: close`, side by side in one run: without the shim,
# under `sockshim run --accept observe` with this build, and, when git can
# give it, with the shim of BASE_COMMIT (before issue 10's setsockopt
# wrapper, shutdown recording and lifetime histograms), built once into
# BUILD/bench/base-COMMIT. The three servers run at once (pinned to CPU 0,
# wrk to CPU 1) and are loaded in turn: ROUNDS rounds, each of every
# variant at 1 then 16 connections in flight. Per variant: requests/s and
# server CPU us per request (utime+stime of every nginx process, from
# /proc/PID/stat, over the run, divided by the requests), the median of
# the rounds and their spread ((max - min) / median). Prints; never fails
# on a figure. Fails only if a server does not start or a request fails.
# Loopback only, every wait bounded, servers stopped by pid.
# Usage: bench_nginx.sh [BUILD]; BENCH_NGINX_SECONDS (3) per run,
# BENCH_NGINX_ROUNDS (3), BENCH_NGINX_BASE (80ad451; "" to skip it).
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/../.."
SECS=${BENCH_NGINX_SECONDS:-3}
ROUNDS=${BENCH_NGINX_ROUNDS:-3}
BASE_COMMIT=${BENCH_NGINX_BASE-80ad451}
WORKERS=2
START_TIMEOUT=20 # seconds for a server to answer
STOP_TIMEOUT=10  # seconds for a server to exit after SIGTERM
PY=${PYTHON:-python3}
TMP=$(mktemp -d /tmp/sockshim-bench-nginx.XXXXXX)
RES=$TMP/results
SESS="bench-nginx-$$"
ROOTS="" # the servers' pids (nginx, or sockshim run above it)
# tree_pids, alive, free_port, http_ok
. "$(dirname "$0")/bench_lib.sh"

# The nginx processes (master and workers) of the server started as ROOT.
nginx_pids() {
	for p in $(tree_pids "$1"); do
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = nginx ]; then echo "$p"; fi
	done
}

# CPU ticks (utime + stime) of PIDS.
ticks_of() {
	for p in "$@"; do
		sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }'
	done | awk '{ t += $1 } END { printf "%d\n", t }'
}

stop_servers() {
	for r in $ROOTS; do
		stop_root "$r" nginx
	done
	ROOTS=""
}

cleanup() {
	stop_servers
	rm -rf "$TMP"
	rm -f /dev/shm/sockshim."$(id -u)"."$SESS"-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench_nginx: $*" >&2
	for l in "$TMP"/*/error.log "$TMP"/*/run.log; do
		if [ -s "$l" ]; then
			echo "bench_nginx: $l (last 10 lines):" >&2
			tail -n 10 "$l" | sed 's/^/  /' >&2
		fi
	done
	exit 1
}

echo
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ ! -x "$NGINX" ] || ! command -v wrk >/dev/null 2>&1; then
	echo "nginx per-connection overhead: skipped, needs nginx-light and wrk" \
		"(apt-get install -y nginx-light wrk)"
	exit 0
fi

if [ "$(nproc)" -ge 2 ]; then
	SRV_PIN="taskset -c 0" CLI_PIN="taskset -c 1" PINNED="nginx on CPU 0, wrk on CPU 1"
else
	SRV_PIN="" CLI_PIN="" PINNED="one CPU: nginx and wrk share it"
fi

# The shim before issue 10's additions: its tree from git (git archive, no
# worktree), built once and kept in BUILD/bench/base-COMMIT.
BASE_NOTE=""
BASE_DIR=""
if [ -z "$BASE_COMMIT" ]; then
	BASE_NOTE="not measured (BENCH_NGINX_BASE empty)"
elif ! command -v git >/dev/null 2>&1 || ! git rev-parse --git-dir >/dev/null 2>&1; then
	BASE_NOTE="not measured (no git repository here)"
elif ! full=$(git rev-parse --verify -q "$BASE_COMMIT^{commit}"); then
	BASE_NOTE="not measured (commit $BASE_COMMIT not in this repository)"
else
	BASE_DIR=$BUILD/bench/base-$BASE_COMMIT
	if [ ! -x "$BASE_DIR/sockshim" ] || [ ! -f "$BASE_DIR/libsockshim.so" ] ||
		[ "$(cat "$BASE_DIR/commit" 2>/dev/null)" != "$full" ]; then
		rm -rf "$BASE_DIR" "$TMP/src"
		mkdir -p "$TMP/src" "$BASE_DIR"
		if git archive "$full" | tar -x -C "$TMP/src" &&
			make -C "$TMP/src" -j"$(nproc)" BUILD=build all >"$TMP/base-build.log" 2>&1 &&
			cp "$TMP/src/build/sockshim" "$TMP/src/build/libsockshim.so" "$BASE_DIR/"; then
			echo "$full" >"$BASE_DIR/commit"
		else
			BASE_NOTE="not measured (the build of $BASE_COMMIT failed: $(tail -n 1 "$TMP/base-build.log"))"
			rm -rf "$BASE_DIR"
			BASE_DIR=""
		fi
		rm -rf "$TMP/src"
	fi
fi

# start VARIANT TOOL: nginx in TMP/VARIANT, under TOOL run --accept observe
# unless TOOL is "none"; sets PORT_<VARIANT> and adds to ROOTS.
start() {
	v=$1 tool=$2
	d=$TMP/$v
	mkdir -p "$d"
	port=$(free_port)
	temp="    client_body_temp_path $d/client_body;"
	for m in proxy fastcgi uwsgi scgi; do
		if ! "$NGINX" -V 2>&1 | grep -q -- "--without-http_${m}_module"; then
			temp="$temp
    ${m}_temp_path $d/$m;"
		fi
	done
	cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $WORKERS;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
$temp
    keepalive_timeout 0;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "ok\n"; }
    }
}
EOF
	set -- "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
	if [ "$tool" != none ]; then
		set -- "$tool" run --session "$SESS-$v" --accept observe -- "$@"
	fi
	# shellcheck disable=SC2086
	$SRV_PIN "$@" >"$d/run.log" 2>&1 </dev/null &
	r=$!
	ROOTS="$ROOTS $r"
	eval "PORT_$v=$port ROOT_$v=$r"
	i=0
	while :; do
		alive "$r" || die "nginx ($v) exited at start-up"
		if [ "$(nginx_pids "$r" | wc -l)" -ge $((WORKERS + 1)) ] && http_ok "$port"; then break; fi
		i=$((i + 1))
		[ $i -lt $((START_TIMEOUT * 10)) ] || die "nginx ($v) did not answer within ${START_TIMEOUT}s"
		sleep 0.1
	done
	# The shim asked for, and only that one, in every nginx process.
	want=none
	if [ "$tool" != none ]; then want=$(cd "$(dirname "$tool")" && pwd)/libsockshim.so; fi
	for p in $(nginx_pids "$r"); do
		got=$(awk '$6 ~ /libsockshim\.so$/ { print $6; exit }' "/proc/$p/maps" 2>/dev/null)
		[ "${got:-none}" = "$want" ] || die "nginx ($v) pid $p maps ${got:-no shim}, not $want"
	done
}

# load PORT CONNS SECONDS: "requests req/s"; fails, saying why, if a
# request failed.
load() {
	# shellcheck disable=SC2086
	out=$($CLI_PIN timeout $(($3 + 30)) wrk -t1 -c"$2" -d"$3s" -H 'Connection: close' \
		"http://127.0.0.1:$1/" 2>&1) || die "wrk failed: $out"
	if echo "$out" | grep -Eq 'Socket errors|Non-2xx'; then
		die "requests failed at $2 connections: $(echo "$out" | grep -E 'Socket errors|Non-2xx')"
	fi
	echo "$out" | awk '/ requests in / { n = $1 } /^Requests\/sec:/ { r = $2 }
		END { if (n == "" || n == 0) exit 1; printf "%d %.1f\n", n, r }' ||
		die "no request answered at $2 connections: $out"
}

# measure VARIANT CONNS ROUND: one run, appended to the results as
# "VARIANT CONNS ROUND req/s cpu_us/req".
measure() {
	eval "port=\$PORT_$1 root=\$ROOT_$1"
	pids=$(nginx_pids "$root")
	# shellcheck disable=SC2086
	t0=$(ticks_of $pids)
	r=$(load "$port" "$2" "$SECS")
	# shellcheck disable=SC2086
	t1=$(ticks_of $pids)
	echo "$1 $2 $3 $r $t0 $t1 $(getconf CLK_TCK)" | awk '{
		printf "%s %s %s %s %.2f\n", $1, $2, $3, $5, ($7 - $6) * 1e6 / $8 / $4 }' >>"$RES"
}

VARIANTS="none observe"
start none none
start observe "$BUILD/sockshim"
if [ -n "$BASE_DIR" ]; then
	VARIANTS="$VARIANTS base"
	start base "$BASE_DIR/sockshim"
fi

echo "nginx per-connection overhead: nginx-light $WORKERS workers, Connection: close,"
echo "$SECS s per run, $ROUNDS rounds alternating the variants; $PINNED."
echo "Median of the rounds (spread: (max - min) / median); CPU: utime+stime of the nginx"
echo "processes per request. observe: this build under sockshim run --accept observe;"
if [ -n "$BASE_DIR" ]; then
	echo "$BASE_COMMIT: the shim of commit $BASE_COMMIT (before issue 10's additions), the same way."
else
	echo "the shim before issue 10's additions: $BASE_NOTE."
fi
echo "Load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$RES"
for v in $VARIANTS; do
	eval "port=\$PORT_$v"
	load "$port" 16 1 >/dev/null # warm-up: workers in their loop, caches hot
done
round=1
while [ $round -le "$ROUNDS" ]; do
	for conns in 1 16; do
		for v in $VARIANTS; do measure "$v" "$conns" "$round"; done
	done
	round=$((round + 1))
done
stop_servers

# median VARIANT CONNS K (4: req/s, 5: CPU us/req) and spread.
median() {
	awk -v v="$1" -v c="$2" -v k="$3" '$1 == v && $2 == c { print $k }' "$RES" | sort -n |
		awk '{ x[NR] = $1 } END { if (!NR) print "n/a"; else if (NR % 2) print x[(NR + 1) / 2];
			else print (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
}
spread() {
	awk -v v="$1" -v c="$2" -v k="$3" '$1 == v && $2 == c { print $k }' "$RES" | sort -n |
		awk '{ x[NR] = $1 } END { if (NR < 2) { print "n/a"; exit }
			m = NR % 2 ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2
			printf "%.0f%%\n", (m > 0) ? 100 * (x[NR] - x[1]) / m : 0 }'
}
name() {
	case $1 in
	none) echo "no shim" ;;
	observe) echo "observe (this build)" ;;
	base) echo "observe ($BASE_COMMIT)" ;;
	esac
}

echo
printf "%-24s %5s %10s %7s %11s %7s\n" variant conns "req/s" spread "CPU us/req" spread
for v in $VARIANTS; do
	for conns in 1 16; do
		printf "%-24s %5s %10s %7s %11s %7s\n" "$(name "$v")" "$conns" \
			"$(median "$v" "$conns" 4)" "$(spread "$v" "$conns" 4)" \
			"$(median "$v" "$conns" 5)" "$(spread "$v" "$conns" 5)"
	done
done

# ratio A B CONNS K: the medians' ratio.
ratio() {
	echo "$(median "$1" "$3" "$4") $(median "$2" "$3" "$4")" |
		awk '$1 == "n/a" || $2 == "n/a" || $2 == 0 { print "n/a"; exit } { printf "%.3f\n", $1 / $2 }'
}
echo
printf "%-52s %8s %8s\n" ratio "1 conn" "16 conns"
pairs="observe:none"
if [ -n "$BASE_DIR" ]; then pairs="$pairs base:none observe:base"; fi
for p in $pairs; do
	a=${p%%:*} b=${p#*:}
	printf "%-52s %8s %8s\n" "$(name "$a") / $(name "$b"), CPU us/req" \
		"$(ratio "$a" "$b" 1 5)" "$(ratio "$a" "$b" 16 5)"
	printf "%-52s %8s %8s\n" "$(name "$a") / $(name "$b"), req/s" \
		"$(ratio "$a" "$b" 1 4)" "$(ratio "$a" "$b" 16 4)"
done
if [ -z "$BASE_DIR" ]; then echo "(before issue 10's additions: $BASE_NOTE)"; fi
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
