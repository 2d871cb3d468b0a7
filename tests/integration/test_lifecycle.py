"""Exact under real server lifecycles (issue 12): big pools, reloads and
killed workers. After each, `sockshim holders --json` names every holder
/proc shows for the server's sockets from the ledger (source ledger+proc),
none is STALE, and each socket's reference count is its holders: the
holder pool names the listener in every one of 150 Apache children or 33
nginx processes, and a dead worker's references go when its master reaps
it. Loopback, bounded, every process stopped by its pid."""

import json
import os
import signal
import socket
import time

import acclib
import lib
import srvlib
from ledgerlib import holders_json
from lib import proc_set, tool
from segment import raw_ledger

WAIT = 60.0


def _tree(run):
    """The server's processes under `sockshim run` (run itself excluded)."""
    return lib.descendants(run.pid)


def _wait_workers(run, n, what, exclude=()):
    deadline = time.monotonic() + WAIT
    while True:
        tree = _tree(run)
        main = [p for p in tree if lib.ppid(p) == run.pid]
        workers = [p for p in tree if p not in main and p not in exclude]
        if len(main) == 1 and len(workers) >= n:
            return main[0], workers
        assert time.monotonic() < deadline, "%s: %d workers of %d after %.0fs" % (
            what, len(workers), n, WAIT)
        time.sleep(0.2)


def _exact(ctx, session, run, what):
    """holders --json == /proc for every socket of the server, from the
    ledger, nothing stale; refs == holders in the ledger. Retried for a
    while: workers that are leaving finish leaving."""
    deadline = time.monotonic() + WAIT
    while True:
        pids = _tree(run)
        truth = proc_set(pids)
        inodes = {t[2] for t in truth}
        got, stale, proc_only = set(), [], []
        for o in holders_json(ctx, session):
            for h in o["holders"]:
                if h["stale"]:
                    stale.append((h["pid"], h["fd"], o["inode"]))
                elif o["inode"] in inodes:
                    got.add((h["pid"], h["fd"], o["inode"]))
                    if h["source"] != "ledger+proc":
                        proc_only.append((h["pid"], h["fd"], o["inode"], h["source"]))
        led = raw_ledger(ctx, session)
        wrong = {i: (e["refs"], len(e["holders"])) for i, e in led.socks.items()
                 if i in inodes and e["refs"] != len(e["holders"])}
        if got == truth and not stale and not proc_only and not wrong:
            return truth
        if time.monotonic() > deadline:
            raise AssertionError(
                "%s: holders != /proc\n  only in holders: %s\n  only in /proc: %s\n"
                "  stale: %s\n  not from the ledger: %s\n  refs != holders: %s"
                % (what, sorted(got - truth)[:10], sorted(truth - got)[:10], stale[:10],
                   proc_only[:10], list(wrong.items())[:10]))
        time.sleep(0.3)


def _start(ctx, argv, name):
    s = ctx.session()
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--"] + argv, preload=False,
                    extra_env=srvlib.run_env(ctx), name=name)
    return s, run


def _stop(run):
    srvlib.signal_run(run, signal.SIGTERM)
    assert srvlib.wait_exit(run, WAIT, "the server under sockshim run") in (0, 143)


def _serve(port, n, path="/"):
    for i in range(n):
        status, _ = lib.http_get(port, path, timeout=20)
        assert status == 200, (i, status)


def test_lifecycle_apache_prefork_150(ctx):
    port = lib.free_port()
    s, run = _start(ctx, acclib.apache_argv(ctx, port, workers=150), "apache")
    lib.wait_port(port, timeout=WAIT, proc=run)
    _, workers = _wait_workers(run, 150, "apache2 prefork")
    _serve(port, 300, "/f0.txt")
    truth = _exact(ctx, s, run, "apache2 prefork, 150 children")
    listener = [t for t in truth if t[1] == min(f for _, f, _ in truth)]
    assert len({t[0] for t in truth}) == 151, len({t[0] for t in truth})
    assert len(listener) >= 151, len(listener)
    _stop(run)


def test_lifecycle_nginx_32_reload(ctx):
    port = lib.free_port()
    s, run = _start(ctx, acclib.nginx_argv(ctx, port, workers=32), "nginx")
    lib.wait_port(port, timeout=WAIT, proc=run)
    master, old = _wait_workers(run, 32, "nginx")
    _serve(port, 100)
    _exact(ctx, s, run, "nginx, 32 workers")
    # Reload: 32 new workers, the old ones finish and leave.
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while True:
        now = [p for p in _tree(run) if p != master]
        if len(now) == 32 and not set(now) & set(old):
            break
        assert time.monotonic() < deadline, "nginx reload: workers %s" % now
        time.sleep(0.2)
    _serve(port, 100)
    _exact(ctx, s, run, "nginx, 32 workers after a reload")
    _stop(run)


def test_lifecycle_gunicorn_hup_and_kill(ctx):
    port = lib.free_port()
    s, run = _start(ctx, acclib.gunicorn_argv(ctx, port, workers=4), "gunicorn")
    lib.wait_port(port, timeout=WAIT, proc=run)
    master, workers = _wait_workers(run, 4, "gunicorn")
    for i in range(3):
        _serve(port, 20)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while True:  # four new workers replace the old ones
            now = [p for p in _tree(run) if p != master]
            if len(now) == 4 and not set(now) & set(workers):
                workers = now
                break
            assert time.monotonic() < deadline, "gunicorn HUP %d: workers %s" % (i, now)
            time.sleep(0.2)
    _serve(port, 20)
    # A worker killed outright: the master reaps it and starts another.
    os.kill(workers[0], signal.SIGKILL)
    _, live = _wait_workers(run, 4, "gunicorn after kill -9", exclude=(workers[0],))
    _serve(port, 20)
    _exact(ctx, s, run, "gunicorn after 3 HUPs and a kill -9")
    # stats of the living: rows only for live workers; the 13 that ended
    # (3 HUPs x 4, one killed) retired with their counts, none lost.
    st = [json.loads(l) for l in tool(ctx, ["stats", "--session", s, "--json"]).stdout.splitlines()]
    assert len(st) == 1, st
    rows = {w["pid"] for w in st[0]["workers"]}
    assert rows <= set(live) | {master}, "rows of ended workers %s" % (rows - set(live))
    ret = st[0]["retired_workers"]
    assert ret["count"] >= 13, ret
    got = (sum(w["accepts"] for w in st[0]["workers"]), ret["accepts"], st[0]["accepts"])
    assert got[0] + got[1] == got[2] >= 80, got
    _stop(run)


# A listener inherited above the descriptor limit of the image that gets it
# (the limit lowered before exec): tracked all the same.
HIGH_FD = 1500
HIGH_PARENT = r"""
import os, resource, socket, sys
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(16)
os.dup2(ls.fileno(), %d); ls.close()
print(socket.socket(fileno=os.dup(%d)).getsockname()[1], flush=True)
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
os.execv(sys.executable, [sys.executable, sys.argv[1]])
""" % (HIGH_FD, HIGH_FD)
HIGH_SERVER = r"""
import socket
ls = socket.socket(fileno=%d)
for _ in range(20):
    c, _ = ls.accept(); c.sendall(b"ok\n"); c.close()
""" % HIGH_FD


def test_lifecycle_fd_above_limit(ctx):
    s = ctx.session()
    parent, server = (os.path.join(ctx.tmp, n) for n in ("parent.py", "server.py"))
    with open(parent, "w") as f:
        f.write(HIGH_PARENT)
    with open(server, "w") as f:
        f.write(HIGH_SERVER)
    proc = ctx.spawn([srvlib.python3(), parent, server], session=s, name="high", valgrind=False)
    deadline = time.monotonic() + 20
    while not ctx.output(proc)[0].strip():
        assert proc.poll() is None and time.monotonic() < deadline, ctx.output(proc)
        time.sleep(0.05)
    port = int(ctx.output(proc)[0].split()[0])
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            assert c.makefile("rb").read() == b"ok\n"
    assert proc.wait(timeout=20) == 0, ctx.output(proc)[1]
    evs = ctx.events(s)
    acc = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0]
    assert len(acc) == 20 and all(e["listen_fd"] == HIGH_FD for e in acc), acc[:3]
    # No close of the listener while it was open: only its last, at exit.
    lclose = [e for e in evs if e["type"] == "close" and e["fd"] == HIGH_FD]
    assert all(e["via"] == "exit" or e["released"] for e in lclose), lclose
    st = [json.loads(l) for l in tool(ctx, ["stats", "--session", s, "--json"]).stdout.splitlines()]
    assert [o["accepts"] for o in st] == [20], st


def test_lifecycle_listen_twice(ctx):
    """A second listen() on the same socket (Puma: 4096, then 1024): stats
    shows the backlog of the last; the program gone, the listener is shown
    closed."""
    s = ctx.session()
    r = ctx.run([srvlib.python3(), "-c",
                 "import socket; l = socket.socket(); l.bind(('127.0.0.1', 0)); "
                 "l.listen(4096); l.listen(1024); print(l.getsockname()[1])"],
                session=s, valgrind=False)
    assert r.returncode == 0, r.stderr
    st = [json.loads(l) for l in tool(ctx, ["stats", "--session", s, "--json"]).stdout.splitlines()]
    assert [o["listen_backlog"] for o in st] == [1024], st
    assert [o["closed"] for o in st] == [True], st
    text = tool(ctx, ["stats", "--session", s]).stdout
    assert "  CLOSED (the kernel lists it no more" in text.splitlines()[0], text
    prom = tool(ctx, ["stats", "--session", s, "--prometheus"]).stdout
    closed = [l for l in prom.splitlines() if l.startswith("sockshim_listener_closed{")]
    assert len(closed) == 1 and closed[0].endswith("} 1"), closed


FORK_SCRIPT = """
import os, socket, sys
s = socket.socket()
for i in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:
        s.close()  # the child's first record, at once
        os._exit(0)
    os.waitpid(pid, 0)
print(os.getpid())
"""


def test_lifecycle_fork_record_first(ctx):
    """A child's fork record precedes its own records: 1,000 children that
    close a socket the moment fork returns (the parent logged the fork
    after fork returned in it, and 0 to 5 of 300 children's closes came
    first). ctx.events checks the order for every test's stream; here each
    child's close is there, after its fork."""
    n = 1000
    s = ctx.session()
    r = ctx.run([srvlib.python3(), "-c", FORK_SCRIPT, str(n)], session=s, valgrind=False)
    assert r.returncode == 0, r.stderr
    parent = int(r.stdout.split()[-1])
    evs = ctx.events(s)
    forks = {e["child_pid"]: e["seq"] for e in evs if e["type"] == "fork" and e["pid"] == parent}
    closes = {e["pid"]: e["seq"] for e in evs if e["type"] == "close" and e["pid"] in forks}
    assert len(closes) == n, "%d of %d children's closes recorded" % (len(closes), n)
    assert all(forks[p] < seq for p, seq in closes.items())
