# Sourced by the server benchmarks (bench_accept.sh, bench_nginx.sh): the
# process and HTTP helpers they share. PY is the caller's python3.

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
