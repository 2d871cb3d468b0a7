"""Every holder and creator named, and the words exact (issue 12, points 8
and 10): a socket whose creator has left its history (the creator exited,
then more than SOCKSHIM_STEPS steps by another process) is still shown as
created by its process name, not "?"; the sockets of a program the shim is
not loaded in are named from /proc, not said to be none. Loopback, bounded,
every process stopped by its pid."""

import json
import os
import subprocess
import time

import lib
import srvlib
from lib import tool

# The creator makes a listener, forks and exits; once it is gone, its
# child dups and closes the listener 20 times (40 steps) and sleeps.
CREATOR = r"""
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
parent = os.getpid()
if os.fork():
    os._exit(0)
for _ in range(1000):
    if os.getppid() != parent:
        break
    time.sleep(0.01)
for i in range(20):
    os.close(os.dup(s.fileno()))
print(parent, os.getpid(), s.fileno(), s.getsockname()[1], flush=True)
time.sleep(120)  # until the test stops it
"""


def test_named_creator_out_of_history(ctx):
    s = ctx.session()
    proc = ctx.spawn([srvlib.python3(), "-c", CREATOR], session=s, name="creator",
                     valgrind=False)
    deadline = time.monotonic() + 20
    while not ctx.output(proc)[0].strip():
        assert time.monotonic() < deadline, ctx.output(proc)
        time.sleep(0.05)
    parent, child, fd, port = map(int, ctx.output(proc)[0].split())
    try:
        assert lib.wait_gone([parent]) == []
        objs = [json.loads(l) for l in
                tool(ctx, ["holders", "--session", s, "--json"]).stdout.splitlines()]
        mine = [o for o in objs if o.get("local") == "127.0.0.1:%d" % port]
        assert len(mine) == 1, objs
        o = mine[0]
        # The creator has no step left in the history ...
        assert o["history_lost"] is True, o
        # ... and is named all the same, as its steps named it.
        assert (o["born"]["pid"], o["born"]["comm"]) == (parent, "python3"), o["born"]
        assert [(h["pid"], h["fd"], h["comm"]) for h in o["holders"]] == \
            [(child, fd, "python3")], o["holders"]
        text = tool(ctx, ["holders", "--session", s]).stdout
        assert "  born: created by python3 %d fd %d at " % (parent, fd) in text, text
        assert "? %d" % parent not in text, text
    finally:
        for p in (child, parent):
            if lib.alive(p):
                lib.stop_pid(p, grace=2.0)


def _static_listener(ctx):
    """tests/progs/listen_sleep.c linked statically: the shim cannot be
    loaded in it (no dynamic loader). Skip without libc.a."""
    static = os.path.join(ctx.tmp, "listen_sleep-static")
    cc = os.environ.get("CC", "cc")
    libc_a = subprocess.run([cc, "-print-file-name=libc.a"], stdout=subprocess.PIPE,
                            timeout=30).stdout.decode().strip()
    if not os.path.isabs(libc_a):
        raise lib.Skip("no libc.a to link a static program with (libc6-dev)")
    r = subprocess.run([cc, "-static", "-O1", "-o", static,
                        os.path.join(ctx.root, "tests/progs/listen_sleep.c")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, "cc -static listen_sleep.c: %s" % r.stdout.decode()[-1500:]
    return static


def test_named_unrecorded_static_listener(ctx):
    """A program the shim is not loaded in (static, as a Go program is)
    listens under `sockshim run`: the ledger and the listener table have
    nothing, and holders and stats say that its sockets were not recorded,
    naming them from /proc and the kernel, instead of "no socket is held
    now" and "no listener yet"."""
    prog = _static_listener(ctx)
    s = ctx.session()
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--", prog, "60"], preload=False,
                    extra_env=srvlib.run_env(ctx), name="static")
    deadline = time.monotonic() + 20
    while not ctx.output(run)[0].strip():
        assert run.poll() is None and time.monotonic() < deadline, ctx.output(run)
        time.sleep(0.05)
    fd, port = map(int, ctx.output(run)[0].split())
    pid = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid][0]
    inode = lib.socket_inodes(pid)[fd]
    try:
        text = tool(ctx, ["holders", "--session", s]).stdout
        assert text == (
            'No socket is in the ledger of session "%s", but /proc shows 1 socket descriptor '
            "held by its processes, which the shim did not record (it is not loaded in them: "
            "a static, set-user-ID or Go program, or one that removed LD_PRELOAD):\n"
            "  listen_sleep-st %d fd %d socket:[%d] LISTEN 127.0.0.1:%d\n"
            % (s, pid, fd, inode, port)), text
        said = ('No listener is recorded in session "%s", but its processes hold 1 listening '
                "socket that the shim did not record (it is not loaded in them: a static, "
                "set-user-ID or Go program, or one that removed LD_PRELOAD); their accepts "
                "are not counted:\n  LISTEN 127.0.0.1:%d  listen_sleep-st %d fd %d\n"
                % (s, port, pid, fd))
        assert tool(ctx, ["stats", "--session", s]).stdout == said
        r = tool(ctx, ["stats", "--session", s, "--json"])
        assert (r.stdout, r.stderr) == ("", said), (r.stdout, r.stderr)
    finally:
        srvlib.reap(run, [pid])
