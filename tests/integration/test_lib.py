"""The helpers other tests rely on: /proc and ss readers, stopping
processes, session names and clean-up."""

import os
import signal
import socket
import time

import lib


def test_lib_proc_and_ss(ctx):
    with socket.socket() as l:
        l.bind(("127.0.0.1", 0))
        l.listen(1)
        port = l.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            a, peer = l.accept()
            with a:
                ino = {s.fileno(): os.fstat(s.fileno()).st_ino for s in (l, c, a)}
                got = lib.socket_inodes(os.getpid())
                assert {fd: got.get(fd) for fd in ino} == ino, (got, ino)
                rows = [r for r in lib.ss_tcp() if r["local"] == "127.0.0.1:%d" % port
                        and r["peer"] == "127.0.0.1:%d" % peer[1]]
                assert len(rows) == 1, rows
                assert rows[0]["state"] == "ESTAB" and rows[0]["inode"] == ino[a.fileno()], rows
                assert "pid=%d," % os.getpid() in rows[0]["users"], rows


def test_lib_stop_escalates(ctx):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
           "print('ready', flush=True); time.sleep(60)"
    p = ctx.spawn([ctx.python, "-c", code], preload=False, name="stubborn")
    deadline = time.monotonic() + 20
    while "ready" not in ctx.output(p)[0]:
        assert time.monotonic() < deadline and p.poll() is None, "helper did not start"
        time.sleep(0.05)
    start = time.monotonic()
    assert lib.stop(p, grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - start < 5
    p = ctx.spawn([ctx.python, "-c", "import time; time.sleep(60)"], preload=False)
    lib.stop_pid(p.pid, grace=5)
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_lib_sessions_are_removed(ctx):
    names = [ctx.session(), ctx.session("x")]
    assert len(set(names)) == 2
    for n in names:
        assert len(n) <= lib.SESSION_MAX and n.startswith("it-")
        res = ctx.run(["/bin/true"], session=n, valgrind=False)
        assert res.returncode == 0 and os.path.exists(ctx.session_path(n)), res.stderr
    ctx.cleanup()
    for n in names:
        assert not os.path.exists(ctx.session_path(n)), "%s left behind" % n


def test_lib_descendants_and_zombies(ctx):
    """A parent with a running child and a zombie child (exited, not
    reaped): the zombie is not alive, and descendants() lists only the
    running processes below the parent, the parent too with include_root."""
    code = ("import os, time\n"
            "z = os.fork()\n"
            "if z == 0: os._exit(0)\n"
            "r = os.fork()\n"
            "if r == 0: time.sleep(60); os._exit(0)\n"
            "print(z, r, flush=True); time.sleep(60)\n")
    p = ctx.spawn([ctx.python, "-c", code], preload=False, name="parent")
    out = lib.wait_for(lambda: p.poll() is None and ctx.output(p)[0].split(), "the two children")
    zombie, runner = map(int, out)
    lib.wait_state(zombie, "Z")
    assert not lib.alive(zombie) and lib.alive(runner) and lib.alive(p.pid)
    assert lib.ppid(zombie) == lib.ppid(runner) == p.pid
    assert lib.descendants(p.pid) == [runner], lib.descendants(p.pid)
    assert lib.descendants(p.pid, include_root=True) == sorted([p.pid, runner])
    lib.stop_pid(runner, grace=2.0)
    assert not lib.alive(runner) and lib.descendants(p.pid) == []
