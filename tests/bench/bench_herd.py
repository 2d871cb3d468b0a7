#!/usr/bin/env python3
"""make bench, the herd as the kernel counts it: gunicorn (4 sync workers:
select, then a non-blocking accept), 300 sequential requests, not pinned.
The kernel's own count of the workers' accept4 calls that failed with
EAGAIN and of their pselect6 returns (perf at the syscall tracepoints,
attached to the workers for the requests only), without the shim, without
it under strace (which slows the winner, so more losers wake in time to
find nothing), and under `sockshim run --accept observe|serialize`, beside
the shim's spurious wakeups and empty accepts for the same requests.
Prints; never fails on a figure. Skips (exit 0) without perf, tracefs or
gunicorn. Usage: bench_herd.py BUILD"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REQUESTS = 300
WORKERS = 4
START_TIMEOUT = 20.0
ATTACH_WAIT = 0.5  # perf and strace attach before the first request
EAGAIN = 11
HERE = os.path.dirname(os.path.abspath(__file__))
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    return data


def ok(response):
    return response.split(b" ", 2)[1:2] == [b"200"] and response.endswith(b"\r\n\r\nok\n")


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def start(build, port, mode, session, tmp):
    app_dir = os.path.join(tmp, "app")
    os.makedirs(app_dir, exist_ok=True)
    shutil.copy(os.path.join(HERE, "bench_accept_app.py"), os.path.join(app_dir, "app.py"))
    argv = [shutil.which("gunicorn"), "--workers", str(WORKERS), "--worker-class", "sync",
            "--bind", "127.0.0.1:%d" % port, "--chdir", app_dir, "app:app"]
    if mode:
        argv = [os.path.join(build, "sockshim"), "run", "--keep", "--session", session,
                "--accept", mode, "--"] + argv
    log = open(os.path.join(tmp, "server.log"), "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if ok(get(port)):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer (see %s)" % log.name)
            time.sleep(0.1)
        master = proc.pid if not mode else children(proc.pid)[0]
        while len(children(master)) < WORKERS:
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn has %d workers" % len(children(master)))
            time.sleep(0.1)
        return proc, children(master)
    except BaseException:
        stop(proc)
        raise


def stop(proc):
    """SIGTERM, then SIGKILL to its whole group (every worker) if need be."""
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def listener_counts(build, session, port):
    out = subprocess.run([os.path.join(build, "sockshim"), "stats", "--session", session,
                          "--json"], stdout=subprocess.PIPE, check=True, timeout=30).stdout
    for line in out.decode().splitlines():
        o = json.loads(line)
        if o.get("local") == "127.0.0.1:%d" % port:
            return o["accepts"], o["spurious_wakeups"], o["empty_accepts"]
    raise RuntimeError("no listener 127.0.0.1:%d in session %s" % (port, session))


def perf_counts(path):
    counts = []
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) >= 3 and fields[2].startswith("syscalls:"):
                counts.append(int(fields[0]) if fields[0].isdigit() else None)
    return counts


def run(build, label, mode, traced, tmp):
    port = free_port()
    session = "bench-herd-%d-%s" % (os.getpid(), mode or "none")
    proc, workers = start(build, port, mode, session, tmp)
    pids = ",".join(str(p) for p in workers)
    perf_out = os.path.join(tmp, "perf.%s.csv" % label.replace(" ", "_").replace(",", ""))
    perf = subprocess.Popen(["perf", "stat", "-x", ",", "-o", perf_out,
                             "-e", "syscalls:sys_exit_accept4", "--filter", "ret == -%d" % EAGAIN,
                             "-e", "syscalls:sys_exit_accept4",
                             "-e", "syscalls:sys_exit_pselect6", "-p", pids],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    strace = None
    if traced:
        argv = ["strace", "-f", "-qq", "-e", "trace=accept4", "-e", "signal=none", "-o",
                os.path.join(tmp, "strace.txt")]
        for p in workers:
            argv += ["-p", str(p)]
        strace = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(ATTACH_WAIT)
        before = listener_counts(build, session, port) if mode else None
        t0 = time.monotonic()
        for _ in range(REQUESTS):
            r = get(port)
            if not ok(r):
                raise RuntimeError("%s: a request failed: %r" % (label, r[:200]))
        took = time.monotonic() - t0
        after = listener_counts(build, session, port) if mode else None
    finally:
        for tracer in (perf, strace):
            if tracer:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(timeout=30)
        stop(proc)
        if mode:
            subprocess.run([os.path.join(build, "sockshim"), "clean", "--session", session],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    eagain, calls, selects = (perf_counts(perf_out) + [None] * 3)[:3]
    shim = None
    if mode:
        shim = tuple(a - b for a, b in zip(after, before))
    return {"label": label, "eagain": eagain, "calls": calls, "selects": selects,
            "shim": shim, "ms_per_request": took * 1e3 / REQUESTS}


def per(v):
    return "%8.2f" % (v / REQUESTS) if v is not None else "     n/a"


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
    if not shutil.which("perf") or not any(
            os.path.exists(t + "/events/syscalls/sys_exit_accept4") for t in TRACEFS):
        print("herd (kernel-counted): skipped, perf or the syscall tracepoints are missing")
        return 0
    if subprocess.run(["perf", "stat", "-e", "syscalls:sys_exit_accept4", "--", "true"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        print("herd (kernel-counted): skipped, perf cannot count syscall tracepoints here")
        return 0
    if not shutil.which("gunicorn"):
        print("herd (kernel-counted): skipped, gunicorn is not installed")
        return 0
    configs = [("4 workers, no shim", None, False)]
    if shutil.which("strace"):
        configs.append(("4 workers, no shim, strace", None, True))
    configs += [("4 workers, observe", "observe", False),
                ("4 workers, serialize", "serialize", False)]
    with tempfile.TemporaryDirectory(prefix="sockshim-bench-herd.") as tmp:
        rows = [run(build, label, mode, traced, tmp) for label, mode, traced in configs]
    print()
    print("herd as the kernel counts it: gunicorn, %d sequential requests, not pinned;"
          % REQUESTS)
    print("per request: the workers' accept4 calls failing with EAGAIN and their pselect6")
    print("returns (perf, syscall tracepoints), the shim's spurious wakeups and empty accepts")
    print()
    print("%-28s %9s %9s %9s %9s %9s" % ("gunicorn", "EAGAIN", "accept4", "pselect6",
                                         "spurious", "empty"))
    for r in rows:
        sp, em = (r["shim"][1], r["shim"][2]) if r["shim"] else (None, None)
        print("%-28s %9s %9s %9s %9s %9s" % (r["label"], per(r["eagain"]), per(r["calls"]),
                                             per(r["selects"]), per(sp), per(em)))
    print("(spurious + empty = the EAGAIN failures; strace makes the losers look many)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
