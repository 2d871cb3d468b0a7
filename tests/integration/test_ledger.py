"""The reference ledger is exact: after every step of a scripted process
tree (tests/progs/refexact.c: fork, dup in threads, exec with and without
close-on-exec, SCM_RIGHTS, close_range, kill -9, _exit, closes in a seeded
random order), the set of (pid, fd, inode) the ledger holds for live
processes equals what /proc/PID/fd shows, through the segment itself and
through `sockshim holders --json`. Also: 10,000 forks beside socket-churning
threads (tests/progs/forkstorm.c), holder and ledger overflow, a segment
unlinked under a running server, and a dead holder's pid."""

import os
import random
import re
import signal
import socket
import subprocess
import time

import lib
import ledgerlib
from ledgerlib import Actors, proc_set, raw_ledger

SEED = int(os.environ.get("SOCKSHIM_TEST_SEED", "20261121"))


class Checker:
    """Compares the ledger with /proc after each step. STALE: the (pid, fd,
    inode) the ledger must still list for processes that died without the
    shim seeing it (kill -9, _exit); each is then flagged stale by the
    command."""

    def __init__(self, ctx, session, actors):
        self.ctx, self.session, self.actors = ctx, session, actors
        self.stale = set()
        # Inodes the ledger may not know yet: socket() and socketpair() leave
        # the inode unknown until the socket first matters (bind, connect,
        # listen, dup, fork...), a cost the shim saves on the hot path. Once
        # the ledger has one, it must be exact about it.
        self.lazy = set()
        self.steps = 0
        self.use_cmd = ledgerlib.subcommand_ready(ctx, "holders")
        self.last = None

    def truth(self):
        return proc_set(self.actors.live_pids())

    def died(self, aid, before):
        """Actor AID died unseen: what it held BEFORE becomes stale."""
        pid = self.actors.pids[aid]
        self.stale |= {t for t in before if t[0] == pid}

    def check(self, what):
        self.steps += 1
        a = self.actors
        truth = self.truth()
        # Nothing else runs in the tree (a process we do not know of would
        # hold sockets the comparison ignores).
        if 0 not in a.dead:
            extra = set(ledgerlib.descendants(a.pids[0])) - a.live_pids()
            assert not extra, "step %d (%s): unknown processes in the tree: %s" % (
                self.steps, what, extra)
        led = raw_ledger(self.ctx, self.session)
        self.lazy -= set(led.socks)
        truth = {t for t in truth if t[2] not in self.lazy}
        live, dead = set(), set()
        for t in led.holder_set():
            (live if lib.alive(t[0]) else dead).add(t)
        if live != truth or dead != self.stale:
            raise AssertionError(
                "step %d (%s): ledger != /proc\n  only in the ledger: %s\n"
                "  only in /proc: %s\n  stale in the ledger: %s\n  expected stale: %s"
                % (self.steps, what, sorted(live - truth), sorted(truth - live),
                   sorted(dead), sorted(self.stale)))
        # The reference count is the number of holders, dead ones included
        # (the shim cannot see kill -9), and nothing overflowed.
        for ino, e in led.socks.items():
            assert e["refs"] == len(e["holders"]) and e["holder_overflow"] == 0, (
                "step %d (%s): inode %d refs %d, %d holders %s, overflow %d"
                % (self.steps, what, ino, e["refs"], len(e["holders"]), e["holders"],
                   e["holder_overflow"]))
        h = led.header
        assert (h["ledger_full"], h["holder_overflow"]) == (0, 0), h
        if self.use_cmd:
            self.check_command(what, truth)
        self.last = led
        return led

    def check_command(self, what, truth):
        objs = ledgerlib.holders_json(self.ctx, self.session)
        live, stale, other = set(), set(), []
        for o in objs:
            for hd in o["holders"]:
                t = (hd["pid"], hd["fd"], o["inode"])
                if hd["stale"]:
                    stale.add(t)
                    assert hd["source"] == "ledger", (what, o)
                elif hd["source"] == "ledger+proc":
                    live.add(t)
                else:
                    other.append((t, hd["source"]))
        if live != truth or stale != self.stale or other:
            raise AssertionError(
                "step %d (%s): sockshim holders --json != /proc\n  only in holders: %s\n"
                "  only in /proc: %s\n  stale: %s (expected %s)\n  other sources: %s"
                % (self.steps, what, sorted(live - truth), sorted(truth - live), sorted(stale),
                   sorted(self.stale), other))


def holder(led, pid, fd):
    """The ledger holder PID/FD: (inode, holder dict)."""
    for ino, e in led.socks.items():
        for hd in e["holders"]:
            if (hd["pid"], hd["fd"]) == (pid, fd):
                return ino, hd
    raise AssertionError("the ledger has no holder pid %d fd %d" % (pid, fd))


def test_ledger_exact(ctx):
    s = ctx.session()
    a = Actors(ctx, s)
    ck = Checker(ctx, s, a)
    rng = random.Random(SEED)
    try:
        p0 = a.pids[0]
        lfd, port = a.cmd(0, "listen")
        (cfd,) = a.cmd(0, "connect %d" % port)
        (afd,) = a.cmd(0, "accept %d" % lfd)
        sp0, sp1 = a.cmd(0, "socketpair")
        ck.lazy = {i for _, fd, i in ck.truth() if fd in (sp0, sp1)}
        led = ck.check("setup: listener, client, accepted, socketpair")
        a.cmd(0, "dup %d" % sp0)
        a.cmd(0, "dup %d" % sp1)
        led = ck.check("dup of each end of the socketpair")
        assert not ck.lazy, "the socketpair is still not in the ledger after a dup"
        a.cmd(0, "close 8")
        a.cmd(0, "close 9")
        led = ck.check("close of the dups")
        assert (lfd, cfd, afd, sp0, sp1) == (3, 4, 5, 6, 7), (lfd, cfd, afd, sp0, sp1)
        ino = {n: holder(led, p0, fd)[0] for n, fd in
               (("L", lfd), ("C", cfd), ("A", afd), ("P0", sp0), ("P1", sp1))}
        born = {n: led.socks[i]["born_name"] for n, i in ino.items()}
        assert born == {"L": "socket", "C": "connect", "A": "accept", "P0": "socketpair",
                        "P1": "socketpair"}, born

        # Threads dup together: each of three threads dup()s one socket and
        # F_DUPFD_CLOEXEC's it at 40 or above.
        tdups = a.cmd(0, "tdup %d %d %d" % (lfd, cfd, afd))
        led = ck.check("tdup in three threads")
        for k, orig in enumerate((lfd, cfd, afd)):
            for nfd in tdups[2 * k:2 * k + 2]:
                i, hd = holder(led, p0, nfd)
                assert (i, hd["how"], hd["from_fd"]) == (holder(led, p0, orig)[0], "dup", orig)
        a.cmd(0, "dup2 %d 20" % afd)
        a.cmd(0, "dup3 %d 21" % cfd)
        a.cmd(0, "dupfd %d 30" % lfd)
        ck.check("dup2, dup3, F_DUPFD")
        a.cmd(0, "dup2 %d 20" % cfd)  # over a tracked descriptor: drops A's copy
        led = ck.check("dup2 over a tracked descriptor")
        assert holder(led, p0, 20)[0] == ino["C"]
        a.cmd(0, "tclose " + " ".join(map(str, tdups)))
        ck.check("tclose of six dups in six threads")
        a.cmd(0, "closerange 20 39")
        ck.check("close_range 20..39")

        # Three children inherit everything.
        for k in (1, 2, 3):
            a.fork(0, k)
            led = ck.check("fork child %d" % k)
            for fd in (lfd, cfd, afd, sp0, sp1):
                _, hd = holder(led, a.pids[k], fd)
                assert (hd["how"], hd["from_pid"], hd["from_fd"]) == ("fork", p0, fd), hd

        # Child 1: dups in threads, closes them in threads, forks child 4.
        d1 = a.cmd(1, "tdup %d" % afd)
        ck.check("child 1 tdup")
        a.cmd(1, "tclose " + " ".join(map(str, d1)))
        ck.check("child 1 tclose")
        a.fork(1, 4)
        led = ck.check("child 1 forks child 4")
        _, hd = holder(led, a.pids[4], afd)
        assert (hd["how"], hd["from_pid"]) == ("fork", a.pids[1]), hd

        # Child 2: close_range(CLOEXEC) marks 5.., exec drops them; then a
        # plain close_range.
        a.cmd(2, "closerangecx %d 99" % afd)
        ck.check("child 2 close_range CLOEXEC")
        a.exec(2)
        led = ck.check("child 2 exec after close_range CLOEXEC")
        for fd in (lfd, cfd):
            assert holder(led, a.pids[2], fd)[1]["how"] == "exec"
        a.cmd(2, "closerange %d 99" % cfd)
        ck.check("child 2 close_range")

        # Child 3: close-on-exec on L and on a dup3, a plain F_DUPFD kept;
        # exec twice.
        a.cmd(3, "cloexec %d 1" % lfd)
        a.cmd(3, "dup3 %d 21" % cfd)
        a.cmd(3, "dupfd %d 30" % afd)
        ck.check("child 3 cloexec, dup3, F_DUPFD")
        a.exec(3)
        led = ck.check("child 3 exec")
        for fd in (cfd, afd, 30, sp0, sp1):
            assert holder(led, a.pids[3], fd)[1]["how"] == "exec", fd
        a.exec(3)
        ck.check("child 3 exec again")

        # SCM_RIGHTS: the parent sends A and L to child 3 ...
        a.cmd(0, "send %d %d %d" % (sp0, afd, lfd))
        ck.check("A and L in flight")
        got = a.cmd(3, "recv %d" % sp1)
        led = ck.check("child 3 received A and L")
        assert len(got) == 2
        for fd, name in zip(got, ("A", "L")):
            i, hd = holder(led, a.pids[3], fd)
            assert (i, hd["how"], hd["from_pid"]) == (ino[name], "scm", p0), (name, hd)
        # ... and child 3 connects, sends its new socket to the parent.
        (xfd,) = a.cmd(3, "connect %d" % port)
        (yfd,) = a.cmd(0, "accept %d" % lfd)
        ck.check("child 3 connects, parent accepts")
        a.cmd(3, "send %d %d" % (sp1, xfd))
        (xin0,) = a.cmd(0, "recv %d" % sp0)
        led = ck.check("parent received child 3's socket")
        xi, hd = holder(led, p0, xin0)
        assert hd["how"] == "scm" and led.socks[xi]["born_pid"] == a.pids[3], (hd, led.socks[xi])
        a.cmd(3, "close %d" % xfd)
        ck.check("child 3 closes its copy of the sent socket")

        # Deaths the shim cannot see: kill -9, _exit.
        before = ck.truth()
        a.kill9(4)
        ck.died(4, before)
        ck.check("kill -9 child 4")
        before = ck.truth()
        a.exit(1, "_exit")
        ck.died(1, before)
        ck.check("_exit child 1")
        a.exit(2, "exit")
        ck.check("exit child 2 (atexit drops its holders)")

        # Everything left, closed in a seeded random order: a batch in
        # threads first, then one by one.
        left = sorted(ck.truth())
        rng.shuffle(left)
        print("    seed %d: %d descriptors to close" % (SEED, len(left)))
        batch = [t for t in left if t[0] == p0][:3]
        a.cmd(0, "tclose " + " ".join(str(t[1]) for t in batch))
        ck.check("tclose of %s" % [t[1] for t in batch])
        for pid, fd, i in left:
            if (pid, fd, i) in batch:
                continue
            aid = [k for k, p in a.pids.items() if p == pid][0]
            a.cmd(aid, "close %d" % fd)
            ck.check("actor %d closes fd %d (inode %d)" % (aid, fd, i))
        a.exit(3)
        a.exit(0)
        led = ck.check("all exited")
        print("    %d steps compared" % ck.steps)

        # Close events: refs before/after follow the ledger; a socket whose
        # holders all closed was released by exactly one close, its last.
        evs = ctx.events(s)
        stale_inodes = {t[2] for t in ck.stale}
        for i, e in led.socks.items():
            closes = [c for c in evs if c["type"] == "close" and c["inode"] == i]
            for c in closes:
                assert c["refs_before"] is not None and c["refs_after"] == c["refs_before"] - 1 \
                    and c["released"] == (c["refs_after"] == 0), c
            rel = [c for c in closes if c["released"]]
            if i in stale_inodes:
                assert not rel and e["refs"] > 0, (i, rel, e["refs"])
            elif closes and e["refs"] == 0:
                assert len(rel) == 1 and rel[0] is closes[-1], (i, rel, closes[-3:])
    finally:
        a.close()


# ---------------------------------------------------------------------------
# 10,000 forks beside socket-churning threads.

FORKSTORM = 10000


def wait_line(ctx, proc, pattern, timeout):
    """The first match of PATTERN in PROC's stdout, waiting at most
    TIMEOUT; fails early if PROC exits."""
    deadline = time.monotonic() + timeout
    while True:
        out, err = ctx.output(proc)
        m = re.search(pattern, out, re.M)
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s before %r; stdout %r; stderr %s" % (
                proc.args[0], proc.returncode, pattern, out[-500:], err[-1500:]))
        if time.monotonic() > deadline:
            raise AssertionError("no %r from %s within %.0fs (deadlock?); stdout %r" % (
                pattern, proc.args[0], timeout, out[-500:]))
        time.sleep(0.05)


def forkstorm(ctx, modes):
    """forkstorm with children ending as MODES says (see forkstorm.c); at
    its ready point, the ledger's holders of its live processes must be
    what /proc shows, in the segment and through `sockshim holders`.
    Returns the raw ledger, the tree's pids and the truth."""
    s = ctx.session()
    proc = ctx.spawn([ctx.prog("forkstorm"), str(FORKSTORM), modes], session=s, name="forkstorm")
    try:
        t0 = time.monotonic()
        m = wait_line(ctx, proc, r"^forks (\d+) failures (\d+) iterations (\d+) "
                                 r"threads-failed (\d+)$", 100)
        forks, failures, iterations, bad = map(int, m.groups())
        m = wait_line(ctx, proc, r"^ready (\d+)((?: \d+)*)$", 20)
        print("    modes %s: %d forks, %d thread iterations in %.1fs" % (
            modes, forks, iterations, time.monotonic() - t0))
        assert (forks, failures, bad) == (FORKSTORM, 0, 0), (forks, failures, bad)
        assert iterations > 0
        main = int(m.group(1))
        late = [int(p) for p in m.group(2).split()]
        assert main == proc.pid and len(late) == 2, (main, late, proc.pid)
        tree = set(ledgerlib.descendants(main))
        assert tree == {main} | set(late), "processes in forkstorm's tree: %s" % tree
        truth = proc_set(tree)
        # main: listener, one connection's two ends, a socketpair; each
        # late child inherited the five.
        assert len(truth) == 15 and len({t[2] for t in truth}) == 5, sorted(truth)

        led = raw_ledger(ctx, s)
        h = led.header
        dead = [t for t in led.holder_set() if not lib.alive(t[0])]
        print("    ledger: %d entries (%d with refs), %d holders of dead processes; "
              "ledger_full %d, holder_overflow %d, reclaimed %d" % (
                  len(led.socks), sum(1 for e in led.socks.values() if e["refs"] > 0), len(dead),
                  h["ledger_full"], h["holder_overflow"], h["ledger_reclaimed"]))
        mine = {t for t in led.holder_set() if t[0] in tree}
        assert mine == truth, ("ledger != /proc for forkstorm's live processes\n"
                               "  only in the ledger: %s\n  only in /proc: %s"
                               % (sorted(mine - truth), sorted(truth - mine)))
        if ledgerlib.subcommand_ready(ctx, "holders"):
            got = set()
            for o in ledgerlib.holders_json(ctx, s, ["--pid", str(main)]):
                for hd in o["holders"]:
                    if hd["pid"] in tree:
                        assert hd["source"] == "ledger+proc" and not hd["stale"], (o["inode"], hd)
                        got.add((hd["pid"], hd["fd"], o["inode"]))
            assert got == truth, ("sockshim holders --pid %d != /proc\n  only in holders: %s\n"
                                  "  only in /proc: %s" % (main, sorted(got - truth),
                                                           sorted(truth - got)))
        os.kill(main, signal.SIGUSR1)
        assert proc.wait(timeout=30) == 0, ctx.output(proc)[1][-2000:]
        out, err = ctx.output(proc)
        assert not lib.sockshim_lines(err), lib.sockshim_lines(err)
        return led, tree, truth
    finally:
        lib.stop(proc)


def test_ledger_forkstorm(ctx):
    """Children that end by exit(): every reference is seen going, so the
    ledger holds nothing more than /proc, and each socket's count is its
    holders (a reference reserved for a child that never took it would
    keep a closed socket "held" for ever, and its last close would say
    "no effect")."""
    led, tree, truth = forkstorm(ctx, "123")
    bad = {i: (e["refs"], e["holders"]) for i, e in led.socks.items()
           if e["refs"] != len(e["holders"])}
    assert not bad, "%d entries whose refs are not their holders, e.g. %s" % (
        len(bad), sorted(bad.items())[:3])
    h = led.header
    assert (h["holder_overflow"], h["ledger_full"]) == (0, 0), h


def test_ledger_forkstorm_exit_unseen(ctx):
    """A quarter of the children _exit(): the shim never sees their
    references go. The ledger may keep them (the command flags them
    stale), but the holders of the live processes must still be exact."""
    forkstorm(ctx, "0123")
