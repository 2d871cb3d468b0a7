"""No ghosts (issue 12): a child that dies holding sockets, by a signal or
by an exit the shim did not see, is released by the parent that reaps it
(wait, waitpid, wait4, waitid): its holds leave the ledger, each socket's
reference count drops, and each gets its close record, via death or via
exit, with the references before and after. A process whose pid was
given again is released by the new process (the process table, not a
ledger scan, finds what it held). Real programs under the preload."""

import json
import os
import signal
import socket
import subprocess
import time

import lib
import srvlib
from lib import proc_set
from segment import raw_ledger

# The parent: a listener, a forked child that accepts one connection and
# then waits to be killed (or ends by a raw exit_group, unseen), and the
# parent closes its own copy of the listener only after the child is gone.
# It reaps with the call named in argv[2]; talks on stdout, reads stdin.
PARENT = r"""
import ctypes, os, socket, sys, time
mode, reap = sys.argv[1], sys.argv[2]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(4)
print("port", ls.getsockname()[1], flush=True)
pid = os.fork()
if pid == 0:
    c, _ = ls.accept()
    if mode == "rawexit":
        import signal
        # An end the shim cannot see: exec into a program it does not
        # follow (SOCKSHIM_FOLLOW=0, an empty environment) that inherits
        # both sockets and exits.
        os.set_inheritable(c.fileno(), True)
        os.set_inheritable(ls.fileno(), True)
        signal.signal(signal.SIGUSR1, lambda *a: os.execve("/bin/sh", ["sh", "-c", "exit 0"], {}))
    print("child", os.getpid(), "accepted", c.fileno(), flush=True)
    time.sleep(60)
    os._exit(0)
sys.stdin.readline()  # the test killed (or released) the child
if reap == "waitpid":
    _, st = os.waitpid(pid, 0)
elif reap == "wait4":
    _, st, _ = os.wait4(pid, 0)
else:
    r = os.waitid(os.P_PID, pid, os.WEXITED)
    st = r.si_status
print("reaped", pid, st, flush=True)
sys.stdin.readline()
"""


def _start(ctx, mode, reap):
    s = ctx.session()
    script = os.path.join(ctx.tmp, "parent.py")
    with open(script, "w") as f:
        f.write(PARENT)
    p = subprocess.Popen([srvlib.python3(), script, mode, reap],
                         env=ctx.env(session=s, extra={"SOCKSHIM_FOLLOW": "0"}),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=ctx.tmp, start_new_session=True)
    ctx._procs.append(p)
    p.out_files = ()
    port = int(p.stdout.readline().split()[1])
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    words = p.stdout.readline().split()
    assert words[0] == b"child", words
    return s, p, c, int(words[1]), int(words[3])


def _closes(ctx, s, pid):
    return [e for e in ctx.events(s) if e["type"] == "close" and e["pid"] == pid]


def _reaped(ctx, s, p, child, mode, reap, via):
    if mode == "kill":
        os.kill(child, signal.SIGKILL)
    else:
        os.kill(child, signal.SIGUSR1)  # its handler execs sh, which exits
    deadline = time.monotonic() + 15
    while lib.alive(child):
        assert time.monotonic() < deadline, "child %d still alive" % child
        time.sleep(0.02)
    # The child is a zombie until its parent reaps it: its holds are
    # still counted (the shim cannot know yet).
    led = raw_ledger(ctx, s)
    assert {t for t in led.holder_set() if t[0] == child}, "the child's holds went early"
    p.stdin.write(b"\n")
    p.stdin.flush()
    words = p.stdout.readline().split()
    assert words[:2] == [b"reaped", str(child).encode()], words
    led = raw_ledger(ctx, s)
    assert not {t for t in led.holder_set() if t[0] == child}, (
        "%s of a child that %s: holds left %s" % (reap, mode, sorted(led.holder_set())))
    closes = _closes(ctx, s, child)
    assert closes and all(c["via"] == via for c in closes), closes
    return led, closes


def _case(ctx, mode, reap, via):
    s, p, c, child, conn_fd = _start(ctx, mode, reap)
    try:
        led, closes = _reaped(ctx, s, p, child, mode, reap, via)
        # The connection the child accepted: released with it, 1 -> 0.
        conn = [x for x in closes if x["fd"] == conn_fd]
        assert len(conn) == 1 and (conn[0]["refs_before"], conn[0]["refs_after"]) == (1, 0), \
            closes
        assert conn[0]["released"], conn
        ino = conn[0]["inode"]
        assert led.socks[ino]["refs"] == 0, led.socks[ino]
        # The listener: the parent still holds it, exactly.
        truth = proc_set([p.pid])
        held = {ino: e for ino, e in led.socks.items() if e["refs"] > 0}
        assert set(held) == {t[2] for t in truth}, (held, truth)
        assert all(e["refs"] == len(e["holders"]) for e in held.values()), held
        assert led.holder_set() == truth, (sorted(led.holder_set()), sorted(truth))
    finally:
        c.close()
        p.kill()
        p.wait()


def test_reap_killed_child_waitpid(ctx):
    _case(ctx, "kill", "waitpid", "death")


def test_reap_killed_child_wait4(ctx):
    _case(ctx, "kill", "wait4", "death")


def test_reap_killed_child_waitid(ctx):
    _case(ctx, "kill", "waitid", "death")


def test_reap_unseen_exit(ctx):
    # The child execs a program the shim does not follow, which exits:
    # no exit hook ran in the process that held the sockets.
    _case(ctx, "rawexit", "waitpid", "exit")


# A parent that ignores SIGCHLD (the kernel reaps its children: no wait
# call for the shim to see) forks children that hold the listener and a
# connection each, and are killed; then new processes start in the session.
IGNORER = r"""
import os, signal, socket, sys, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
n = int(sys.argv[1])
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(64)
print("port", ls.getsockname()[1], flush=True)
for i in range(n):
    if os.fork() == 0:
        c, _ = ls.accept()
        os.write(1, b"child %d\n" % os.getpid())  # one write: lines whole
        time.sleep(60)
        os._exit(0)
sys.stdin.readline()
"""


def test_reap_sigchld_ignored_swept(ctx):
    """Children of a parent that ignores SIGCHLD, killed: no one reaps them
    through a wait the shim sees, so the sweep releases them: every process
    that starts looks at the next 16 entries of the process table
    (kill(pid, 0)), from a cursor the starts share. After 300 short
    processes (the table's 4,096 entries covered, whatever pids they got:
    with a cursor per pid, other processes taking pids in between left
    entries unswept), their
    holds are gone, each with its close record via death, and the ledger is
    /proc again."""
    n = 20
    s = ctx.session()
    script = os.path.join(ctx.tmp, "ignorer.py")
    with open(script, "w") as f:
        f.write(IGNORER)
    p = subprocess.Popen([srvlib.python3(), script, str(n)], env=ctx.env(session=s),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=ctx.tmp, start_new_session=True)
    ctx._procs.append(p)
    p.out_files = ()
    try:
        port = int(p.stdout.readline().split()[1])
        conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
        children = [int(p.stdout.readline().split()[1]) for _ in range(n)]
        for c in children:
            os.kill(c, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while any(os.path.exists("/proc/%d" % c) for c in children):
            assert time.monotonic() < deadline, "children not gone"
            time.sleep(0.02)
        led = raw_ledger(ctx, s)
        ghosts = {t for t in led.holder_set() if t[0] in children}
        assert len(ghosts) == 2 * n, "before the sweep: %d holds of the dead" % len(ghosts)
        # Other processes take pids in between (as on a busy host): an
        # unpreloaded one after each start.
        bare = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        for _ in range(300):
            r = subprocess.run(["/bin/true"], env=ctx.env(session=s), timeout=30)
            assert r.returncode == 0
            subprocess.run(["/bin/true"], env=bare, timeout=30, check=True)
        led = raw_ledger(ctx, s)
        left = {t for t in led.holder_set() if t[0] in children}
        assert not left, "holds of dead children left after the sweep: %s" % sorted(left)[:5]
        assert led.holder_set() == proc_set([p.pid]), (sorted(led.holder_set()),
                                                       sorted(proc_set([p.pid])))
        closes = [e for e in ctx.events(s) if e["type"] == "close" and e["pid"] in children]
        assert len(closes) == 2 * n and all(e["via"] == "death" for e in closes), closes[:3]
        conn = [e for e in closes if not e["listener"]]
        assert len(conn) == n and all(e["released"] for e in conn), conn[:3]
    finally:
        for c in conns:
            c.close()
        p.kill()
        p.wait()
