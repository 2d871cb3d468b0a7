#!/usr/bin/env python3
"""make soak: nginx-light (4 workers) under `sockshim run` (observe) for
SECONDS (default 300) of wrk with `Connection: close`, 16 connections in
flight. Every 10 s it samples each worker's private anonymous memory
(RssAnon in /proc/PID/status) and at the end prints the series, wrk's
totals and errors, and the shim's accept count beside nginx's own
(stub_status: accepted connections). Exit 1 when wrk saw an error or a
non-2xx answer, a worker died, the shim's accepts differ from nginx's, or
a worker's anonymous
memory grew by more than GROWTH_KIB between the first sample (after a
warm-up) and the last. Loopback only; everything it starts is stopped by
its pid. Usage: soak_nginx.py BUILD [SECONDS]"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

WORKERS = 4
CONNECTIONS = 16
SAMPLE_EVERY = 10.0
WARMUP = 20.0
# nginx's own pools may round up by a page or two; a leak of the shim's
# (per connection) would be megabytes over a million connections.
GROWTH_KIB = 256

CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    keepalive_timeout 0;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "soak\\n"; }}
        location = /status {{ stub_status; access_log off; }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(r"^RssAnon:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1))


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def http_get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: soak\r\n\r\n" % path).encode())
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                return data
            data += b


def wait_port(port, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("soak: nginx exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("soak: nginx did not listen on %d" % port)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK) or not shutil.which("wrk"):
        raise SystemExit("soak: needs nginx-light and wrk (apt-get install -y nginx-light wrk)")
    tmp = tempfile.mkdtemp(prefix="sockshim-soak.")
    port = free_port()
    session = "soak-%d" % os.getpid()
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(CONF.format(workers=WORKERS, tmp=tmp, port=port))
    tool = os.path.join(build, "sockshim")
    run = subprocess.Popen([tool, "run", "--session", session, "--", nginx, "-p", tmp, "-c",
                            os.path.join(tmp, "nginx.conf"), "-e",
                            os.path.join(tmp, "error.log")],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "run.err"),
                                                                  "w"),
                           start_new_session=True)
    failures = []
    try:
        wait_port(port, run)
        master = children(run.pid)
        workers = children(master[0]) if master else []
        if len(workers) != WORKERS:
            raise SystemExit("soak: nginx workers %s" % workers)
        wrk = subprocess.Popen(["wrk", "-t2", "-c%d" % CONNECTIONS, "-d%ds" % int(seconds),
                                "-H", "Connection: close", "http://127.0.0.1:%d/" % port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        samples = []
        time.sleep(WARMUP)
        while wrk.poll() is None:
            samples.append((round(time.monotonic() - t0), [rss_anon_kib(p) for p in workers]))
            time.sleep(SAMPLE_EVERY)
        out = wrk.communicate()[0].decode()
        alive = [p for p in workers if os.path.exists("/proc/%d" % p)]
        if alive != workers:
            failures.append("workers died: %s" % sorted(set(workers) - set(alive)))
        samples.append((round(time.monotonic() - t0), [rss_anon_kib(p) for p in alive]))
        print("sockshim soak: nginx-light %d workers under sockshim run (observe), wrk -t2 -c%d "
              "-d%ds, Connection: close" % (WORKERS, CONNECTIONS, seconds))
        print(out.strip())
        m = re.search(r"(\d+) requests in", out)
        requests = int(m.group(1)) if m else 0
        if "Socket errors" in out or "Non-2xx" in out or not requests:
            failures.append("wrk saw errors")
        print("\nworkers' RssAnon (KiB), every %.0f s after a %.0f s warm-up:" % (SAMPLE_EVERY,
                                                                                  WARMUP))
        for t, kib in samples:
            print("  t=%4ds  %s" % (t, "  ".join("%6d" % k for k in kib)))
        growth = [b - a for a, b in zip(samples[0][1], samples[-1][1])]
        print("growth first->last sample: %s KiB (limit %d)" % (growth, GROWTH_KIB))
        if max(growth) > GROWTH_KIB:
            failures.append("a worker's anonymous memory grew by %d KiB" % max(growth))
        # nginx's own count of accepted connections (this one included),
        # then ours, once its accept has surely been counted.
        status = http_get(port, "/status")
        m = re.search(rb"server accepts handled requests\s+(\d+) (\d+) (\d+)", status)
        nginx_accepts = int(m.group(1)) if m else -1
        time.sleep(0.5)
        st = subprocess.run([tool, "stats", "--session", session, "--json"],
                            stdout=subprocess.PIPE, timeout=60).stdout.decode()
        accepts = json.loads(st.splitlines()[0])["accepts"] if st.strip() else -1
        print("accepted connections: shim %d, nginx stub_status %d; wrk completed %d "
              "requests" % (accepts, nginx_accepts, requests))
        if accepts != nginx_accepts:
            failures.append("shim accepts %d != nginx's %d" % (accepts, nginx_accepts))
    finally:
        try:
            os.killpg(run.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            run.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
        subprocess.run([tool, "clean", "--session", session], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
