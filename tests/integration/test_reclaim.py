"""References the shim could not see go are reclaimed by the commands that
read the ledger: tests/progs/rawclose.c closes accepted connections with a
raw `syscall` instruction (inline assembly), so the ledger keeps refs 1 for
each until a command proves the socket freed (absent from the kernel's
sock_diag dumps, no descriptor in /proc) and releases it with one close
record via gone. A socket the kernel still has (in flight over
SCM_RIGHTS) or that a live process without the shim holds is not
reclaimed."""

import os
import socket
import subprocess

import ledgerlib
import lib
import segment

CONNS = 12
WAIT = 20.0


def _start(ctx, session, args, extra_env=None):
    proc = ctx.spawn([ctx.prog("rawclose"), ctx.tmp] + args, session=session,
                     extra_env=extra_env, name="rawclose")
    return proc


def _lines(ctx, proc, word, what):
    """rawclose's stdout lines once it has said WORD."""
    def said():
        out, _ = ctx.output(proc)
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s: %s" % (what, proc.returncode,
                                                            ctx.output(proc)[1][-1500:]))
        return word in out.splitlines()
    lib.wait_for(said, "%s to say %s" % (what, word), timeout=WAIT)
    return [line.split() for line in ctx.output(proc)[0].splitlines()]


def _port(ctx, proc):
    lib.wait_for(lambda: any(l.startswith("listener ")
                             for l in ctx.output(proc)[0].splitlines()),
                 "rawclose's listener", timeout=WAIT)
    for line in ctx.output(proc)[0].splitlines():
        if line.startswith("listener "):
            return int(line.split()[1])
    raise AssertionError("no listener line")


def _closes(evs, inode):
    return [e for e in evs if e["type"] == "close" and e.get("inode") == inode]


def _raw_close_case(ctx, command, conns_n=CONNS, together=1):
    session = ctx.session()
    proc = _start(ctx, session, ["accept", str(conns_n)])
    port = _port(ctx, proc)
    clients = []
    for _ in range(conns_n):
        c = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        clients.append(c)
    words = _lines(ctx, proc, "ready", "rawclose")
    conns = {int(w[2]): int(w[3]) for w in words if w and w[0] == "conn"}
    assert len(conns) == conns_n, words
    for c in clients:
        c.close()

    # The shim saw the accepts, not the closes: every connection is held.
    led = segment.raw_ledger(ctx, session)
    for ino, fd in conns.items():
        e = led.socks.get(ino)
        assert e is not None, "accepted inode %d not in the ledger" % ino
        assert e["refs"] == 1 and [(h["pid"], h["fd"]) for h in e["holders"]] == \
            [(proc.pid, fd)], (ino, e["refs"], e["holders"])
    assert not any(_closes(ctx.events(session), ino) for ino in conns)

    # TOGETHER commands at once: each release happens once whoever wins.
    runs = [subprocess.Popen([ctx.tool, command, "--session", session],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=ctx.env(preload=False)) for _ in range(together)]
    for r in runs:
        _, err = r.communicate(timeout=60)
        assert r.returncode == 0, err

    led = segment.raw_ledger(ctx, session)
    evs = ctx.events(session)
    for ino in conns:
        e = led.socks.get(ino)
        assert e is not None and e["refs"] == 0 and not e["holders"], (ino, e)
        closes = _closes(evs, ino)
        assert len(closes) == 1, (ino, closes)
        c = closes[0]
        assert (c["via"], c["pid"], c["fd"], c["refs_before"], c["refs_after"]) == \
            ("gone", proc.pid, conns[ino], 1, 0), c
    held = [ino for ino, e in led.socks.items() if e["refs"] > 0]
    listener = [ino for ino, e in led.socks.items() if e["listener"]]
    assert held == listener and len(listener) == 1, (held, listener)

    # Once only: a second command finds nothing more to release.
    lib.tool(ctx, ["holders", "--session", session])
    evs = ctx.events(session)
    assert all(len(_closes(evs, ino)) == 1 for ino in conns)
    open(os.path.join(ctx.tmp, "go"), "w").close()
    assert proc.wait(timeout=WAIT) == 0


def test_reclaim_raw_close_holders(ctx):
    """`holders` reclaims connections closed by raw system calls."""
    _raw_close_case(ctx, "holders")


def test_reclaim_raw_close_conns(ctx):
    """`conns` does, from its own settled dump."""
    _raw_close_case(ctx, "conns")


def test_reclaim_raw_close_closewait(ctx):
    """`closewait` does, asking the kernel again only for its candidates."""
    _raw_close_case(ctx, "closewait")


def test_reclaim_concurrent_commands(ctx):
    """Three `holders` at once over 60 connections closed raw: each
    connection gets exactly one close record via gone, none twice."""
    _raw_close_case(ctx, "holders", conns_n=60, together=3)


def test_reclaim_not_in_flight(ctx):
    """A connection in flight over SCM_RIGHTS (no descriptor holds it, the
    kernel still has it) keeps its reference."""
    session = ctx.session()
    proc = _start(ctx, session, ["inflight"])
    port = _port(ctx, proc)
    c = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    words = _lines(ctx, proc, "ready", "rawclose")
    ino = [int(w[1]) for w in words if w and w[0] == "inflight"][0]
    for command in ("holders", "conns", "closewait"):
        lib.tool(ctx, [command, "--session", session])
    e = segment.raw_ledger(ctx, session).socks.get(ino)
    assert e is not None and e["refs"] == 1, e
    assert not _closes(ctx.events(session), ino)
    c.close()
    open(os.path.join(ctx.tmp, "go"), "w").close()
    assert proc.wait(timeout=WAIT) == 0


def test_reclaim_not_held_unshimmed(ctx):
    """A bound TCP socket (sock_diag lists none such) kept by a child that
    runs without the shim, after the parent's raw close: /proc shows the
    child holding it, so nothing of it is reclaimed."""
    session = ctx.session()
    proc = _start(ctx, session, ["unshimmed"], extra_env={"SOCKSHIM_FOLLOW": "0"})
    words = _lines(ctx, proc, "ready", "rawclose")
    ino, child = [(int(w[1]), int(w[2])) for w in words if w and w[0] == "bound"][0]
    lib.wait_for(lambda: lib.comm(child) == "sleep", "the child to exec sleep", timeout=WAIT)
    assert ino in lib.socket_inodes(child).values()
    # Named otherwise in /proc than in the process table, without
    # libsockshim.so in its maps: it runs without the shim (found by the
    # reader, and recorded in the table as found from /proc: 2; the exec
    # wrapper could not know).
    assert segment.raw_procs(ctx, session)[child]["noshim"] == 0
    h = _holder_json(ctx, session, ino, child)
    assert h is not None and h["noshim"] is True and not h["stale"], h
    assert segment.raw_procs(ctx, session)[child]["noshim"] == 2
    for command in ("holders", "conns", "closewait"):
        lib.tool(ctx, [command, "--session", session])
    e = segment.raw_ledger(ctx, session).socks.get(ino)
    assert e is not None and e["refs"] == 2, e
    assert child in [h["pid"] for h in e["holders"]], e["holders"]
    assert not [c for c in _closes(ctx.events(session), ino) if c["via"] == "gone"]
    open(os.path.join(ctx.tmp, "go"), "w").close()
    assert proc.wait(timeout=WAIT) == 0


def _holder_json(ctx, session, inode, pid):
    for o in ledgerlib.holders_json(ctx, session, [str(inode)]):
        for h in o["holders"]:
            if h["pid"] == pid:
                return h
    return None


def test_reclaim_static_image_holder(ctx):
    """A child that executes a static image keeps its parent's listener:
    the exec wrapper marks its process as running without the shim,
    `holders` says so, and once the static image closes the descriptor
    (unseen) the next command releases that holder, via gone, while the
    parent's stays."""
    static = lib.static_prog(ctx, "holdstatic")
    session = ctx.session()
    proc = _start(ctx, session, ["exec", static])
    words = _lines(ctx, proc, "ready", "rawclose")
    child, fd = [(int(w[1]), int(w[2])) for w in words if w and w[0] == "child"][0]
    port = [int(w[1]) for w in words if w and w[0] == "listener"][0]
    lib.wait_for(lambda: lib.comm(child).startswith("holdstatic"), "the child's exec",
                 timeout=WAIT)
    led = segment.raw_ledger(ctx, session)
    ino = [i for i, e in led.socks.items() if e["listener"]][0]
    assert lib.socket_inodes(child).get(fd) == ino

    # The exec wrapper said so in the process table (1: known at exec).
    procs = segment.raw_procs(ctx, session)
    assert procs[child]["noshim"] == 1 and procs[proc.pid]["noshim"] == 0, procs
    h = _holder_json(ctx, session, ino, child)
    assert h is not None and h["noshim"] is True and not h["stale"], h
    assert _holder_json(ctx, session, ino, proc.pid)["noshim"] is False
    text = lib.tool(ctx, ["holders", "--session", session, str(ino)]).stdout
    line = [l for l in text.splitlines() if l.split()[:1] == [str(child)]]
    assert line and "[runs without the shim: from /proc]" in line[0], text
    assert segment.raw_ledger(ctx, session).socks[ino]["refs"] == 2

    open(os.path.join(ctx.tmp, "close"), "w").close()
    lib.wait_for(lambda: os.path.exists(os.path.join(ctx.tmp, "closed")),
                 "holdstatic to close", timeout=WAIT)
    lib.tool(ctx, ["holders", "--session", session])
    e = segment.raw_ledger(ctx, session).socks[ino]
    assert e["refs"] == 1 and [(x["pid"], x["fd"]) for x in e["holders"]] == [(proc.pid, fd)], e
    gone = [c for c in _closes(ctx.events(session), ino) if c["via"] == "gone"]
    assert [(c["pid"], c["fd"], c["refs_before"], c["refs_after"]) for c in gone] == \
        [(child, fd, 2, 1)], gone
    # The listener still serves: nothing else of it was touched.
    socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    open(os.path.join(ctx.tmp, "go"), "w").close()
    assert proc.wait(timeout=WAIT) == 0


def test_unseen_listener_words(ctx):
    """A static program (standing in for Go) started under `sockshim run`
    holds a listener the shim never sees: `holders` does not say "No socket
    is held now" and `stats` does not say "No listener ... yet" without
    naming it, its pid, fd and address."""
    static = lib.static_prog(ctx, "listenstatic")
    session = ctx.session()
    run = ctx.spawn([ctx.tool, "run", "--session", session, "--", static, ctx.tmp],
                    preload=False, name="run")
    lib.wait_for(lambda: ctx.output(run)[0].startswith("listener "), "listenstatic's port",
                 timeout=WAIT)
    port = int(ctx.output(run)[0].split()[1])
    pid = [p for p in lib.descendants(run.pid) if lib.comm(p).startswith("listenstatic")][0]
    fd = [f for f, i in lib.socket_inodes(pid).items()][0]
    want = "listenstatic-st %d fd %d on 127.0.0.1:%d" % (pid, fd, port)

    out = lib.tool(ctx, ["holders", "--session", session]).stdout
    assert "No socket is held now in session" not in out, out
    assert "its processes hold 1 listener without the shim" in out and want in out, out
    out = lib.tool(ctx, ["stats", "--session", session]).stdout
    assert "yet" not in out and "No listener recorded" in out and want in out, out
    assert not segment.raw_ledger(ctx, session).socks

    # Once it has gone, the words are the usual ones.
    open(os.path.join(ctx.tmp, "go"), "w").close()
    assert run.wait(timeout=WAIT) == 0
    session2 = ctx.session()
    r = lib.tool(ctx, ["run", "--session", session2, "--keep", "--", "/bin/true"])
    out = lib.tool(ctx, ["holders", "--session", session2]).stdout
    assert out.startswith("No socket is held now in session"), out
    out = lib.tool(ctx, ["stats", "--session", session2]).stdout
    assert out.startswith("No listener in session") and "yet" in out, (out, r.stderr)
