# Sourced by the server benchmarks (bench_accept.sh, bench_nginx.sh): the
# process and HTTP helpers they share. PY is the caller's python3,
# STOP_TIMEOUT its bound on a server's exit.

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
