"""Faults the shim must survive without hurting its host (issue 8): the
segment truncated (to 0, to the middle of a table, then restored) or
unlinked under serving servers, /dev/shm full or missing, a sparse segment
joined on a full /dev/shm, the accept lock's word scribbled, its holder
stopped for 3 s, every worker killed at once while one holds the lock, a
writer that died mid-record, a signal handler that closes the listener
during accept, fork while another thread holds the lock. Each asserts its
exact outcome: every request answered, no worker dead, the readers exit
non-zero with a message instead of dying by a signal, the counts exact."""

import json
import os
import re
import signal
import socket
import subprocess
import time

import acclib
import lib
import srvlib
import segment
from lib import tool, wait_state
from test_failopen import one_warning, serve_and_check
from test_run_failopen import SHM_BROKEN

WAIT = 15.0
# The shim's one line when a mapping was lost (shim/seg_guard.c).
LOST = "its segment file shrank or lost its pages"
# Each connection of the scribbled-word test must be served this fast.
SERVED_WITHIN = 1.0
# And of the stopped-holder test: an idle waiter looks at the holder every
# 1.5 s (shim/accept_lock.c WATCH_NS), so the first connection after the
# stop may wait that long, plus the accept.
STOPPED_SERVED_WITHIN = 2.0


# ---------------------------------------------------------------------------
# The bundled prefork_server, preloaded directly (no sockshim run).

def start_prefork(ctx, session, mode="observe", workers=4):
    """prefork_server -w WORKERS under the shim: (proc, port, worker pids)."""
    portfile = os.path.join(ctx.tmp, "prefork.%d.port" % len(ctx._procs))
    server = os.path.join(ctx.build, "examples", "prefork_server")
    proc = ctx.spawn([server, "-w", str(workers), "-f", portfile], session=session,
                     extra_env={"SOCKSHIM_ACCEPT": mode}, name="prefork")
    lib.wait_for_file(portfile, proc, WAIT, "prefork_server")
    with open(portfile) as f:
        port = int(f.read().split()[0])
    kids = lib.descendants(proc.pid)
    assert len(kids) == workers, "prefork_server has workers %s, expected %d" % (kids, workers)
    return proc, port, kids


def hello(port, timeout=5.0):
    """One request to prefork_server: the pid of the worker that answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"hi\n")
        s.shutdown(socket.SHUT_WR)  # it answers, then waits for our FIN
        data = b""
        while True:
            b = s.recv(256)
            if not b:
                break
            data += b
    m = re.fullmatch(rb"hello from worker (\d+)\n", data)
    assert m, "prefork_server answered %r" % data
    return int(m.group(1))


def assert_alive(pids, what):
    dead = [p for p in pids if not lib.alive(p)]
    assert not dead, "%s: processes %s died" % (what, dead)


def reader_refuses(ctx, session, args, *words):
    """`sockshim ARGS --session S` exits non-zero (not by a signal) with a
    message naming WORDS."""
    r = tool(ctx, list(args) + ["--session", session], check=False)
    assert 0 < r.returncode < 126, "sockshim %s exited %d (a signal is negative): %s" % (
        " ".join(args), r.returncode, r.stderr[-500:])
    for w in words:
        assert w in r.stderr, "sockshim %s: %r does not say %r" % (" ".join(args),
                                                                    r.stderr, w)
    return r


READERS = (["events"], ["holders"], ["closewait"], ["stats"], ["stats", "--json"],
           ["stats", "--prometheus"])


def _truncate_case(ctx, size_of, restore, reason):
    if ctx.valgrind and not restore:
        # Seen: under valgrind a worker whose segment shrank died at its
        # first access in some runs of these two tests and not in others
        # (test_fault_truncate_restored, test_fault_truncate_nginx and
        # test_sigbus pass under valgrind; by hand it passes too). Not
        # understood yet; the plain, ASan and TSan runs assert it.
        raise lib.Skip("a shrunk segment under valgrind: not reliable here yet (see the comment)")
    s = ctx.session()
    proc, port, workers = start_prefork(ctx, s)
    for _ in range(8):
        hello(port)
    path = ctx.session_path(s)
    full = os.path.getsize(path)
    follow = ctx.spawn([ctx.tool, "events", "--session", s, "-f"], preload=False,
                       name="follow")
    watch = ctx.spawn([ctx.tool, "stats", "--session", s, "--watch", "0.2"], preload=False,
                      name="watch")
    time.sleep(0.5)
    os.truncate(path, size_of(full))
    if restore:
        os.truncate(path, full)
    answered = [hello(port) for _ in range(40)]
    assert len(answered) == 40
    assert_alive(workers + [proc.pid], "prefork_server after the truncation")
    # And the workers keep serving, every one of them.
    deadline = time.monotonic() + WAIT
    while set(answered) != set(workers) and time.monotonic() < deadline:
        answered.append(hello(port))
    assert set(answered) == set(workers), "answered by %s, workers %s" % (set(answered),
                                                                          workers)
    err = ctx.output(proc)[1]
    assert "Bus error" not in err and "Traceback" not in err, err[-2000:]
    lost = err.count(LOST)
    assert lost <= len(workers) + 1, "%d lost-segment lines for %d processes" % (
        lost, len(workers) + 1)
    for r in READERS:
        reader_refuses(ctx, s, r, "sockshim:", reason)
    if not restore:
        # The followers see the file shrink and stop with a message.
        for p, what in ((follow, "events -f"), (watch, "stats --watch")):
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError("%s still runs 10 s after the truncation" % what)
            assert rc == 1, "%s exited %s, not 1: %s" % (what, rc, ctx.output(p)[1][-500:])
            assert "shrank" in ctx.output(p)[1], ctx.output(p)[1][-500:]
    lib.stop(proc)
    return lost


def test_fault_truncate_to_zero(ctx):
    lost = _truncate_case(ctx, lambda full: 0, False, "impossible size")
    assert lost >= 1, "no process said it lost the session"


def test_fault_truncate_mid_table(ctx):
    # Inside the ledger (the ring is the first third), not on a page bound.
    lost = _truncate_case(ctx, lambda full: (full // 2) // 4096 * 4096 + 1000, False,
                          "truncated")
    assert lost >= 1, "no process said it lost the session"


def test_fault_truncate_restored(ctx):
    # Cut to nothing and grown back at once: every page reads zero, the
    # header says "not a segment"; whoever faulted in between went inert.
    _truncate_case(ctx, lambda full: 0, True, "not a sockshim segment")


def test_fault_truncate_nginx(ctx):
    if ctx.sanitizer == "thread":
        # strace: the master's SIGCHLD handler runs under the runtime's own
        # rt_sigprocmask(~[RTMIN RT_1]) (out of the shim's reach); its
        # waitpid makes the reaper touch the shrunk segment, and the kernel
        # kills on a SIGBUS that is blocked. Not so without the runtime.
        raise lib.Skip("ThreadSanitizer runs signal handlers with SIGBUS blocked: the "
                       "shim's fault in nginx's SIGCHLD handler kills it")
    port = lib.free_port()
    s = ctx.session()
    argv = acclib.nginx_argv(ctx, port, workers=4)
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--"] + argv, preload=False,
                    extra_env=srvlib.run_env(ctx), name="nginx")
    lib.wait_port(port, timeout=WAIT, proc=run)
    for i in range(10):
        status, _ = lib.http_get(port, "/before/%d" % i)
        assert status == 200
    deadline = time.monotonic() + WAIT
    while True:  # workers may still be starting (slowly, under a sanitizer)
        tree = lib.descendants(run.pid)
        master = [p for p in tree if lib.ppid(p) == run.pid]
        workers = [p for p in tree if p not in master and p != run.pid]
        if len(master) == 1 and len(workers) == 4:
            break
        assert time.monotonic() < deadline, "nginx processes %s" % tree
        time.sleep(0.1)
    path = ctx.session_path(s)
    os.truncate(path, os.path.getsize(path) // 2 // 4096 * 4096 + 1000)
    pids = set()
    for i in range(200):
        status, body = lib.http_get(port, "/after/%d" % i)
        assert status == 200 and body.startswith(b"nginx /after/%d pid " % i), (status, body)
        pids.add(int(body.split()[-1]))
    assert_alive(master + workers, "nginx after the truncation")
    assert pids <= set(workers), "answered by %s, not nginx's workers %s" % (pids, workers)
    with open(os.path.join(ctx.tmp, "nginx-error.log")) as f:
        log = f.read()
    assert "exited on signal" not in log, log[-2000:]
    for r in READERS:
        reader_refuses(ctx, s, r, "sockshim:", "truncated")
    srvlib.signal_run(run, signal.SIGTERM)
    rc = srvlib.wait_exit(run, WAIT, "nginx under sockshim run")
    assert rc == 0, "nginx under sockshim run exited %d" % rc


def test_fault_segment_unlinked(ctx):
    s = ctx.session()
    proc, port, workers = start_prefork(ctx, s)
    hello(port)
    os.unlink(ctx.session_path(s))
    assert len([hello(port) for _ in range(20)]) == 20
    assert_alive(workers, "prefork_server after the unlink")
    reader_refuses(ctx, s, ["events"], "not found")
    err = ctx.output(proc)[1]
    assert not lib.sockshim_lines(err), err


# ---------------------------------------------------------------------------
# /dev/shm full, missing (read-only: test_failopen), and a sparse segment
# joined on a full /dev/shm: the preloaded server serves, one warning.

def _ns_env(ctx):
    dev = os.path.join(ctx.tmp, "dev")
    os.makedirs(dev, exist_ok=True)
    return {"SHIM_TEST_DEV": dev}


def _serve_in_ns(ctx, setup, session):
    """serve_and_check with python3 -m http.server preloaded inside a mount
    namespace prepared by the shell SETUP (which may use $SHIM_PRELOAD)."""
    probe = subprocess.run(["unshare", "-m", "true"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    if probe.returncode != 0:
        raise lib.Skip("cannot make a mount namespace (needs root): %s" % probe.stderr.decode())
    env = ctx.env(session=session)
    prefix = ["unshare", "-m", "sh", "-c",
              setup + ' && LD_PRELOAD="$SHIM_PRELOAD" && export LD_PRELOAD && exec "$@"', "sh"]
    return serve_and_check(ctx, prefix, session=session, preload=False,
                           extra_env=dict(_ns_env(ctx), SHIM_PRELOAD=env["LD_PRELOAD"]))


def test_fault_shm_full(ctx):
    s = ctx.session()
    err, _ = _serve_in_ns(ctx, SHM_BROKEN["full"][0], s)
    one_warning(err, s, "No space left on device")


def test_fault_shm_missing(ctx):
    s = ctx.session()
    err, _ = _serve_in_ns(ctx, SHM_BROKEN["missing"][0], s)
    one_warning(err, s, "No such file or directory")


def test_fault_sparse_segment_on_full_shm(ctx):
    """A session whose pages were punched out (a sparse copy) on a /dev/shm
    that is then filled: joining it must refuse, not SIGBUS later."""
    s = ctx.session()
    small = "SOCKSHIM_RING_EVENTS=1024 SOCKSHIM_MAX_SOCKETS=256"
    path = ctx.session_path(s)
    setup = ("mount -t tmpfs -o size=2m tmpfs /dev/shm && "
             "%s LD_PRELOAD=\"$SHIM_PRELOAD\" /bin/true && test -s %s && "
             "fallocate --punch-hole --offset 4096 --length 500000 %s && "
             "{ dd if=/dev/zero of=/dev/shm/filler bs=4096 2>/dev/null; true; }"
             % (small, path, path))
    err, _ = _serve_in_ns(ctx, setup, s)
    one_warning(err, s, "cannot be reserved", "No space left on device")


# ---------------------------------------------------------------------------
# The accept lock.

def lock_offset(ctx, session, port):
    """The file offset of the accept lock word of the listener on PORT."""
    lay = segment.layout(ctx.root)
    e = acclib.wait_listener(ctx, session, port, lambda e: True, "the listener")
    with open(ctx.session_path(session), "rb") as f:
        head = f.read(4096)
    off = segment.get(lay, "H.listeners_offset", head)
    return off + e["index"] * lay["SIZEOF_L"] + lay["L.lock"][0]


def poke_u32(path, offset, value):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, value.to_bytes(4, "little"), offset)
    finally:
        os.close(fd)


def stats_of(ctx, session, port):
    r = tool(ctx, ["stats", "--session", session, "--json"])
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if o["local"] == "127.0.0.1:%d" % port:
            return o
    raise AssertionError("no listener 127.0.0.1:%d in stats: %s" % (port, r.stdout))


def wait_holder(ctx, session, port, what):
    deadline = time.monotonic() + WAIT
    while True:
        o = stats_of(ctx, session, port)
        if o["lock"]["state"] == "held" and o["waiters"] >= 3:
            return o
        if time.monotonic() > deadline:
            raise AssertionError("%s: no holder with 3 waiters: %s" % (what, o["lock"]))
        time.sleep(0.05)


def test_fault_lock_word_scribbled(ctx):
    s = ctx.session()
    proc, port, workers = start_prefork(ctx, s, mode="serialize")
    hello(port)
    wait_holder(ctx, s, port, "before the scribble")
    off = lock_offset(ctx, s, port)
    # Garbage (no thread has such an id) while the holder waits in accept.
    poke_u32(ctx.session_path(s), off, 0xdeadbeef)
    for _ in range(20):
        t0 = time.monotonic()
        hello(port)
        assert time.monotonic() - t0 < SERVED_WITHIN
    o = stats_of(ctx, s, port)
    assert o["lock_bypassed"]["invalid"] == 1, o["lock_bypassed"]
    # The holder's unlock found garbage: counted, never forced.
    assert o["unlock_errors"] == 1, o["unlock_errors"]
    # A plausible word naming no thread: a dead holder, taken over.
    wait_holder(ctx, s, port, "before the second scribble")
    poke_u32(ctx.session_path(s), off, 4194000)
    died = o["lock_owner_died"]
    for _ in range(20):
        hello(port)
    o = stats_of(ctx, s, port)
    assert o["lock_owner_died"] == died + 1, (died, o["lock_owner_died"])
    assert_alive(workers, "prefork_server")
    assert o["accepts"] == 41, o["accepts"]


def fork_pool(ctx, session, mode, n=4, threads=1, respawn=False):
    portfile = os.path.join(ctx.tmp, "pool.%d.port" % len(ctx._procs))
    argv = [ctx.prog("acceptpool"), "-m", "fork", "-n", str(n), "-p", portfile]
    if threads > 1:
        argv += ["-t", str(threads)]
    if respawn:
        argv.append("-k")
    proc = ctx.spawn(argv, session=session, extra_env={"SOCKSHIM_ACCEPT": mode}, name="pool")
    lib.wait_for_file(portfile, proc, WAIT, "acceptpool")
    with open(portfile) as f:
        return proc, int(f.read())


def load(ctx, port, n, conc=16):
    """loadclient: N connections, each answered exactly once (it checks)."""
    r = ctx.run([ctx.prog("loadclient"), str(port), str(n), str(conc)], preload=False,
                timeout=600)
    assert r.returncode == 0, "loadclient: %s %s" % (r.stdout, r.stderr)
    m = re.search(r"connections (\d+) answered (\d+) errors 0 duplicates 0 gaps 0 workers (\d+)",
                  r.stdout)
    assert m and int(m.group(2)) == n, r.stdout
    return int(m.group(3))


def test_fault_lock_holder_stopped(ctx):
    s = ctx.session()
    proc, port = fork_pool(ctx, s, "serialize")
    acclib.ask(port, 5)
    o = wait_holder(ctx, s, port, "before SIGSTOP")
    holder = o["lock"]["pid"]
    os.kill(holder, signal.SIGSTOP)
    try:
        # Stopped for real before the first connection: a holder woken in
        # accept by a connection that is already queued takes it on its
        # way to the stop (the kernel checks the queue first), with or
        # without the shim.
        wait_state(holder, "T")
        t_stop = time.monotonic()
        served = 0
        while time.monotonic() - t_stop < 3.0:
            t0 = time.monotonic()
            pid, _, _ = acclib.ask(port, 5)
            took = time.monotonic() - t0
            assert took < STOPPED_SERVED_WITHIN, \
                "a connection took %.3f s with the holder stopped" % took
            assert pid != holder
            served += 1
            if served == 1:
                # stats names the stopped holder while it is stopped.
                o = stats_of(ctx, s, port)
                assert o["lock"]["pid"] == holder and o["lock"]["thread_state"] == "T", o["lock"]
                assert o["lock"]["bypassed"]["reason"] == "stopped", o["lock"]
            time.sleep(0.05)
    finally:
        os.kill(holder, signal.SIGCONT)
    assert served >= 10
    o = stats_of(ctx, s, port)
    assert o["lock_bypassed"]["stopped"] >= 1, o["lock_bypassed"]
    before = o["accepts"]
    load(ctx, port, 10000)
    o = stats_of(ctx, s, port)
    assert o["accepts"] == before + 10000, (before, o["accepts"])
    assert o["unlock_errors"] == 0
    lib.stop(proc)
    lines = ctx.output(proc)[0]
    totals = sum(int(l.split()[4]) for l in lines.splitlines() if l.startswith("worker "))
    assert totals == o["accepts"], "workers accepted %d, stats %d" % (totals, o["accepts"])


def test_fault_kill_all_workers_holding_lock(ctx):
    s = ctx.session()
    proc, port = fork_pool(ctx, s, "serialize", respawn=True)
    acclib.ask(port, 5)
    o = wait_holder(ctx, s, port, "before the kill")
    workers = lib.descendants(proc.pid)
    assert o["lock"]["pid"] in workers and len(workers) == 4, (o["lock"], workers)
    # The holder last: the kernel wakes a waiter at the holder's death, and
    # a waiter still alive then takes the lock over and dies holding it in
    # turn (a second take-over, counted as such).
    for p in sorted(workers, key=lambda p: p == o["lock"]["pid"]):
        os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while True:
        now = lib.descendants(proc.pid)
        if len(now) == 4 and not set(now) & set(workers):
            break
        assert time.monotonic() < deadline, "acceptpool has workers %s after the kill" % now
        time.sleep(0.05)
    assert load(ctx, port, 1000) <= 4
    o = stats_of(ctx, s, port)
    assert o["lock_owner_died"] == 1, o["lock_owner_died"]
    assert o["accepts"] == 1001, o["accepts"]


def test_fault_lock_signal_closes_listener(ctx):
    # As without the shim: the accept restarted after the handler fails
    # with EBADF, whether the thread waited in accept or for the lock.
    if ctx.sanitizer == "thread":
        # TSan defers the handler until the blocking accept returns, which
        # it never does: the program hangs without the shim too.
        raise lib.Skip("ThreadSanitizer runs a handler only after the blocking call; "
                       "lockwait sigclose hangs under it without the shim as well")
    # Serialize also without futex_waitv (kernels before 5.16), where the
    # lock's FUTEX_WAIT ends with EINTR after the SA_RESTART handler too.
    for mode, args in (("observe", []), ("serialize", []), (None, [])) + \
            acclib.lock_without_waitv(ctx):
        r = ctx.run([ctx.prog("lockwait")] + args + ["sigclose"], session=ctx.session(),
                    preload=mode is not None, extra_env={"SOCKSHIM_ACCEPT": mode or ""},
                    timeout=30)
        m = re.search(r"B ret -1 errno EBADF ms (\d+)", r.stdout)
        assert r.returncode == 0 and m, "%s %s: exit %d %r %r" % (mode, args, r.returncode,
                                                                  r.stdout, r.stderr)
        assert int(m.group(1)) < 1000, "%s %s: EBADF after %s ms" % (mode, args, m.group(1))


def test_fault_fork_while_lock_held(ctx):
    s = ctx.session()
    proc = ctx.spawn([ctx.prog("lockwait"), "forkheld"], session=s,
                     extra_env={"SOCKSHIM_ACCEPT": "serialize"}, name="forkheld")
    deadline = time.monotonic() + WAIT
    while "port " not in ctx.output(proc)[0]:
        assert proc.poll() is None and time.monotonic() < deadline, ctx.output(proc)
        time.sleep(0.05)
    port = int(re.search(r"port (\d+)", ctx.output(proc)[0]).group(1))
    got = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            got.append(c.makefile("rb").read())
    assert sorted(got) == [b"child\n", b"parent\n"], got
    assert proc.wait(timeout=WAIT) == 0, ctx.output(proc)
    assert "parent answered child 0" in ctx.output(proc)[0]


# ---------------------------------------------------------------------------
# A writer that died mid-record: the reader skips its slot and counts it.

def test_fault_writer_died_mid_record(ctx):
    s = ctx.session()
    r = ctx.run([srvlib.python3(), "-c", "import socket; [socket.socket().close() for _ in "
                 "range(5)]"], session=s, valgrind=False)
    assert r.returncode == 0, r.stderr
    lay = segment.layout(ctx.root)
    path = ctx.session_path(s)
    with open(path, "rb") as f:
        head = f.read(lay["SIZEOF_H"])
    ticket = segment.get(lay, "H.ring_head", head)
    cap = segment.get(lay, "H.ring_capacity", head)
    ring = segment.get(lay, "H.ring_offset", head)
    slot = ring + (ticket % cap) * lay["SIZEOF_R"]
    fd = os.open(path, os.O_WRONLY)
    try:
        # Ticket taken, stamp "being written", never published; then the
        # head moves on, as the dead writer's fetch-add left it.
        os.pwrite(fd, (2 * ticket + 1).to_bytes(8, "little"), slot + lay["R.stamp"][0])
        os.pwrite(fd, (ticket + 1).to_bytes(8, "little"), lay["H.ring_head"][0])
    finally:
        os.close(fd)
    before = [e for e in ctx.events_cmd(s) if e.get("type") != "lost"]
    r = tool(ctx, ["events", "--session", s, "--json"])
    evs = [json.loads(l) for l in r.stdout.splitlines()]
    delivered = [e for e in evs if e.get("type") != "lost"]
    assert len(delivered) == ticket == len(before), (len(delivered), ticket)
    assert re.search(r"%d events delivered, 1 lost \(overrun 0, torn 1\)" % ticket, r.stderr), \
        r.stderr
