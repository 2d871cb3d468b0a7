"""Statistics of the living (issue 12, point 8), under real servers in
serialize mode: `sockshim stats` shows rows only for threads that accept or
wait for the listener, fairness among those, waiters and the lock holder
of live threads only, and accept counts equal to the requests served.

PHP-FPM (blocking accept: the accept lock) with workers killed while
waiting and while holding the lock, reloaded (SIGUSR2) and stopped; Puma
(2 workers, threads 2:4: poll, the poll token) under 800 requests.
Loopback only; every wait has a deadline; every process is stopped by its
pid."""

import concurrent.futures
import glob
import json
import os
import signal
import socket
import struct
import time

import lib
import srvlib
from lib import tool

WAIT = 30.0
FPM_WORKERS = 4


# ---------------------------------------------------------------------------
# A FastCGI client: one request per connection, as a web server sends it.

FCGI_BEGIN, FCGI_END, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT = 1, 3, 4, 5, 6


def _record(typ, body, req=1):
    return struct.pack(">BBHHBx", 1, typ, req, len(body), 0) + body


def _pair(k, v):
    k, v = k.encode(), v.encode()
    return bytes([len(k), len(v)]) + k + v  # both under 128 bytes


def fcgi_get(port, script, timeout=20.0):
    """Run SCRIPT through the FastCGI server on 127.0.0.1:PORT: its stdout."""
    params = b"".join(_pair(k, v) for k, v in (
        ("SCRIPT_FILENAME", script), ("REQUEST_METHOD", "GET"), ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.0"), ("GATEWAY_INTERFACE", "CGI/1.1")))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_record(FCGI_BEGIN, struct.pack(">HB5x", 1, 0)) + _record(FCGI_PARAMS, params)
                  + _record(FCGI_PARAMS, b"") + _record(FCGI_STDIN, b""))
        data, out = b"", b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("FastCGI server closed before the end of the request")
            data += chunk
            while len(data) >= 8:
                _, typ, _, clen, plen = struct.unpack(">BBHHB", data[:7])
                if len(data) < 8 + clen + plen:
                    break
                body, data = data[8:8 + clen], data[8 + clen + plen:]
                if typ == FCGI_STDOUT:
                    out += body
                elif typ == FCGI_END:
                    return out.split(b"\r\n\r\n", 1)[-1].decode()


# ---------------------------------------------------------------------------
# PHP-FPM.

FPM_CONF = """[global]
pid = {dir}/fpm.pid
error_log = {dir}/fpm.log
daemonize = no
[www]
listen = 127.0.0.1:{port}
pm = static
pm.max_children = {workers}
"""


def _php_fpm():
    found = sorted(glob.glob("/usr/sbin/php-fpm*"))
    if not found:
        raise lib.Skip("php-fpm is not installed (apt-get install -y php-fpm)")
    return found[-1]


def _stats(ctx, session, port=None):
    """The listener of SESSION on 127.0.0.1:PORT (without PORT, its one
    listener), as `sockshim stats --json` says it."""
    out = [json.loads(l) for l in tool(ctx, ["stats", "--session", session, "--json"])
           .stdout.splitlines()]
    if port is not None:
        out = [o for o in out if o["local"] == "127.0.0.1:%d" % port]
    assert len(out) == 1, out
    return out[0]


def _show(o):
    return json.dumps({k: o.get(k) for k in ("accepts", "waiters", "max_waiters", "holder",
                                             "lock", "lock_owner_died", "closed",
                                             "retired_workers")}
                      | {"workers": [(w["pid"], w["calls"], w["accepts"], w["waiting"])
                                     for w in o.get("workers", [])]})


def _wait_stats(ctx, session, ready, what, procs=(), port=None):
    deadline = time.monotonic() + WAIT
    while True:
        o = _stats(ctx, session, port)
        if ready(o):
            return o
        for p in procs:
            assert p.poll() is None, "%s: pid %d exited: %s" % (what, p.pid, ctx.output(p)[1])
        assert time.monotonic() < deadline, "%s: not after %.0fs: %s" % (what, WAIT, _show(o))
        time.sleep(0.1)


def _fpm_reload(master, live, what):
    """Reload PHP-FPM (SIGUSR2 to MASTER: it execs itself) and wait until
    FPM_WORKERS workers run, none of LIVE, the old ones: the new ones."""
    old = set(live)
    os.kill(master, signal.SIGUSR2)
    deadline = time.monotonic() + WAIT
    while True:
        now = [p for p in _fpm_workers(master) if lib.alive(p)]
        if len(now) == FPM_WORKERS and not set(now) & old:
            return now
        assert time.monotonic() < deadline, "%s: workers %s" % (what, now)
        time.sleep(0.1)


def _fpm_workers(master):
    return sorted(p for p in lib.descendants(master) if lib.ppid(p) == master)


def _wait_fpm_workers(master, exclude, what):
    deadline = time.monotonic() + WAIT
    while True:
        w = [p for p in _fpm_workers(master) if p not in exclude and lib.alive(p)]
        if len(w) == FPM_WORKERS:
            return w
        assert time.monotonic() < deadline, "%s: workers %s" % (what, w)
        time.sleep(0.1)


def _settled(live):
    """Four live workers: one holds the lock (in accept), three wait for
    it, a row each and nothing else."""
    def ready(o):
        rows = {w["pid"] for w in o["workers"]}
        return (rows == set(live) and o["holder"] is not None and o["holder"]["pid"] in live
                and o["lock"]["state"] == "held" and o["waiters"] == FPM_WORKERS - 1
                and sum(w["waiting"] for w in o["workers"]) == FPM_WORKERS - 1)
    return ready


def test_living_php_fpm_kill_reload_stop(ctx):
    """PHP-FPM, 4 static workers, serialize: one holds the accept lock,
    three wait. A waiter killed with -9 is no waiter and no row once dead
    (waiters stay 3 with its replacement, not 4); a holder killed with -9
    hands the lock over at once (the kernel wakes a waiter, which takes it
    over: owner died + 1, a live holder and 3 waiters); after a reload (SIGUSR2: the
    master execs itself, new workers) only the new workers have rows and
    wait; after a reload onto another port the old listener is closed; after
    a stop no row, no waiter, no holder, and both listeners are closed. Every answer counted: stats accepts == requests. PHP-FPM
    listens with backlog -1: the backlog shown is -1."""
    fpm = _php_fpm()
    port = lib.free_port()
    with open(os.path.join(ctx.tmp, "fpm.conf"), "w") as f:
        f.write(FPM_CONF.format(dir=ctx.tmp, port=port, workers=FPM_WORKERS))
    script = os.path.join(ctx.tmp, "pid.php")
    with open(script, "w") as f:
        f.write("<?php echo getmypid(), \"\\n\";\n")
    s = ctx.session()
    argv = [fpm, "-F", "-n", "-y", os.path.join(ctx.tmp, "fpm.conf")]
    if os.geteuid() == 0:
        argv.insert(1, "-R")  # run the pool as root: the test's own user
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--keep", "--accept", "serialize", "--"]
                    + argv, preload=False, extra_env=srvlib.run_env(ctx), name="fpm")
    served = 0
    master = None
    try:
        # Ready when the first request is answered: no probe connection
        # (each would be one more accept) besides the requests counted.
        deadline = time.monotonic() + WAIT
        while True:
            try:
                first = int(fcgi_get(port, script))
                served += 1
                break
            except ConnectionRefusedError:
                assert run.poll() is None, ctx.output(run)
                assert time.monotonic() < deadline, "php-fpm does not listen on %d" % port
                time.sleep(0.05)
        master = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid][0]
        live = _wait_fpm_workers(master, (), "php-fpm start")
        assert first in live, (first, live)

        def serve(n):
            nonlocal served
            pids = set()
            for _ in range(n):
                pids.add(int(fcgi_get(port, script)))
                served += 1
            return pids

        assert serve(20) <= set(live)
        o = _wait_stats(ctx, s, _settled(live), "php-fpm: a holder and 3 waiters", (run,))
        # PHP-FPM listens with backlog -1 (the kernel's maximum): shown as
        # passed, not as unknown.
        assert o["listen_backlog"] == -1, _show(o)
        assert "  listen(backlog -1)" in tool(ctx, ["stats", "--session", s]).stdout

        # A waiter killed while waiting: it waits no more.
        o = _stats(ctx, s)
        waiter = [w["pid"] for w in o["workers"] if w["waiting"]][0]
        os.kill(waiter, signal.SIGKILL)
        assert lib.wait_gone([waiter]) == []
        live = _wait_fpm_workers(master, (waiter,), "php-fpm respawn after a waiter's kill")
        o = _wait_stats(ctx, s, _settled(live), "php-fpm after kill -9 of a waiter", (run,))
        assert waiter not in {w["pid"] for w in o["workers"]}, _show(o)

        # The holder killed while in accept: its robust list names the
        # lock, so the kernel wakes a waiter, which takes the lock over at
        # once, before any connection comes.
        holder = o["holder"]["pid"]
        died = o["lock_owner_died"]
        os.kill(holder, signal.SIGKILL)
        assert lib.wait_gone([holder]) == []
        live = _wait_fpm_workers(master, (waiter, holder), "php-fpm respawn after the holder's")
        o = _wait_stats(ctx, s, _settled(live), "php-fpm after kill -9 of the holder: "
                        "taken over", (run,))
        assert o["lock_owner_died"] == died + 1 and o["holder"]["pid"] != holder, _show(o)
        text = tool(ctx, ["stats", "--session", s]).stdout
        assert "  lock holder: pid %d tid %d" % (o["holder"]["pid"], o["holder"]["tid"]) \
            in text, text
        assert serve(20) <= set(live)
        o = _wait_stats(ctx, s, _settled(live), "php-fpm: after the take-over", (run,))
        assert o["lock_owner_died"] == died + 1, _show(o)

        # Reload: the master execs itself, its workers are replaced.
        live = _fpm_reload(master, live, "php-fpm reload")
        assert serve(20) <= set(live)
        o = _wait_stats(ctx, s, _settled(live), "php-fpm after a reload", (run,))
        assert o["closed"] is False and o["accepts"] == served, (served, _show(o))
        ret = o["retired_workers"]
        assert ret["accepts"] + sum(w["accepts"] for w in o["workers"]) == served, _show(o)

        # A reload onto another port: PHP-FPM closes the inherited listener
        # its configuration no longer names; that listener, its last
        # reference gone, is closed, with no row, waiter or holder.
        port1, served1, port = port, served, lib.free_port()
        with open(os.path.join(ctx.tmp, "fpm.conf"), "w") as f:
            f.write(FPM_CONF.format(dir=ctx.tmp, port=port, workers=FPM_WORKERS))
        live = _fpm_reload(master, live, "php-fpm reload to a new port")
        deadline = time.monotonic() + WAIT
        while True:  # the new listener is there once its first answer comes
            try:
                assert int(fcgi_get(port, script)) in live
                served += 1
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "php-fpm does not listen on %d" % port
                time.sleep(0.05)
        assert serve(9) <= set(live)
        o = _stats(ctx, s, port1)
        assert (o["workers"], o["waiters"], o["holder"], o["closed"], o["accepts"]) == \
            ([], 0, None, True, served1), _show(o)
        text = tool(ctx, ["stats", "--session", s]).stdout
        assert "LISTENER 127.0.0.1:%d  inode %d  mode serialize  listen(backlog -1)  CLOSED " \
            "(the kernel lists it no more; its counts are history)\n" % (port1, o["inode"]) \
            in text, text
        o = _wait_stats(ctx, s, _settled(live), "php-fpm on the new port", (run,), port)
        assert o["closed"] is False and o["accepts"] == served - served1, (served, _show(o))

        # Stop: every worker and the master gone, nothing alive is shown.
        srvlib.signal_run(run, signal.SIGQUIT)
        srvlib.wait_exit(run, WAIT, "php-fpm under sockshim run after SIGQUIT")
        assert lib.wait_gone([master] + live) == []
        served -= served1
        o = _stats(ctx, s, port)
        assert (o["workers"], o["waiters"], o["holder"], o["closed"]) == ([], 0, None, True), \
            _show(o)
        assert o["lock"]["state"] in ("free", "abandoned"), _show(o)
        assert o["accepts"] == served and o["retired_workers"]["accepts"] == served, \
            (served, _show(o))
        text = tool(ctx, ["stats", "--session", s]).stdout
        assert text.count("  no live worker accepts on it now\n") == 2 and \
            text.count("waiters now/max        0/") == 2 and text.count("  CLOSED (") == 2, text
        prom = tool(ctx, ["stats", "--session", s, "--prometheus"]).stdout
        closed = [l for l in prom.splitlines() if l.startswith("sockshim_listener_closed{")]
        assert len(closed) == 2 and all(l.endswith("} 1") for l in closed), closed
    finally:
        srvlib.reap(run, ([master] + _fpm_workers(master)) if master else [])


# ---------------------------------------------------------------------------
# Puma.

PUMA_CONF = """workers 2
threads 2, 4
bind "tcp://127.0.0.1:{port}"
log_requests true
"""
PUMA_APP = 'run lambda { |env| [200, {"content-type" => "text/plain"}, ["ok\\n"]] }\n'
PUMA_REQUESTS = 800
PUMA_CLIENTS = 8


def _jain(x):
    return sum(x) ** 2 / (len(x) * sum(v * v for v in x)) if x and any(x) else 1.0


def _thread_comm(pid, tid):
    try:
        with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
            return f.read().strip()
    except OSError:
        return None


def test_living_puma_rows_fairness_backlog(ctx):
    """Puma, 2 workers with threads 2:4, serialize, 800 requests from 8
    clients at once: a row for each thread that accepts or waits for the
    listener (each worker's server thread, gated by the poll token), none
    for the thread pools' threads, which never call accept; fairness over
    those rows (a worker that waited and got nothing counts as 0); the rows'
    accepts sum to the requests, which are Puma's own count (one log line
    each) and the client's. Puma listens twice (4096, then 1024): the
    backlog shown is the last."""
    puma = srvlib.need("puma", "puma")
    port = lib.free_port()
    conf, app = (os.path.join(ctx.tmp, n) for n in ("puma.rb", "config.ru"))
    with open(conf, "w") as f:
        f.write(PUMA_CONF.format(port=port))
    with open(app, "w") as f:
        f.write(PUMA_APP)
    s = ctx.session()
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--accept", "serialize", "--",
                     puma, "-C", conf, app], preload=False, extra_env=srvlib.run_env(ctx),
                    name="puma")
    served = 0
    try:
        # Ready at the first answer: no probe connection uncounted.
        deadline = time.monotonic() + WAIT
        while True:
            try:
                assert lib.http_get(port, timeout=20) == (200, b"ok\n")
                served += 1
                break
            except ConnectionRefusedError:
                assert run.poll() is None, ctx.output(run)
                assert time.monotonic() < deadline, "puma does not listen on %d" % port
                time.sleep(0.05)
        # Both workers booted (each server thread has its row, waiting for
        # the listener) before the load: the first answer may come while
        # the second worker still boots, and it would then find no
        # connection left to accept.
        _wait_stats(ctx, s, lambda o: len({w["pid"] for w in o["workers"]}) == 2,
                    "puma: both workers waiting for the listener", (run,))
        # 8 clients at once: the pools' threads all get work.
        per = (PUMA_REQUESTS - served) // PUMA_CLIENTS
        with concurrent.futures.ThreadPoolExecutor(PUMA_CLIENTS) as ex:
            answers = list(ex.map(lambda _: [lib.http_get(port, timeout=20) for _ in range(per)],
                                  range(PUMA_CLIENTS)))
        answers = [a for batch in answers for a in batch]
        assert answers == [(200, b"ok\n")] * len(answers), set(answers)
        served += len(answers)
        left = PUMA_REQUESTS - served
        for _ in range(left):
            assert lib.http_get(port, timeout=20) == (200, b"ok\n")
        served += left
        assert served == PUMA_REQUESTS

        o = _wait_stats(ctx, s, lambda o: o["accepts"] == served, "puma: the accepts", (run,))
        master = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid][0]
        workers = set(_fpm_workers(master))
        assert len(workers) == 2, workers
        rows = o["workers"]
        names = {(w["pid"], w["tid"]): _thread_comm(w["pid"], w["tid"]) for w in rows}
        # One row per worker process: its server thread, which accepts or
        # waits for the listener (with the poll token, or on its doorbell
        # while the other worker has it).
        assert sorted(w["pid"] for w in rows) == sorted(workers), (names, _show(o))
        assert set(names.values()) == {"puma srv"}, names
        print("    puma under serialize, %d requests from %d clients: accepts per worker %s"
              % (served, PUMA_CLIENTS, sorted(w["accepts"] for w in rows)))
        assert sum(w["accepts"] for w in rows) == served and \
            o["retired_workers"]["count"] == 0, _show(o)
        # The token is handed to the waiting worker at each drop: no
        # worker starves (393/407 measured; 800/0 was seen before the
        # hand-off, when the dropper took it back at its next poll).
        assert min(w["accepts"] for w in rows) >= served // 4, _show(o)
        assert abs(o["fairness_jain"] - _jain([w["accepts"] for w in rows])) < 1e-12, _show(o)
        # The pools' threads exist and served requests, and have no row.
        pool = [(p, int(t)) for p in workers for t in os.listdir("/proc/%d/task" % p)
                if (_thread_comm(p, int(t)) or "").startswith("puma srv tp")]
        assert len(pool) >= 4 and not set(pool) & set(names), (pool, names)
        # Gated by the poll token (poll/select), never the lock.
        assert o["mode"] == "serialize" and o["poll_token_waits"] >= served and \
            o["lock_acquisitions"] == 0, _show(o)
        text = tool(ctx, ["stats", "--session", s]).stdout
        assert "  gated by: the poll token (poll/select), %d waits with it, %d hand-offs to a " \
            "waiting worker\n" % (o["poll_token_waits"], o["poll_token_handoffs"]) in text, text
        assert o["listen_backlog"] == 1024 and "listen(backlog 1024)" in text.splitlines()[0], \
            text
        with open("/proc/sys/net/core/somaxconn") as f:
            assert o["queue_backlog"] == min(1024, int(f.read())), o["queue_backlog"]
        listens = [e for e in ctx.events(s, ["--type", "listen"]) if e["ret"] == 0]
        assert len(listens) == 2 and len({e["inode"] for e in listens}) == 1, listens
        # Puma's own count: one log line per request.
        srvlib.signal_run(run, signal.SIGTERM)
        srvlib.wait_exit(run, WAIT, "puma under sockshim run after SIGTERM")
        logged = [l for l in ctx.output(run)[0].splitlines() if '"GET / HTTP/1.0" 200' in l]
        assert len(logged) == served, (len(logged), ctx.output(run)[0][-2000:])
    finally:
        srvlib.reap(run, lib.descendants(run.pid))
