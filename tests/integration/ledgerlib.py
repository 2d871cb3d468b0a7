"""Helpers of test_ledger.py and test_closewait.py: `sockshim holders` and
`sockshim closewait` through the command, a bounded wait, and the actors of
tests/progs/refexact.c. The ledger read straight from the segment is
segment.raw_ledger; the truth from /proc/PID/fd is lib.proc_set.
"""

import os
import re
import select
import signal
import time

import lib

# How long the tests wait for a state they expect.
WAIT = 15.0

# ---------------------------------------------------------------------------
# The command.


def holders_json(ctx, session, args=()):
    r = lib.tool(ctx, ["holders", "--session", session, "--json"] + list(args))
    return lib.json_lines(r.stdout, "sockshim holders --json")


def closewait_json(ctx, session, args=()):
    r = lib.tool(ctx, ["closewait", "--session", session, "--json"] + list(args))
    return lib.json_lines(r.stdout, "sockshim closewait --json")


# ---------------------------------------------------------------------------
# tests/progs/refexact.c: a tree of processes ("actors") driven by command.

class Actors:
    """Actor 0 is refexact started under the preload in session SESSION;
    cmd(ID, LINE) sends one command to actor ID and returns the words of its
    `ok` answer. Every read is bounded. close() kills the whole tree (one
    process group)."""

    REPLY_WAIT = 20.0

    def __init__(self, ctx, session, extra_env=None, name="refexact"):
        self.ctx = ctx
        self.dir = os.path.join(ctx.tmp, "actors")
        os.mkdir(self.dir)
        self.fds = {}
        self.bufs = {}
        self.pids = {}
        self.dead = set()  # actor ids whose process is gone
        self._fifos(0)
        self.proc = ctx.spawn([ctx.prog("refexact"), self.dir, "0"], session=session,
                              extra_env=extra_env, name=name)
        self.pgid = self.proc.pid
        self.pids[0] = self._ready(0)
        assert self.pids[0] == self.proc.pid, (self.pids, self.proc.pid)

    def _fifos(self, aid):
        for kind in ("cmd", "rep"):
            p = os.path.join(self.dir, "%d.%s" % (aid, kind))
            os.mkfifo(p, 0o600)
            self.fds[(aid, kind)] = os.open(p, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.bufs[aid] = b""

    def _line(self, aid, what):
        deadline = time.monotonic() + self.REPLY_WAIT
        fd = self.fds[(aid, "rep")]
        while b"\n" not in self.bufs[aid]:
            left = deadline - time.monotonic()
            if left <= 0:
                out, err = self.ctx.output(self.proc)
                raise AssertionError("actor %d: no answer to %r within %.0fs; stderr: %s"
                                     % (aid, what, self.REPLY_WAIT, err[-1500:]))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                try:
                    self.bufs[aid] += os.read(fd, 4096)
                except BlockingIOError:
                    pass
        line, _, rest = self.bufs[aid].partition(b"\n")
        self.bufs[aid] = rest
        return line.decode()

    def _ready(self, aid):
        line = self._line(aid, "start")
        m = re.fullmatch(r"ready (\d+)", line)
        assert m, "actor %d: expected 'ready PID', got %r" % (aid, line)
        return int(m.group(1))

    def cmd(self, aid, line):
        os.write(self.fds[(aid, "cmd")], (line + "\n").encode())
        ans = self._line(aid, line)
        assert ans.startswith("ok"), "actor %d: %r answered %r" % (aid, line, ans)
        return [int(w) for w in ans.split()[1:]]

    def fork(self, parent, child):
        self._fifos(child)
        (pid,) = self.cmd(parent, "fork %d" % child)
        got = self._ready(child)
        assert got == pid, "actor %d says pid %d, its parent said %d" % (child, got, pid)
        self.pids[child] = pid
        return pid

    def exec(self, aid):
        """Re-exec actor AID; returns once the new image is ready."""
        os.write(self.fds[(aid, "cmd")], b"exec\n")
        got = self._ready(aid)
        assert got == self.pids[aid], "exec changed the pid: %d -> %d" % (self.pids[aid], got)

    def kill9(self, aid):
        pid = self.pids[aid]
        os.kill(pid, signal.SIGKILL)
        self._gone(aid)

    def exit(self, aid, how="exit"):
        self.cmd(aid, how)
        self._gone(aid)

    def _gone(self, aid):
        pid = self.pids[aid]
        lib.wait_for(lambda: not lib.alive(pid), "actor %d (pid %d) to end" % (aid, pid))
        if aid == 0:
            self.proc.wait(timeout=WAIT)
        self.dead.add(aid)

    def live_pids(self):
        return {p for a, p in self.pids.items() if a not in self.dead}

    def close(self):
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}
