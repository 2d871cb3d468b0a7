"""Accept serialization and its statistics (issue 4) on real programs, on
loopback:

- gunicorn, 4 sync workers (select, then a non-blocking accept), 500
  sequential requests: spurious wakeups per accepted connection in
  observe and in serialize; every request answered correctly in both.
- tests/progs/acceptpool.c, 8 threads and 8 pre-forked processes blocking
  in accept: 10,000 connections each accepted exactly once in observe,
  serialize and off, counted three ways (the client's answers, the
  server's own totals, the listener table).
- serialize: kill -9 of the process holding the accept lock while it
  blocks in accept; SIGTERM to a worker waiting for the lock.
- gunicorn, nginx, apache2 (prefork) and uWSGI stop as they should under
  serialize.
- nginx with 4 workers and apache2 prefork: accepts per worker in the
  listener table equal the requests per pid in their own access logs.

The listener table is read from the segment and
through `sockshim stats --json`; the two must agree (acclib.listener).
Figures are printed on stdout for the report.
"""

import collections
import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import acclib
import lib
import segment
import srvlib

N_CONN = 10000
POOL = 8
# gunicorn, 4 sync workers, 500 sequential requests. Every connection wakes
# all four workers from select, but a woken worker that finds the listener
# empty again (the winner was first) goes back to sleep inside select
# without returning: the shim sees only the wakeups that reach user space.
# Measured on this 2-core machine: 0.42 to 0.97 spurious wakeups per accept
# when idle, 0.000 to 0.13 while other work runs (strace shows ~3.8 EAGAIN
# per request only because tracing slows the winner). So the shim's
# observe figure is printed, not bounded below; the herd itself is
# asserted as the kernel counts it: voluntary context switches of the
# workers per request (measured 3.4 to 4.6 in observe; in serialize 2.1,
# the holder woken by the connection and the one waiter the token is then
# handed to, never more than observe's herd; 0.2 before the hand-off, with
# one worker taking most requests).
GUNICORN_REQUESTS = 500
HERD_SWITCHES_FLOOR = 2.0
# serialize: only the token's holder waits for the listener, so at most
# one worker is woken per connection, and it finds nothing when the
# worker that just served the previous request takes the next connection
# first in its own non-blocking accept (gunicorn accepts before it
# selects; that accept is never held back). Measured 0.014 before the
# hand-off (one worker took nearly all requests), 0.05 to 0.53 with it,
# observe's herd 0.4 to 1: one per connection is the bound the mechanism
# gives; the herd itself is asserted by the workers' context switches.
SERIALIZE_CEILING = 1.0
# Issue 4's bounds.
OWNER_DIED_BOUND = 0.100
SIGTERM_WAIT_BOUND = 0.050
CANCEL_BOUND = 0.050
# A waiter for the lock sleeps until the unlock, the holder's death, a
# signal, or this long (shim/accept_lock.c WATCH_NS), when it looks at the
# holder.
WATCH_S = 1.5
SIGRACE_ROUNDS = 300
# How long a server may take to stop once signalled.
STOP_BOUND = 15.0


def bound(ctx, seconds):
    """Issue 4's time bounds hold for the plain build. Under a sanitizer
    or valgrind everything is slower: the same event gets 2 s there, so a
    lost wakeup still fails."""
    return 2.0 if ctx.sanitizer or ctx.valgrind else seconds


def gone_within(pids, timeout):
    """Poll every millisecond until none of PIDS is alive: (seconds it
    took, pids still alive)."""
    t0 = time.monotonic()
    left = lib.wait_gone(pids, timeout, poll=0.001)
    return time.monotonic() - t0, left


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def _run_argv(ctx, session, mode, argv):
    return [ctx.tool, "run", "--session", session, "--accept", mode, "--"] + list(argv)


def start_run(ctx, session, mode, argv, name):
    """`sockshim run --session S --accept MODE -- ARGV` in the background."""
    return ctx.spawn(_run_argv(ctx, session, mode, argv), preload=False,
                     extra_env=srvlib.run_env(ctx), name=name)


def _ready(ctx, session, port, run, want_workers=None):
    """Wait until the listener on PORT is in the table and (with
    WANT_WORKERS) that many workers have called accept on it."""
    return acclib.wait_listener(
        ctx, session, port,
        lambda e: want_workers is None or len(e["workers"]) >= want_workers,
        "the listener on port %d%s" % (port, "" if want_workers is None else
                                        " with %d workers" % want_workers), procs=[run])


def _settled(ctx, session, port, pool, what):
    """Wait until every worker of POOL sleeps in accept (or, serialize, in
    the lock wait in front of it): one call in progress per worker."""
    def ok(e):
        return (e["accept_calls"] == e["accepts"] + e["eintr"] + pool.n and
                all(w["calls"] == w["accepts"] + w["eintr"] + 1 for w in e["workers"]) and
                len(e["workers"]) == pool.n)
    return acclib.wait_listener(ctx, session, pool.port, ok, what, procs=[pool.proc])


# ---------------------------------------------------------------------------
# 1. gunicorn's herd.

def _gunicorn_run(ctx, mode):
    """500 sequential requests to gunicorn (4 sync workers) under MODE.
    Returns (accepts, spurious wakeups, voluntary context switches of the
    workers) over those requests."""
    port = lib.free_port()
    session = ctx.session(mode)
    run = start_run(ctx, session, mode, acclib.gunicorn_argv(ctx, port), "gunicorn-" + mode)
    pids = []
    try:
        acclib.wait_http(port, run)
        pids = _processes(run, 4, "gunicorn")
        workers = pids[1:]
        # Every worker has been through select and accept once: the steady
        # state, not a fresh worker's first wakeups.
        _ready(ctx, session, port, run, want_workers=4)
        before = acclib.listener(ctx, session, port)
        switches = acclib.voluntary_switches(workers)
        for i in range(GUNICORN_REQUESTS):
            path = "/%s/%d" % (mode, i)
            st, body = lib.http_get(port, path)
            m = acclib.APP_BODY_RE.fullmatch(body)
            assert st == 200 and m and m.group(1).decode() == path, (
                "request %d (%s): status %d, body %r" % (i, path, st, body))
            assert int(m.group(2)) in workers, "answered by pid %s, not a gunicorn worker %s" % (
                m.group(2), workers)
        switches = acclib.voluntary_switches(workers) - switches
        after = acclib.listener(ctx, session, port)
        assert after["mode"] == mode, after["mode"]
        accepts = after["accepts"] - before["accepts"]
        spurious = after["spurious"] - before["spurious"]
        assert accepts == GUNICORN_REQUESTS, (
            "%s: %d accepts counted for %d requests (%s)"
            % (mode, accepts, GUNICORN_REQUESTS, acclib.summary(after)))
        assert spurious <= after["wakeups"] - before["wakeups"], acclib.summary(after)
        if mode == "serialize":
            # select is serialized with the poll token; no lock.
            assert after["lock_acquisitions"] == 0, acclib.summary(after)
        say("gunicorn %-9s: %d accepts, %d spurious wakeups (%.3f per accept), "
            "%d empty accepts, %d poll wakeups, %.2f voluntary context switches of the "
            "workers per request; accepts per worker %s",
            mode, accepts, spurious, spurious / accepts, after["empty"] - before["empty"],
            after["wakeups"] - before["wakeups"], switches / GUNICORN_REQUESTS,
            sorted(acclib.per_pid(after).values()))
        srvlib.signal_run(run, signal.SIGTERM)
        status = srvlib.wait_exit(run, STOP_BOUND, "gunicorn under sockshim run")
        assert status == 0, "gunicorn exited %s after SIGTERM" % status
        return accepts, spurious, switches
    finally:
        srvlib.reap(run, pids)


def test_accept_gunicorn_herd(ctx):
    obs_acc, obs_sp, obs_sw = _gunicorn_run(ctx, "observe")
    ser_acc, ser_sp, ser_sw = _gunicorn_run(ctx, "serialize")
    obs, ser = obs_sp / obs_acc, ser_sp / ser_acc
    obs_sw, ser_sw = obs_sw / GUNICORN_REQUESTS, ser_sw / GUNICORN_REQUESTS
    say("gunicorn spurious wakeups per accept: observe %.3f, serialize %.3f; workers' "
        "wakeups per request: observe %.2f, serialize %.2f", obs, ser, obs_sw, ser_sw)
    # Those left are the poll-token holder's wakeups for a connection
    # that a worker just done with a request took first, in its own
    # non-blocking accept (never held back); a sanitizer's slowness makes
    # that race likelier, hence its margin.
    ceiling = SERIALIZE_CEILING
    assert ser <= ceiling, "serialize: %.3f spurious wakeups per accept > %.2f" % (
        ser, ceiling)
    assert obs_sw >= HERD_SWITCHES_FLOOR, (
        "observe: the workers woke %.2f times per request; a herd of 4 wakes >= %.1f"
        % (obs_sw, HERD_SWITCHES_FLOOR))
    assert ser_sw <= obs_sw, (
        "serialize: the workers woke %.2f times per request, more than observe's herd (%.2f)"
        % (ser_sw, obs_sw))


TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
KERNEL_REQUESTS = 300


def _has_syscall_tracepoints(t):
    return os.path.exists(t + "/events/syscalls/sys_exit_accept4")


@contextlib.contextmanager
def _tracefs():
    """The tracefs directory with the syscall tracepoints, or None. Where
    tracefs is not mounted (a fresh boot mounts it only on demand) and we
    are root, mount it at /sys/kernel/tracing for the test, and unmount it
    afterwards, only if we mounted it."""
    found = [t for t in TRACEFS if _has_syscall_tracepoints(t)]
    if found or os.geteuid() != 0 or not os.path.isdir(TRACEFS[0]) \
            or os.path.ismount(TRACEFS[0]):
        yield found[0] if found else None
        return
    res = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS[0]],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if res.returncode != 0:
        say("cannot mount tracefs on %s: %s", TRACEFS[0], res.stdout.decode().strip())
        yield None
        return
    try:
        yield TRACEFS[0] if _has_syscall_tracepoints(TRACEFS[0]) else None
    finally:
        res = subprocess.run(["umount", TRACEFS[0]], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        if res.returncode != 0:
            say("cannot unmount the tracefs we mounted on %s: %s", TRACEFS[0],
                res.stdout.decode().strip())


def _perf_counts(path):
    """{event (with " if" FILTER when filtered, in order): count} from
    `perf stat -x,` output; filtered events come first here."""
    out = []
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) >= 3 and fields[2].startswith("syscalls:"):
                if not fields[0].isdigit():
                    raise AssertionError("perf could not count %s: %r" % (fields[2], line))
                out.append((fields[2], int(fields[0])))
    return out


def test_accept_gunicorn_kernel_count(ctx):
    """The shim's accept counters against the kernel's own: perf counts
    every accept4 of gunicorn's processes at the syscall tracepoint, and
    those that failed with EAGAIN, over the server's whole life; the
    listener table (kept after exit) must say the same, call for call.
    Also prints how many EAGAIN accepts a request really costs without
    strace slowing the winner. As root it mounts tracefs if need be."""
    perf = shutil.which("perf")
    if not perf:
        raise lib.Skip("perf is not installed (apt-get install -y linux-perf)")
    with _tracefs() as tracefs:
        if not tracefs:
            raise lib.Skip("the syscall tracepoints (tracefs) are not available%s" % (
                "" if os.geteuid() == 0 else
                " (tracefs is not mounted, and mounting it needs root)"))
        _kernel_count(ctx, perf)


def _kernel_count(ctx, perf):
    """test_accept_gunicorn_kernel_count with the tracepoints there."""
    probe = subprocess.run([perf, "stat", "-e", "syscalls:sys_exit_accept4", "--", "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if probe.returncode != 0:
        raise lib.Skip("perf cannot count syscall tracepoints here: %s"
                       % probe.stdout.decode(errors="replace").strip()[-300:])
    port = lib.free_port()
    session = ctx.session("observe")
    out = os.path.join(ctx.tmp, "perf.csv")
    eagain = -errno.EAGAIN
    argv = ([perf, "stat", "-x", ",", "-o", out,
             "-e", "syscalls:sys_exit_accept4", "--filter", "ret == %d" % eagain,
             "-e", "syscalls:sys_exit_accept4", "-e", "syscalls:sys_exit_pselect6", "--"] +
            [ctx.tool, "run", "--keep", "--session", session, "--accept", "observe", "--"] +
            acclib.gunicorn_argv(ctx, port))
    proc = ctx.spawn(argv, preload=False, extra_env=srvlib.run_env(ctx), name="perf-gunicorn")
    run_pid = None
    try:
        acclib.wait_http(port, proc)
        run_pid = [p for p in lib.descendants(proc.pid) if lib.ppid(p) == proc.pid][0]
        _ready(ctx, session, port, proc, want_workers=4)
        for i in range(KERNEL_REQUESTS):
            path = "/kernel/%d" % i
            st, body = lib.http_get(port, path)
            m = acclib.APP_BODY_RE.fullmatch(body)
            assert st == 200 and m and m.group(1).decode() == path, (i, st, body)
        os.kill(run_pid, signal.SIGTERM)  # sockshim run forwards it to gunicorn
        status = srvlib.wait_exit(proc, STOP_BOUND, "perf stat of gunicorn")
        assert status == 0, "perf stat -- sockshim run -- gunicorn exited %s: %s" % (
            status, ctx.output(proc)[1][-2000:])
    finally:
        srvlib.reap(proc, [run_pid] if run_pid else [])
    counts = _perf_counts(out)
    names = [n for n, _ in counts]
    assert names == ["syscalls:sys_exit_accept4", "syscalls:sys_exit_accept4",
                     "syscalls:sys_exit_pselect6"], counts
    k_eagain, k_calls, k_selects = (c for _, c in counts)
    e = acclib.listener(ctx, session, port, cross=False)
    say("kernel: %d accept4 calls, %d EAGAIN, %d pselect6 returns; shim: %s",
        k_calls, k_eagain, k_selects, acclib.summary(e))
    assert e["accept_calls"] == k_calls, "accept calls: shim %d, kernel %d (%s)" % (
        e["accept_calls"], k_calls, acclib.summary(e))
    assert e["spurious"] + e["empty"] == k_eagain, (
        "EAGAIN accepts: shim %d spurious + %d empty, kernel %d" % (
            e["spurious"], e["empty"], k_eagain))
    assert e["accepts"] == k_calls - k_eagain - e["eintr"] - e["econnaborted"], acclib.summary(e)
    assert e["accepts"] >= KERNEL_REQUESTS, acclib.summary(e)
    # Every wakeup the shim counted is a select that returned.
    assert e["wakeups"] <= k_selects, (e["wakeups"], k_selects)
    say("per request: %.2f EAGAIN accepts (kernel), %.2f spurious wakeups + %.2f empty "
        "accepts (shim)", k_eagain / e["accepts"], e["spurious"] / e["accepts"],
        e["empty"] / e["accepts"])


# ---------------------------------------------------------------------------
# 2. acceptpool: exactly once, in every mode.

def _pool_exact(ctx, model, mode):
    session = ctx.session(mode)
    # Threads use accept, processes accept4: both wrappers are covered.
    pool = acclib.start_pool(ctx, session, mode, model, n=POOL, accept4=(model == "fork"))
    workers = pool.workers()
    t0 = time.monotonic()
    answers = acclib.hammer(pool.port, N_CONN, clients=8)
    took = time.monotonic() - t0
    by_worker = acclib.check_answers(answers, N_CONN)
    assert set(by_worker) <= set(workers), "answers from %s, workers are %s" % (
        sorted(set(by_worker) - set(workers)), workers)
    entry = None
    if mode == "off":
        assert acclib.listener(ctx, session, pool.port) is None, (
            "off: a listener entry exists: %s" % acclib.listener(ctx, session, pool.port))
    else:
        entry = _settled(ctx, session, pool.port, pool, "%d %s workers back in accept"
                         % (POOL, model))
        entry = acclib.listener(ctx, session, pool.port)  # cross-checked with the command
        assert entry["mode"] == mode and entry["accepts"] == N_CONN, acclib.summary(entry)
        rows = {(w["pid"], w["tid"]): w["accepts"] for w in entry["workers"]}
        assert set(rows) == set(workers), "worker rows %s, workers %s" % (sorted(rows), workers)
        assert {k: v for k, v in rows.items() if v} == by_worker, (
            "accepts per worker: table %s, answers %s" % (rows, by_worker))
        # A blocking accept never comes back empty-handed.
        for k in ("spurious", "empty", "eintr", "econnaborted", "emfile", "owner_died",
                  "worker_overflow"):
            assert entry[k] == 0, "%s: %s" % (k, acclib.summary(entry))
        if mode == "serialize":
            # One acquisition per finished accept, plus the holder's now;
            # the holder sleeps in accept, the others wait for the lock.
            assert entry["lock_acquisitions"] == N_CONN + 1, acclib.summary(entry)
            assert entry["holder_pid"] in {p for p, _ in workers}, acclib.summary(entry)
            assert entry["waiters"] == POOL - 1, acclib.summary(entry)
            # All of them at once, for a moment: the holder back for its next
            # accept before the waiter it woke took the lock.
            assert 1 <= entry["max_waiters"] <= POOL, acclib.summary(entry)
        else:
            assert entry["lock_acquisitions"] == 0 and entry["holder_pid"] == 0, \
                acclib.summary(entry)
    if model == "fork" and entry is None:
        # off: no listener entry tells that the workers are back in
        # accept; the kernel does (a SIGTERM to a worker still finishing
        # its last connection is not the EINTR counted below).
        lay = segment.layout(ctx.root)
        for pid, _ in workers:
            acclib.wait_syscall(pid, {lay["SYS_accept"], lay["SYS_accept4"]},
                                "accept, before SIGTERM")
    os.kill(pool.proc.pid, signal.SIGTERM)
    status = pool.proc.wait(timeout=STOP_BOUND)
    assert status == 0, "acceptpool exited %s: %s" % (status, ctx.output(pool.proc)[1])
    totals = pool.totals()
    assert set(totals) == set(workers), "totals of %s, workers %s" % (sorted(totals), workers)
    assert sum(a for a, _ in totals.values()) == N_CONN, totals
    assert {k: a for k, (a, _) in totals.items() if a} == by_worker, (
        "the server's totals %s, the client's answers %s" % (totals, by_worker))
    if model == "fork":
        # Each worker left its accept (or lock wait) once, on SIGTERM.
        assert all(e == 1 for _, e in totals.values()), totals
        if entry is not None:
            after = acclib.listener(ctx, session, pool.port)
            assert after["eintr"] == POOL and after["accepts"] == N_CONN, acclib.summary(after)
    shares = sorted(by_worker.values())
    say("%s %s: %d connections in %.1fs, %d workers served, min/max %d/%d%s", model, mode,
        N_CONN, took, len(by_worker), shares[0], shares[-1],
        "" if entry is None else ", lock contended %d" % entry["lock_contended"])


def test_accept_pool_thread_observe(ctx):
    _pool_exact(ctx, "thread", "observe")


def test_accept_pool_thread_serialize(ctx):
    _pool_exact(ctx, "thread", "serialize")


def test_accept_pool_thread_off(ctx):
    _pool_exact(ctx, "thread", "off")


def test_accept_pool_fork_observe(ctx):
    _pool_exact(ctx, "fork", "observe")


def test_accept_pool_fork_serialize(ctx):
    _pool_exact(ctx, "fork", "serialize")


def test_accept_pool_fork_off(ctx):
    _pool_exact(ctx, "fork", "off")


RECYCLE_CONN = 600
RECYCLE_EACH = 5


def test_accept_pool_recycled_workers(ctx):
    """Workers that end and are replaced (acceptpool -r, as Apache's
    MaxConnectionsPerChild or gunicorn's --max-requests): some 120 worker
    processes through a table of 64 rows. The rows of ended workers are
    recycled, their counts move to the retired row, and every accept is
    still counted exactly once."""
    session = ctx.session("observe")
    pool = acclib.start_pool(ctx, session, "observe", "fork", n=4, recycle=RECYCLE_EACH)
    answers = acclib.hammer(pool.port, RECYCLE_CONN, clients=4)
    by_worker = acclib.check_answers(answers, RECYCLE_CONN)
    # Each replaced worker served exactly its share and left.
    assert all(k <= RECYCLE_EACH for k in by_worker.values()), by_worker

    def settled(e):
        started = pool.workers()
        rows = len(e["workers"]) + e["retired"]["count"]
        # The ended workers made RECYCLE_EACH calls, the 4 live ones their
        # accepts and the one they sleep in.
        return e["accepts"] == RECYCLE_CONN and e["accept_calls"] == RECYCLE_CONN + 4 and \
            rows == len(started) and len(started) == len(set(started))

    acclib.wait_listener(ctx, session, pool.port, settled, "every worker's row or its "
                         "retired counts", procs=[pool.proc])
    e = acclib.listener(ctx, session, pool.port)  # cross-checked with the command
    started = pool.workers()
    r = e["retired"]
    say("%d worker processes, %d rows in use, %d recycled (retired: %d accepts)",
        len(started), len(e["workers"]), r["count"], r["accepts"])
    assert e["worker_overflow"] == 0, acclib.summary(e)
    assert r["count"] >= len(started) - segment.layout(ctx.root)["SOCKSHIM_WORKERS"] > 0, (
        r, len(started))
    assert sum(w["accepts"] for w in e["workers"]) + r["accepts"] == RECYCLE_CONN, e
    assert sum(w["calls"] for w in e["workers"]) + r["calls"] == e["accept_calls"], e
    for w in e["workers"]:
        assert w["accepts"] == by_worker.get((w["pid"], w["tid"]), 0), (w, by_worker)
    os.kill(pool.proc.pid, signal.SIGTERM)
    status = pool.proc.wait(timeout=STOP_BOUND)
    assert status == 0, "acceptpool exited %s: %s" % (status, ctx.output(pool.proc)[1])


RCVTIMEO_MS = 1000
# The kernel's accept ends at the timeout; one that waited for the lock
# first and then a whole timeout more would end near twice as late.
RCVTIMEO_LATE_MS = 1600


def _lockwait(ctx, args, mode, session):
    """tests/progs/lockwait ARGS, without the shim (MODE None) or under it."""
    if mode is None:
        r = ctx.run([ctx.prog("lockwait")] + args, preload=False, timeout=60)
    else:
        r = ctx.run([ctx.prog("lockwait")] + args, session=session,
                    extra_env={"SOCKSHIM_ACCEPT": mode}, timeout=60)
    assert r.returncode == 0, "lockwait %s (%s) exited %d: %s" % (
        " ".join(args), mode, r.returncode, r.stderr)
    return r.stdout.splitlines()


def test_accept_lock_rcvtimeo(ctx):
    """SO_RCVTIMEO on the listener, two threads in a blocking accept and no
    client: each ends with EAGAIN after its own timeout, in every mode; a
    serialized waiter counts its wait for the lock as part of it."""
    for mode in (None, "observe", "serialize"):
        lines = _lockwait(ctx, ["rcvtimeo", str(RCVTIMEO_MS)], mode, ctx.session(mode or "none"))
        got = [l.split() for l in lines]
        say("%s: %s", mode or "no shim", "; ".join(lines))
        assert [f[:6] for f in got] == [["thread", "0", "ret", "-1", "errno", "EAGAIN"],
                                        ["thread", "1", "ret", "-1", "errno", "EAGAIN"]], lines
        for f in got:
            assert RCVTIMEO_MS - 20 <= int(f[7]) < RCVTIMEO_LATE_MS, (mode, lines)


def test_accept_lock_cancel(ctx):
    """pthread_cancel of a thread waiting for the accept lock, then of the
    one holding it in accept: both end as cancelled, and the lock serves
    the next thread at once; the table shows no waiter and no holder."""
    want = ["cancelled B yes", "cancelled A yes", "C accepted"]
    assert _lockwait(ctx, ["cancel"], None, None)[:3] == want
    session = ctx.session("serialize")
    lines = _lockwait(ctx, ["cancel"], "serialize", session)
    assert lines[:3] == want and lines[3].startswith("port "), lines
    # Promptly: the waiter sleeps in an asynchronous cancellation point.
    ms = lines[4].split()
    assert ms[:3] == ["cancel", "ms", "B"] and ms[4] == "A", lines
    assert int(ms[3]) <= bound(ctx, CANCEL_BOUND) * 1000, "waiter cancelled after %s ms" % ms[3]
    assert int(ms[5]) <= bound(ctx, CANCEL_BOUND) * 1000, "holder cancelled after %s ms" % ms[5]
    e = acclib.listener(ctx, session, int(lines[3].split()[1]))
    assert e["mode"] == "serialize" and e["accepts"] == 1 and e["accept_calls"] == 3, \
        acclib.summary(e)
    # A and C took the lock; B waited for it and was cancelled there.
    assert (e["lock_acquisitions"], e["lock_contended"], e["waiters"], e["holder_pid"]) == (
        2, 1, 0, 0), acclib.summary(e)


def test_accept_lock_signal_at_unlock(ctx):
    """The moment a pool is stopped: a signal (handler without SA_RESTART)
    to the holder in accept, whose EINTR gives the lock back and wakes the
    waiter, and one to the waiter 0-99 us later, landing as it wakes. Both
    accepts end with EINTR, every round, as in the kernel's accept; none is
    left blocking in accept with the lock (the sleep with signals open that
    commit aa27ddc reverted left one there in the first rounds)."""
    if ctx.sanitizer == "thread":
        # TSan defers a handler until the blocking accept returns, which
        # it never does: the program hangs without the shim too.
        raise lib.Skip("ThreadSanitizer runs a handler only after the blocking call; "
                       "lockwait sigrace hangs under it without the shim as well")
    want = "rounds %d A EINTR %d B EINTR %d" % ((SIGRACE_ROUNDS,) * 3)
    for mode in (None, "observe", "serialize"):
        session = ctx.session(mode or "none")
        lines = _lockwait(ctx, ["sigrace", str(SIGRACE_ROUNDS)], mode, session)
        assert lines[0] == want, (mode, lines)
        if mode == "serialize":
            # The waiter did wait for the lock, each round.
            e = acclib.listener(ctx, session, int(lines[1].split()[1]))
            assert e["lock_contended"] == SIGRACE_ROUNDS and \
                e["eintr"] == 2 * SIGRACE_ROUNDS, acclib.summary(e)


def test_accept_lock_sa_restart(ctx):
    """A handler with SA_RESTART that runs in a thread waiting for the lock
    (a blocking accept, without the shim) ends nothing: the wait goes on,
    and the accept returns the next connection, as the kernel's restarted
    accept does. Serialize also on a kernel without futex_waitv (before
    5.16), whose FUTEX_WAIT ends with EINTR after any handler: the lock's
    other path (valgrind does not implement futex_waitv either, so its run
    takes that path already)."""
    want = "handled 1 A ret fd B ret fd"
    runs = ((None, []), ("observe", []), ("serialize", [])) + acclib.lock_without_waitv(ctx)
    for mode, args in runs:
        lines = _lockwait(ctx, args + ["sigrestart"], mode, ctx.session(mode or "none"))
        assert lines == [want], (mode, args, lines)


def _switches(pid):
    """Context switches (voluntary and not) of the main thread of PID: a
    fork pool's worker (a sanitizer's runtime has threads of its own)."""
    n = 0
    with open("/proc/%d/task/%d/status" % (pid, pid)) as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                n += int(line.split()[1])
    return n


def test_accept_pool_idle_waiters_sleep(ctx):
    """An idle serialized pool sleeps: each waiter for the lock wakes once
    per WATCH_S at most (not every 20 ms), the holder not at all; and a
    kill -9 of the holder still hands the lock over within
    OWNER_DIED_BOUND, by the kernel's wake-up (the waiters sleep far longer
    than that)."""
    lay = segment.layout(ctx.root)
    session = ctx.session()
    pool = acclib.start_pool(ctx, session, "serialize", "fork", n=4)
    live = {p for p, _ in pool.workers()}
    acclib.check_answers(acclib.hammer(pool.port, 20, clients=2), 20)
    e = _holder_state(ctx, session, pool, live)
    holder = e["holder_pid"]
    waiters = sorted(live - {holder})
    for p in waiters:
        acclib.wait_syscall(p, acclib.lock_waits(lay), "the accept lock's futex wait")
    acclib.wait_syscall(holder, acclib.holder_waits(lay), "accept")
    before = {p: _switches(p) for p in live}
    t0 = time.monotonic()
    time.sleep(3 * WATCH_S)
    after = {p: _switches(p) for p in live}
    idle = time.monotonic() - t0
    woke = {p: after[p] - before[p] for p in live}
    say("idle %.2f s: wakeups per worker %s (holder %d)", idle, woke, holder)
    if ctx.valgrind:
        # valgrind does not implement futex_waitv (syscall 449): the
        # waiters take the path of kernels before 5.16, a FUTEX_WAIT of
        # 20 ms at most (50 wakeups a second; 223 to 225 in 4.5 s seen).
        say("the waiters' idle wakeups not asserted under valgrind: it has no futex_waitv, "
            "so they wake every 20 ms as on kernels before 5.16")
    else:
        # One look per WATCH_S, one more for the sampling's edges.
        assert all(woke[p] <= int(idle / WATCH_S) + 1 for p in waiters), (idle, woke)
    assert woke[holder] <= 1, (idle, woke)
    t0 = time.monotonic()
    os.kill(holder, signal.SIGKILL)
    gone, left = gone_within([holder], bound(ctx, OWNER_DIED_BOUND))
    assert not left, "pid %d still alive %.0f ms after SIGKILL" % (holder, gone * 1000)
    budget = bound(ctx, OWNER_DIED_BOUND) - (time.monotonic() - t0)
    pid, _, _ = acclib.ask(pool.port, timeout=max(budget, 0.001))
    took = time.monotonic() - t0
    say("kill -9 of the holder: next connection served by %d after %.1f ms", pid, took * 1000)
    assert pid in waiters and took <= bound(ctx, OWNER_DIED_BOUND), (pid, took)
    live.discard(holder)
    e = _holder_state(ctx, session, pool, live)
    assert e["owner_died"] == 1 and e["accepts"] == 21, acclib.summary(e)
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.proc.wait(timeout=STOP_BOUND) == 0, ctx.output(pool.proc)


EPOLL_CHURN = r"""
import os, resource, select, socket, sys
n, conns = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * n + 64)), hard))
main = socket.socket()
main.bind(("127.0.0.1", 0))
main.listen(64)
last = select.epoll()  # a number none of the churn below uses
keep = select.epoll()
# N epoll sets at once, each holding MAIN, closed without EPOLL_CTL_DEL.
sets = [select.epoll() for _ in range(n)]
for ep in sets:
    ep.register(main.fileno(), select.EPOLLIN)
for ep in sets:
    ep.close()
# N listeners at once in KEEP, closed: the kernel drops them from KEEP.
others = [socket.socket() for _ in range(n)]
for o in others:
    o.bind(("127.0.0.1", 0))
    o.listen(1)
    keep.register(o.fileno(), select.EPOLLIN)
for o in others:
    o.close()
last.register(main.fileno(), select.EPOLLIN)
for _ in range(conns):
    c = socket.create_connection(main.getsockname(), timeout=10)
    got = last.poll(10)
    assert got == [(main.fileno(), select.EPOLLIN)], got
    s, _ = main.accept()
    s.close()
    c.close()
print("port", main.getsockname()[1], flush=True)
"""


def test_accept_epoll_churn_keeps_counting(ctx):
    """A server that opens and closes 1,000 epoll sets holding its
    listener, and 1,000 listeners in an epoll set, never telling epoll
    (close, no EPOLL_CTL_DEL): the shim's 256 registration slots are
    taken back from what the kernel dropped, so a new epoll set's wakeups
    on the listener are still counted, each once."""
    conns = 20
    for mode in ("observe", "serialize"):
        session = ctx.session(mode)
        r = ctx.run([srvlib.python3(), "-c", EPOLL_CHURN, "1000", str(conns)], session=session,
                    extra_env={"SOCKSHIM_ACCEPT": mode}, timeout=120, valgrind=False)
        assert r.returncode == 0, "churn (%s) exited %d: %s" % (mode, r.returncode, r.stderr)
        port = int(r.stdout.split()[1])
        e = acclib.listener(ctx, session, port)
        say("%s: %d poll wakeups, %d accepts after 2,000 dropped registrations", mode,
            e["wakeups"], e["accepts"])
        assert (e["wakeups"], e["accepts"]) == (conns, conns), acclib.summary(e)


def test_accept_pool_slow_serialize(ctx):
    """Slow workers (5 ms per connection) and 16 clients in flight: the
    lock passes from worker to worker, nobody gets a connection twice."""
    session = ctx.session()
    pool = acclib.start_pool(ctx, session, "serialize", "fork", n=POOL, slow_ms=5)
    answers = acclib.hammer(pool.port, 2000, clients=16)
    by_worker = acclib.check_answers(answers, 2000)
    entry = _settled(ctx, session, pool.port, pool, "slow workers back in accept")
    entry = acclib.listener(ctx, session, pool.port)
    assert entry["accepts"] == 2000 and entry["lock_acquisitions"] == 2001, \
        acclib.summary(entry)
    assert {(w["pid"], w["tid"]): w["accepts"] for w in entry["workers"] if w["accepts"]} == \
        by_worker, (entry["workers"], by_worker)
    # 16 clients, 5 ms each, 8 workers: one worker alone would need 10 s.
    assert len(by_worker) >= POOL // 2, "only %d workers served: %s" % (len(by_worker),
                                                                       by_worker)
    assert entry["lock_contended"] > 0 and entry["max_waiters"] >= 1, acclib.summary(entry)
    say("slow serialize: 2000 connections over %d workers (min/max %d/%d), lock contended "
        "%d, max waiters %d", len(by_worker), min(by_worker.values()),
        max(by_worker.values()), entry["lock_contended"], entry["max_waiters"])


# ---------------------------------------------------------------------------
# 2b. kill -9 of the lock holder.

def _holder_state(ctx, session, pool, live):
    """Wait for LIVE workers settled: one holding the lock in accept, the
    others waiting for it. Returns the entry."""
    n = len(live)

    def ok(e):
        return (e["holder_pid"] in live and e["waiters"] == n - 1 and
                all(w["calls"] == w["accepts"] + w["eintr"] + 1 for w in e["workers"]
                    if w["pid"] in live))
    return acclib.wait_listener(ctx, session, pool.port, ok,
                                "one holder in accept and %d waiters" % (n - 1),
                                procs=[pool.proc])


def test_accept_pool_kill_holder(ctx):
    lay = segment.layout(ctx.root)
    session = ctx.session()
    pool = acclib.start_pool(ctx, session, "serialize", "fork", n=POOL)
    live = {p for p, _ in pool.workers()}
    answers = acclib.hammer(pool.port, 100, clients=4)
    acclib.check_answers(answers, 100)
    total = 100
    for kill_no in (1, 2):
        e = _holder_state(ctx, session, pool, live)
        holder = e["holder_pid"]
        acclib.wait_syscall(holder, acclib.holder_waits(lay), "accept")
        for p in live - {holder}:
            acclib.wait_syscall(p, acclib.lock_waits(lay), "the accept lock's futex wait")
        t0 = time.monotonic()
        os.kill(holder, signal.SIGKILL)
        # Connect only once it is dead: a connection that woke it first
        # would die with it (and with it the test, not the shim).
        gone, left = gone_within([holder], bound(ctx, OWNER_DIED_BOUND))
        assert not left, "pid %d still alive %.0f ms after SIGKILL" % (holder, gone * 1000)
        budget = bound(ctx, OWNER_DIED_BOUND) - (time.monotonic() - t0)
        try:
            pid, tid, seq = acclib.ask(pool.port, timeout=max(budget, 0.001))
        except socket.timeout:
            raise AssertionError("kill %d: no answer within %.0f ms of kill -9 of the holder "
                                 "%d; listener: %s"
                                 % (kill_no, bound(ctx, OWNER_DIED_BOUND) * 1000, holder,
                                    acclib.summary(acclib.listener(ctx, session, pool.port,
                                                                   cross=False)))) from None
        took = time.monotonic() - t0
        live.discard(holder)
        assert pid in live, "answered by %d, not a live worker %s" % (pid, sorted(live))
        answers.append((pid, tid, seq))
        total += 1
        assert took <= bound(ctx, OWNER_DIED_BOUND), "served %.1f ms after kill -9" % (took * 1000)
        e = _holder_state(ctx, session, pool, live)
        assert e["owner_died"] == kill_no, "owner_died %d after %d kills (%s)" % (
            e["owner_died"], kill_no, acclib.summary(e))
        assert e["accepts"] == total, acclib.summary(e)
        say("kill -9 #%d of holder %d: dead after %.1f ms, next connection served by %d "
            "after %.1f ms; owner_died %d", kill_no, holder, gone * 1000, pid, took * 1000,
            e["owner_died"])
    # The six left go on exactly as before.
    more = acclib.hammer(pool.port, 1000, clients=8)
    answers += more
    assert {p for p, _, _ in more} <= live, "answers from dead workers: %s" % sorted(
        {p for p, _, _ in more} - live)
    total += 1000
    e = _holder_state(ctx, session, pool, live)
    assert e["accepts"] == total and e["owner_died"] == 2, acclib.summary(e)
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.proc.wait(timeout=STOP_BOUND) == 0, ctx.output(pool.proc)
    reaped = pool.reaped()
    assert sorted(p for p, r in reaped.items() if r[:2] == ("signal", 9)) == \
        sorted({p for p, _ in pool.workers()} - live), reaped
    assert all(r[:2] == ("exit", 0) for p, r in reaped.items() if p in live), reaped
    # Every answer, the two after the kills included: each connection once,
    # and the survivors' own totals match what the client got from them.
    by_worker = acclib.check_answers(answers, total)
    totals = pool.totals()
    assert set(totals) == {k for k in pool.workers() if k[0] in live}, totals
    assert {k: a for k, (a, _) in totals.items()} == {k: by_worker.get(k, 0) for k in totals}, (
        "the survivors' totals %s, the client's answers %s" % (totals, by_worker))


# ---------------------------------------------------------------------------
# 3. SIGTERM to a worker waiting for the lock.

def test_accept_pool_sigterm_waiter(ctx):
    lay = segment.layout(ctx.root)
    session = ctx.session()
    pool = acclib.start_pool(ctx, session, "serialize", "fork", n=POOL)
    live = {p for p, _ in pool.workers()}
    acclib.check_answers(acclib.hammer(pool.port, 50, clients=4), 50)
    e = _holder_state(ctx, session, pool, live)
    holder = e["holder_pid"]
    victim = sorted(live - {holder})[0]
    acclib.wait_syscall(victim, acclib.lock_waits(lay), "the accept lock's futex wait")
    t0 = time.monotonic_ns()
    os.kill(victim, signal.SIGTERM)
    took, left = gone_within([victim], 2.0)
    assert not left, "worker %d still running 2 s after SIGTERM" % victim
    deadline = time.monotonic() + 5
    while victim not in pool.exits() and time.monotonic() < deadline:
        time.sleep(0.01)
    exits = pool.exits()
    assert victim in exits, "worker %d did not leave through EINTR: %s" % (
        victim, ctx.output(pool.proc))
    own = (exits[victim] - t0) / 1e9
    say("SIGTERM to lock waiter %d: accept returned EINTR after %.2f ms, gone (polled) "
        "after %.2f ms", victim, own * 1000, took * 1000)
    assert own <= bound(ctx, SIGTERM_WAIT_BOUND), "EINTR %.1f ms after SIGTERM" % (own * 1000)
    assert took <= bound(ctx, SIGTERM_WAIT_BOUND), "exit seen %.1f ms after SIGTERM" % (
        took * 1000)
    live.discard(victim)
    e = _holder_state(ctx, session, pool, live)
    assert e["holder_pid"] == holder, "the holder changed: %s" % acclib.summary(e)
    assert e["eintr"] == 1 and e["owner_died"] == 0, acclib.summary(e)
    row = [w for w in e["workers"] if w["pid"] == victim]
    assert len(row) == 1 and row[0]["eintr"] == 1 and row[0]["accepts"] + 1 == row[0]["calls"], \
        row
    # Then the holder itself, asleep in the kernel's accept (or the ppoll
    # before it): EINTR, and the lock is given back, not left to a dead
    # owner.
    acclib.wait_syscall(holder, acclib.holder_waits(lay), "accept")
    os.kill(holder, signal.SIGTERM)
    took, left = gone_within([holder], 2.0)
    assert not left, "holder %d still running 2 s after SIGTERM" % holder
    live.discard(holder)
    pid, _, _ = acclib.ask(pool.port, timeout=5.0)
    assert pid in live, (pid, live)
    e = _holder_state(ctx, session, pool, live)
    assert e["eintr"] == 2 and e["owner_died"] == 0 and e["holder_pid"] != holder, \
        acclib.summary(e)
    say("SIGTERM to the holder %d (in accept): gone after %.2f ms, lock passed on cleanly",
        holder, took * 1000)
    os.kill(pool.proc.pid, signal.SIGTERM)
    assert pool.proc.wait(timeout=STOP_BOUND) == 0, ctx.output(pool.proc)
    reaped = pool.reaped()
    assert len(reaped) == POOL and all(r[:2] == ("exit", 0) for r in reaped.values()), reaped


# ---------------------------------------------------------------------------
# 3b. Real servers stop as they should under serialize.

def _processes(run, workers, what):
    """[main, its descendants...] of the server under RUN, once the main
    process has at least WORKERS of them (workers boot after the first
    requests may already have been answered)."""
    deadline = time.monotonic() + acclib.WAIT
    while True:
        main = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid]
        kids = lib.descendants(main[0]) if len(main) == 1 else []
        if len(kids) >= workers:
            return [main[0]] + kids
        if time.monotonic() > deadline:
            raise AssertionError("%s: main process %s, descendants %s after %.0fs; expected "
                                 "%d workers" % (what, main, kids, acclib.WAIT, workers))
        time.sleep(acclib.POLL)


def _stop_server(ctx, what, make_argv, sig, status_ok, via_run=True, requests=20,
                 path_of=lambda i: "/stop/%d" % i, body_ok=None, workers=4, mode="serialize"):
    """Start the server MAKE_ARGV(ctx, port) gives under MODE; REQUESTS
    answered (200, and BODY_OK(path, body) if given); then SIG, through
    sockshim run or straight to its main process; every process of it
    gone within STOP_BOUND, with an exit status in STATUS_OK."""
    port = lib.free_port()
    session = ctx.session()
    argv = make_argv(ctx, port)
    run = start_run(ctx, session, mode, argv, what)
    pids = []
    try:
        acclib.wait_http(port, run, path=path_of(0), timeout=30)
        for i in range(requests):
            st, body = lib.http_get(port, path_of(i))
            assert st == 200 and (body_ok is None or body_ok(path_of(i), body)), (
                "%s: GET %s: %d %r" % (what, path_of(i), st, body))
        if mode == "off":
            e = {"accepts": None, "spurious": None, "lock_acquisitions": None}
            assert acclib.listener(ctx, session, port) is None
        else:
            e = _ready(ctx, session, port, run)
            assert e["mode"] == mode and e["accepts"] >= requests, acclib.summary(e)
        pids = _processes(run, workers, what)
        main = pids[:1]
        acclib.wait_idle(ctx, pids[1:], what)
        t0 = time.monotonic()
        if via_run:
            srvlib.signal_run(run, sig)
        else:
            os.kill(main[0], sig)
        status = srvlib.wait_exit(run, STOP_BOUND, "%s under sockshim run" % what)
        took = time.monotonic() - t0
        _, left = gone_within(pids, 2.0)
        assert not left, "%s: processes %s outlived it" % (what, left)
        say("%s %s: %s %s: %d processes gone after %.2f s, exit status %s (accepts %s, "
            "spurious %s, lock acquisitions %s)", what, mode, signal.Signals(sig).name,
            "via sockshim run" if via_run else "to pid %d" % main[0], len(pids), took,
            status, e["accepts"], e["spurious"], e["lock_acquisitions"])
        assert status in status_ok, "%s: exit status %s after %s, expected %s" % (
            what, status, signal.Signals(sig).name, status_ok)
        return e
    finally:
        srvlib.reap(run, pids)


def _app_body(path, body):
    m = acclib.APP_BODY_RE.fullmatch(body)
    return bool(m) and m.group(1).decode() == path


def test_accept_stop_gunicorn(ctx):
    # TERM: graceful shutdown (gunicorn's signal handling docs); exit 0.
    _stop_server(ctx, "gunicorn", acclib.gunicorn_argv, signal.SIGTERM, {0},
                 body_ok=_app_body)


def test_accept_stop_nginx(ctx):
    # QUIT is nginx's graceful shutdown, but sockshim run forwards only
    # INT, TERM and HUP: TERM (fast shutdown) through run, QUIT to the
    # master itself. Both exit 0.
    ok = lambda path, body: body == ("nginx %s pid " % path).encode() + body.split(b" pid ")[-1]
    _stop_server(ctx, "nginx", acclib.nginx_argv, signal.SIGTERM, {0}, body_ok=ok)
    _stop_server(ctx, "nginx", acclib.nginx_argv, signal.SIGQUIT, {0}, via_run=False,
                 body_ok=ok)


def _apache_path(i):
    return "/f%d.txt" % (i % 4)


STOP_ROUNDS = 8


def test_accept_stop_prefork_server_repeatedly(ctx):
    """The bundled prefork_server under serialize, stopped as its users
    stop it: one SIGTERM, which its master forwards once to every worker.
    The holder's accept ends with EINTR and its unlock wakes a waiter just
    as that waiter's own SIGTERM comes: the waiter must see the signal, not
    take the lock and block in accept for good. Eight rounds, as that
    moment is a race."""
    server = os.path.join(ctx.build, "examples", "prefork_server")
    client = os.path.join(ctx.build, "examples", "demo_client")
    for i in range(STOP_ROUNDS):
        session = ctx.session("serialize")
        portfile = os.path.join(ctx.tmp, "port.%d" % i)
        run = start_run(ctx, session, "serialize", [server, "-w", "4", "-f", portfile],
                        "prefork-%d" % i)
        pids = []
        try:
            lib.wait_for_file(portfile, run, acclib.WAIT, "prefork_server")
            with open(portfile) as f:
                port = int(f.read().split()[0])
            r = ctx.run([client, "-p", str(port), "-n", "20"], preload=False, timeout=60)
            assert r.returncode == 0 and r.stdout.count("hello from worker") == 20, r.stdout
            pids = _processes(run, 4, "prefork_server")
            _ready(ctx, session, port, run, want_workers=4)
            srvlib.signal_run(run, signal.SIGTERM)
            status = srvlib.wait_exit(run, STOP_BOUND, "prefork_server (round %d)" % i)
            assert status == 0, "round %d: exit status %s" % (i, status)
            left = [p for p in pids if lib.alive(p)]
            assert not left, "round %d: %s still running" % (i, left)
        finally:
            srvlib.reap(run, pids)


def test_accept_stop_apache_prefork(ctx):
    # TERM: stop; WINCH: graceful-stop (apachectl graceful-stop), which
    # sockshim run does not forward: sent to the parent itself.
    ok = lambda path, body: body == ("apache %s\n" % path[1:-4]).encode()
    _stop_server(ctx, "apache2", acclib.apache_argv, signal.SIGTERM, {0},
                 path_of=_apache_path, body_ok=ok)
    _stop_server(ctx, "apache2", acclib.apache_argv, signal.SIGWINCH, {0}, via_run=False,
                 path_of=_apache_path, body_ok=ok)


def test_accept_stop_uwsgi(ctx):
    # --die-on-term: TERM shuts uWSGI down instead of reloading it.
    _stop_server(ctx, "uwsgi", acclib.uwsgi_argv, signal.SIGTERM, {0}, body_ok=_app_body)
    # INT: "kill the uWSGI stack" at once.
    _stop_server(ctx, "uwsgi", acclib.uwsgi_argv, signal.SIGINT, {0}, body_ok=_app_body)


# ---------------------------------------------------------------------------
# 4. Per-worker accepts against the servers' own access logs.

def _log_lines(path):
    try:
        with open(path) as f:
            return [l.split() for l in f.read().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def _check_gating(ctx, session, what, mode, workers):
    """stats says how the listener is gated, with each mechanism's count.
    nginx waits in epoll with EPOLLEXCLUSIVE of its own (every mode, one
    registration per worker at least) and never takes the lock."""
    st = acclib.stats_command(ctx, session)
    assert len(st) == 1, st
    got = (st[0]["lock_acquisitions"], st[0]["poll_token_waits"],
           st[0]["epoll_exclusive_registrations"])
    say("%s %s gating: lock %d, poll token %d, EPOLLEXCLUSIVE %d", what, mode, *got)
    text = subprocess.run([ctx.tool, "stats", "--session", session], stdout=subprocess.PIPE,
                          timeout=60, env=ctx.env(preload=False)).stdout.decode()
    if mode == "serialize":
        assert "  gated by: " in text, text
    if what == "nginx":
        assert got[0] == 0 and got[2] >= workers, got
        want = "EPOLLEXCLUSIVE (epoll)" if mode == "serialize" else \
            "EPOLLEXCLUSIVE of the program's own"
        assert want in text, text


def _per_worker_vs_log(ctx, what, make_argv, log_name, mode, path_of, n=200, workers=4):
    port = lib.free_port()
    session = ctx.session(mode)
    argv = make_argv(ctx, port)
    log = os.path.join(ctx.tmp, log_name)
    run = start_run(ctx, session, mode, argv, what)
    pids = []
    try:
        acclib.wait_http(port, run, path=path_of(0), timeout=30)
        pids = _processes(run, workers, what)
        # The readiness request is logged before we count.
        deadline = time.monotonic() + acclib.WAIT
        while len(_log_lines(log)) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        before_lines = len(_log_lines(log))
        assert before_lines >= 1, "%s wrote nothing to %s" % (what, log)
        before = acclib.listener(ctx, session, port)
        answers = []
        lock = threading.Lock()

        def client(k):
            for i in range(k, n, 4):
                st, body = lib.http_get(port, path_of(i))
                with lock:
                    answers.append((i, st))

        ts = [threading.Thread(target=client, args=(k,), daemon=True)
              for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert len(answers) == n and all(st == 200 for _, st in answers), (
            "%d answers, statuses %s" % (len(answers), collections.Counter(
                st for _, st in answers)))
        deadline = time.monotonic() + acclib.WAIT
        while len(_log_lines(log)) < before_lines + n and time.monotonic() < deadline:
            time.sleep(0.02)
        lines = _log_lines(log)[before_lines:]
        assert len(lines) == n, "%s logged %d lines for %d requests" % (what, len(lines), n)
        logged = collections.Counter(int(l[0]) for l in lines)
        assert all(l[1] == "200" for l in lines), lines[:5]
        after = acclib.listener(ctx, session, port)
        b, a = acclib.per_pid(before), acclib.per_pid(after)
        table = {p: a[p] - b.get(p, 0) for p in a if a[p] - b.get(p, 0)}
        say("%s %s: accepts per worker pid in the table %s, in the access log %s", what,
            mode, dict(sorted(table.items())), dict(sorted(logged.items())))
        assert set(logged) <= set(pids), "log pids %s, processes %s" % (sorted(logged), pids)
        assert table == dict(logged), "%s %s: table %s, access log %s" % (
            what, mode, table, dict(logged))
        assert after["accepts"] - before["accepts"] == n, acclib.summary(after)
        _check_gating(ctx, session, what, mode, workers)
        return table
    finally:
        srvlib.reap(run, pids)


def _nginx_path(i):
    return "/n/%d" % i


def test_accept_workers_nginx(ctx):
    for mode in ("observe", "serialize"):
        _per_worker_vs_log(ctx, "nginx", acclib.nginx_argv, "nginx-access.log", mode,
                           _nginx_path)


def test_accept_workers_apache_prefork(ctx):
    for mode in ("observe", "serialize"):
        _per_worker_vs_log(ctx, "apache2", acclib.apache_argv, "apache-access.log", mode,
                           _apache_path)
