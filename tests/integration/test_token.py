"""The poll token's hand-off and doorbells (serialize, pools that wait in
poll or select).

- prefork_server -w 4 -m poll, 200 sequential connections: every one
  answered and accepted once, the server's EAGAIN count is the shim's;
  the token is handed to a waiting worker at each drop (token_handoffs),
  so every worker takes a share (before the hand-off one worker took most:
  [1, 17, 68, 214] of 300 measured; before layout 14 a worker back from
  its connection could take the token from the rung waiter: [24, 40, 67,
  69] of 200, now round the pool, 50 each on an idle machine); at rest the three workers that do not
  hold the token are marked waiting on their doorbells, the holder not.
  Each worker has the listener's 8 doorbells: eventfds far above the
  program's numbers, close-on-exec, never reported by `sockshim holders`;
  the helper a worker fork+execs (-l) has none.
- select under serialize in a worker that does not hold the token (it
  waits in ppoll with its doorbell): select's answers, exactly: a timeout
  with nothing ready, a readable pipe and a writable one, EBADF for a
  closed descriptor.
- A worker that closes every descriptor above its listener (close_range)
  and one that dup2s a pipe onto each of its doorbell numbers still serve
  every connection (in slices, without doorbells), and the shim never
  writes into the pipe that now has those numbers.
"""

import contextlib
import errno
import os
import re
import signal
import socket
import subprocess
import textwrap
import time

import acclib
import lib
import segment
import srvlib

CONNECTIONS = 200
WORKERS = 4
DOORBELLS = 8
# The doorbells sit at or above min(RLIMIT_NOFILE, 1024) - 128 (shim/doorbell.c);
# the programs here use a handful of descriptors.
FAR_ABOVE = 64
STOP_BOUND = 15.0
REPORT_RE = re.compile(r"prefork_server: (\d+) workers \((\w+)\): (\d+) accepts, (\d+) accept "
                       r"calls found nothing")


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def _python(ctx, name, text):
    """The argv that runs TEXT, written to NAME in the test's directory."""
    prog = os.path.join(ctx.tmp, name)
    with open(prog, "w") as f:
        f.write(text)
    return [srvlib.python3(), prog]


@contextlib.contextmanager
def _serialized(ctx, session, argv, stdin=subprocess.PIPE):
    """ARGV under the shim in serialize mode, in a process group of its
    own, its output piped; the group killed on the way out."""
    p = subprocess.Popen(argv, env=ctx.env(session, True, {"SOCKSHIM_ACCEPT": "serialize"}),
                         stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=ctx.tmp, start_new_session=True)
    try:
        yield p
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group ended with the program
        p.wait()


def _eventfds(pid):
    """{fd: fdinfo flags} of the eventfds process PID holds."""
    out = {}
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, name)) != "anon_inode:[eventfd]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, name)) as f:
                flags = int(re.search(r"^flags:\s*(\d+)", f.read(), re.M).group(1), 8)
        except OSError:
            continue
        out[int(name)] = flags
    return out


def _start_prefork(ctx, session, extra=()):
    portfile = os.path.join(ctx.tmp, "port.%s" % session)
    run = ctx.spawn([ctx.tool, "run", "--session", session, "--accept", "serialize", "--",
                     os.path.join(ctx.build, "examples", "prefork_server"), "-w", str(WORKERS),
                     "-m", "poll", "-r", "-f", portfile] + list(extra),
                    preload=False, extra_env=srvlib.run_env(ctx), name="prefork")
    lib.wait_for_file(portfile, run, acclib.WAIT, "sockshim run -- prefork_server")
    with open(portfile) as f:
        port = int(f.read().split()[0])
    main = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid]
    assert len(main) == 1, main
    workers = [p for p in lib.descendants(main[0]) if lib.ppid(p) == main[0]]
    assert len(workers) == WORKERS, workers
    return run, port, main[0], workers


def test_token_handoff_prefork_poll(ctx):
    session = ctx.session()
    run, port, main, workers = _start_prefork(ctx, session)
    try:
        client = os.path.join(ctx.build, "examples", "demo_client")
        r = ctx.run([client, "-p", str(port), "-n", str(CONNECTIONS)], preload=False, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("hello from worker") == CONNECTIONS, r.stdout[-2000:]

        # At rest: one worker holds the token (waits for the listener in
        # poll), the three others sleep on their doorbells, marked.
        def at_rest(e):
            holder = e["poller"] >> 32
            marked = {w["pid"] for w in e["workers"] if w["token_waiting"]}
            return e["accepts"] == CONNECTIONS and holder in workers and \
                marked == set(workers) - {holder}
        e = acclib.wait_listener(ctx, session, port, at_rest, "one holder, three marked waiting",
                                 procs=[run])
        per = acclib.per_pid(e)
        say("accepts per worker %s; %d hand-offs; %d spurious, %d empty",
            sorted(per.values()), e["token_handoffs"], e["spurious"], e["empty"])
        assert sorted(per) == sorted(workers), (per, workers)
        # Handed over at (nearly) every drop: each worker takes a share.
        assert e["token_handoffs"] >= CONNECTIONS // 2, acclib.summary(e)
        assert min(per.values()) >= CONNECTIONS // (2 * WORKERS), per

        # The doorbells: 8 eventfds in each worker (and the parent that
        # made them at listen), far above the program's numbers, with
        # close-on-exec; none of them is a socket of the program's.
        mine = set()
        for pid in [main] + workers:
            bells = _eventfds(pid)
            assert len(bells) == DOORBELLS, (pid, bells)
            assert all(fd >= FAR_ABOVE for fd in bells), (pid, bells)
            assert all(flags & os.O_CLOEXEC for flags in bells.values()), (pid, bells)
            mine |= {(pid, fd) for fd in bells}
        out = lib.tool(ctx, ["holders", "--session", session, "--json"]).stdout
        named = {(int(p), int(f)) for p, f in re.findall(r'"pid":(\d+),"fd":(\d+)', out)}
        assert named and not named & mine, (sorted(named), sorted(mine))

        srvlib.signal_run(run, signal.SIGTERM)
        status = srvlib.wait_exit(run, STOP_BOUND, "prefork_server -m poll")
        assert status == 0, "prefork_server exited %s: %s" % (status, ctx.output(run)[1])
        m = REPORT_RE.search(ctx.output(run)[0])
        assert m, ctx.output(run)
        assert (int(m.group(1)), m.group(2), int(m.group(3))) == (WORKERS, "poll", CONNECTIONS)
        assert int(m.group(4)) == e["spurious"] + e["empty"], (m.group(0), acclib.summary(e))
    finally:
        srvlib.reap(run, lib.descendants(run.pid))


def test_token_exec_leaves_doorbells(ctx):
    """A helper a worker fork+execs (-l: the planted leak) has none of the
    doorbells: close-on-exec."""
    session = ctx.session()
    run, port, _, workers = _start_prefork(ctx, session, ["-l"])
    try:
        client = os.path.join(ctx.build, "examples", "demo_client")
        r = ctx.run([client, "-p", str(port), "-n", "1"], preload=False, timeout=30)
        assert r.returncode == 0 and "hello from worker" in r.stdout, (r.stdout, r.stderr)
        deadline = time.monotonic() + acclib.WAIT
        helpers = []
        while not helpers:
            helpers = [p for w in workers for p in lib.descendants(w)
                       if lib.comm(p) == "sleep"]
            assert helpers or time.monotonic() < deadline, "no helper started"
            time.sleep(0.05)
        # The helper holds the leaked connection (fd 0), no eventfd.
        assert _eventfds(helpers[0]) == {}, os.listdir("/proc/%d/fd" % helpers[0])
        assert all(len(_eventfds(w)) == DOORBELLS for w in workers)
    finally:
        srvlib.reap(run, lib.descendants(run.pid))


# A listener (serialize: its doorbells made at listen), a worker that takes
# the token and keeps it (select on the listener alone, long timeout), then
# a checker that does not hold it: its selects wait on its doorbell.
SELECT_PROG = textwrap.dedent("""\
    import errno, os, select, signal, socket, sys, time
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.setblocking(False)
    lfd = lsock.fileno()
    holder = os.fork()
    if holder == 0:
        while True:
            select.select([lfd], [], [], 30)
    print("holder", holder, flush=True)
    sys.stdin.readline()  # the test saw the holder take the token
    rp, wp = os.pipe()
    out = []
    r = select.select([lfd, rp], [], [], 0.3)
    out.append("timeout %s" % (r,))
    os.write(wp, b"x")
    r = select.select([lfd, rp], [wp], [], 5)
    out.append("ready %s" % ([sorted(x) for x in r] == [[rp], [wp], []]))
    os.read(rp, 1)
    r = select.select([lfd], [wp], [rp], 5)
    out.append("writable %s" % ([sorted(x) for x in r] == [[], [wp], []]))
    gone = os.dup(rp)
    os.close(gone)
    try:
        select.select([lfd, gone], [], [], 1)
        out.append("ebadf none")
    except OSError as e:
        out.append("ebadf %s" % (e.errno == errno.EBADF))
    print("\\n".join(out), flush=True)
    os.kill(holder, signal.SIGKILL)
    os.waitpid(holder, 0)
""")


def test_token_select_semantics(ctx):
    session = ctx.session()
    with _serialized(ctx, session, _python(ctx, "selectcheck.py", SELECT_PROG)) as p:
        first = p.stdout.readline().decode()
        assert first.startswith("holder "), (first, p.stderr.read())
        holder = int(first.split()[1])
        deadline = time.monotonic() + acclib.WAIT
        while True:
            ls = segment.raw_listeners(ctx, session)
            if len(ls) == 1 and ls[0]["poller"] >> 32 == holder:
                break
            assert time.monotonic() < deadline, "the holder never took the token: %s" % ls
            time.sleep(0.02)
        p.stdin.write(b"go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert out.decode().split("\n")[:4] == [
            "timeout ([], [], [])", "ready True", "writable True", "ebadf True"], (out, err)
        assert not lib.sockshim_lines(err.decode()), err
        e = segment.raw_listeners(ctx, session)[0]
        # The checker never held the token: the holder's waits only.
        assert e["accepts"] == 0 and e["token_waits"] >= 1, e


# Three workers. B puts a pipe's write end on each of its doorbell numbers,
# then takes the token first; W keeps its doorbells and waits on one
# (marked waiting) while B holds the token; A closes every descriptor
# above its listener (close_range: its doorbells with them). B drops the
# token after each accept with W waiting: a shim that still took B's
# numbers for its doorbells would ring W through them, into the pipe.
CLOSE_PROG = textwrap.dedent("""\
    import os, re, select, signal, socket, sys
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.setblocking(False)
    lfd = lsock.fileno()
    rp, wp = os.pipe()
    os.set_blocking(rp, False)

    def bells():
        out = []
        for n in os.listdir("/proc/self/fd"):
            try:
                if os.readlink("/proc/self/fd/" + n) == "anon_inode:[eventfd]":
                    out.append(int(n))
            except FileNotFoundError:  # listdir's own descriptor
                pass
        return out

    def serve(tag):
        while True:
            r, _, _ = select.select([lfd], [], [], 10)
            if not r:
                continue
            try:
                c, _ = lsock.accept()
            except BlockingIOError:
                continue
            c.sendall(("%s %d\\n" % (tag, os.getpid())).encode())
            c.close()

    kids = []
    for tag in ("B", "W", "A"):
        if tag == "W":
            sys.stdin.readline()  # the test saw B take the token
        pid = os.fork()
        if pid == 0:
            os.close(rp)
            if tag == "A":
                os.closerange(max(lfd, wp) + 1, 65536)
            elif tag == "B":
                for fd in bells():
                    os.dup2(wp, fd)
            os.write(1, ("%s %d %d\\n" % (tag, os.getpid(), len(bells()))).encode())
            serve(tag)
        kids.append(pid)
        if tag == "B":
            os.write(1, ("port %d\\n" % lsock.getsockname()[1]).encode())
    sys.stdin.readline()
    for pid in kids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        data = os.read(rp, 4096)
    except BlockingIOError:
        data = b""
    print("pipe", len(data), flush=True)
""")


def test_token_program_closes_doorbells(ctx):
    session = ctx.session()
    with _serialized(ctx, session, _python(ctx, "closecheck.py", CLOSE_PROG)) as p:
        info = {}
        for _ in range(2):
            l = p.stdout.readline().decode().split()
            assert l, p.stderr.read1()
            info[l[0]] = l[1:]
        assert set(info) == {"B", "port"}, info
        b_pid, port = int(info["B"][0]), int(info["port"][0])
        acclib.wait_listener(ctx, session, port, lambda e: e["poller"] >> 32 == b_pid,
                             "B holding the token", procs=[p], cross=False)
        p.stdin.write(b"go\n")
        p.stdin.flush()
        for _ in range(2):
            l = p.stdout.readline().decode().split()
            assert l, p.stderr.read1()
            info[l[0]] = l[1:]
        w_pid = int(info["W"][0])
        # A closed its doorbells, B's numbers are its pipe now, W has its 8.
        assert (info["A"][1], info["B"][1], info["W"][1]) == ("0", "0", str(DOORBELLS)), info
        acclib.wait_listener(ctx, session, port,
                             lambda e: any(w["pid"] == w_pid and w["token_waiting"]
                                           for w in e["workers"]),
                             "W waiting on its doorbell", procs=[p], cross=False)
        n = 30
        got = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            got.append(srvlib.recv_exact(s, 2).decode())
            s.close()
        e = acclib.wait_listener(ctx, session, port, lambda e: e["accepts"] == n,
                                 "%d accepts" % n, procs=[p])
        served = {t: sum(1 for g in got if g[0] == t) for t in "ABW"}
        say("served by %s; %d hand-offs", served, e["token_handoffs"])
        # B held the token when the first came, and dropped it with W waiting.
        assert sum(served.values()) == n and served["B"] >= 1, got
        out, err = p.communicate(b"stop\n", timeout=30)
        assert p.returncode == 0, err
        assert out.decode().split() == ["pipe", "0"], (out, err)
        assert not lib.sockshim_lines(err.decode()), err


# Three workers wait in select for the listener; the parent reaps them
# (os.wait). SIGUSR1 makes a worker _exit at once.
REAP_PROG = textwrap.dedent("""\
    import os, select, signal, socket, sys
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lsock.setblocking(False)
    lfd = lsock.fileno()
    for _ in range(3):
        if os.fork() == 0:
            signal.signal(signal.SIGUSR1, lambda *a: os._exit(0))
            while True:
                if select.select([lfd], [], [], 30)[0]:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        continue
                    c.sendall(("%d\\n" % os.getpid()).encode())
                    c.close()
    os.write(1, ("port %d\\n" % lsock.getsockname()[1]).encode())
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        os.write(1, ("reaped %d\\n" % pid).encode())
""")


def test_token_holder_gone(ctx):
    """The token of a holder that exits (its own _exit) or is killed (its
    parent reaps it) is handed to a waiter at once: token_handoffs counts
    it, with no connection in between, and the next connection is served
    by a live worker."""
    session = ctx.session()
    with _serialized(ctx, session, _python(ctx, "reapcheck.py", REAP_PROG),
                     stdin=subprocess.DEVNULL) as p:
        l = p.stdout.readline().decode().split()
        assert l and l[0] == "port", (l, p.stderr.read1())
        port = int(l[1])
        live = set(lib.descendants(p.pid))
        assert len(live) == 3, live
        for how in (signal.SIGUSR1, signal.SIGKILL):
            def settled(e):
                marked = {w["pid"] for w in e["workers"] if w["token_waiting"]}
                return e["poller"] >> 32 in live and marked == live - {e["poller"] >> 32}
            e = acclib.wait_listener(ctx, session, port, settled, "a holder, the rest waiting",
                                     procs=[p])
            holder, handoffs = e["poller"] >> 32, e["token_handoffs"]
            os.kill(holder, how)
            assert p.stdout.readline().decode().split() == ["reaped", str(holder)]
            live.discard(holder)
            e = acclib.wait_listener(ctx, session, port, lambda e: e["poller"] >> 32 in live,
                                     "the token with a live worker", procs=[p])
            say("%s: holder %d gone, token with %d, hand-offs %d -> %d",
                signal.Signals(how).name, holder, e["poller"] >> 32, handoffs,
                e["token_handoffs"])
            assert e["token_handoffs"] == handoffs + 1, acclib.summary(e)
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            assert int(s.makefile().readline()) in live
            s.close()


def test_token_cancelled_in_poll(ctx):
    """A thread cancelled in a poll that waited on its doorbell in the
    listener's slot leaves the program's array as the program wrote it,
    and its row no longer marked waiting (tests/progs/tokencancel.c)."""
    session = ctx.session()
    with _serialized(ctx, session, [ctx.prog("tokencancel")]) as p:
        l = p.stdout.readline().decode().split()
        assert l and l[0] == "port", (l, p.stderr.read1())
        port, child = int(l[1]), int(l[3])
        acclib.wait_listener(ctx, session, port, lambda e: e["poller"] >> 32 == child,
                             "the child holding the token", procs=[p])
        out, err = p.communicate(b"go\n", timeout=30)
        assert p.returncode == 0, (out, err)
        lfd_line = out.decode().split()
        assert lfd_line[0] == "slot", out
        e = acclib.listener(ctx, session, port, cross=False)
        mine = [w for w in e["workers"] if w["pid"] == p.pid]
        assert len(mine) == 1 and not mine[0]["token_waiting"], e["workers"]


def test_token_segment_truncated(ctx):
    """The segment truncated to 0 while three poll workers sleep on their
    doorbells and one holds the token: every connection after it is still
    answered, by the same four workers, and the server stops cleanly (the
    shim goes inert; the doorbells are only slept on, never trusted)."""
    session = ctx.session()
    run, port, _, workers = _start_prefork(ctx, session)
    try:
        acclib.wait_listener(ctx, session, port,
                             lambda e: sum(w["token_waiting"] for w in e["workers"]) == 3,
                             "three workers on their doorbells", procs=[run])
        os.truncate(ctx.session_path(session), 0)
        client = os.path.join(ctx.build, "examples", "demo_client")
        r = ctx.run([client, "-p", str(port), "-n", "40"], preload=False, timeout=60)
        assert r.returncode == 0, r.stderr
        pids = {int(m) for m in re.findall(r"hello from worker (\d+)", r.stdout)}
        assert r.stdout.count("hello from worker") == 40 and pids <= set(workers), r.stdout
        assert all(lib.ppid(w) for w in workers), "a worker died"
        srvlib.signal_run(run, signal.SIGTERM)
        status = srvlib.wait_exit(run, STOP_BOUND, "prefork_server after the truncation")
        assert status == 0, ctx.output(run)
    finally:
        srvlib.reap(run, lib.descendants(run.pid))
