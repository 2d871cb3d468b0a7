"""Connection states the shim sees through the calls that change them:

- shutdown() acts on the connection for every holder: tests/progs/shutfork
  accepts a connection, forks a child to serve it, and shuts it down in
  the parent while the child holds it; the child's write fails with EPIPE,
  and `holders` and `conns` name the parent's shutdown (pid, time, call
  site) and the child as the holder it hit.
- The same with a pre-forked server, tests/progs/shutprefork: the parent
  forks its worker before the connection arrives, passes the connection to
  it (SCM_RIGHTS), keeps its own descriptor and shuts it down; the
  worker's write fails with EPIPE and its read returns 0, and `holders`
  and `conns` tie both back to the parent's shutdown ("hit"), whether the
  worker ignores SIGPIPE or writes with MSG_NOSIGNAL. A worker SIGPIPE
  kills dies inside its write: no hit is claimed for it.
- An abortive close (SO_LINGER {1, 0}) and the lifetimes: tests/progs/
  lingerlife holds each of its connections 10 ms or 100 ms in CLOSE_WAIT,
  resetting the first few; `stats` shows the two lifetimes and CLOSE_WAIT
  times in their log2 buckets and the resets, and `conns` says the reset
  ones closed by abort.

Every wait is bounded; every process is stopped by its pid."""

import json
import socket
import subprocess
import time

import lib

WAIT = 15.0
# lingerlife's connections: half held 10 ms, half 100 ms, the first RESETS
# of them reset.
CONNS = 10
RESETS = 4
# Bucket i of a log2 histogram holds [2^i, 2^(i+1)) ns: 10 ms (plus the
# few ms a loaded machine adds) is in [8.4, 16.8) ms, 100 ms in [67, 134) ms.
SHORT_BUCKET = 23
LONG_BUCKET = 26


def _tool_json(ctx, args):
    r = subprocess.run([ctx.tool] + list(args) + ["--json"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=ctx.env(preload=False))
    assert r.returncode == 0, "%s exited %d: %s" % (args, r.returncode, r.stderr.decode())
    return [json.loads(x) for x in r.stdout.decode().splitlines()]


def _tool_text(ctx, args):
    r = subprocess.run([ctx.tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=ctx.env(preload=False))
    assert r.returncode == 0, "%s exited %d: %s" % (args, r.returncode, r.stderr.decode())
    return r.stdout.decode()


def _wait_lines(ctx, proc, n):
    """The first N lines of PROC's stdout, split, within WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        out, _ = ctx.output(proc)
        lines = [l.split() for l in out.splitlines()]
        if len(lines) >= n:
            return lines
        assert proc.poll() is None, "exited: %s" % (ctx.output(proc),)
        assert time.monotonic() < deadline, "not %d lines within %.0fs: %r" % (n, WAIT, out)
        time.sleep(0.02)


def test_shutdown_names_the_holders_it_hit(ctx):
    session = ctx.session()
    prog = ctx.spawn([ctx.prog("shutfork")], session=session, name="shutfork")
    (word, port), = _wait_lines(ctx, prog, 1)
    assert word == "port", word
    # Kept open until the end: the connection stays in the kernel
    # (FIN_WAIT2 here, shut down for sending; the child still holds it).
    peer = socket.create_connection(("127.0.0.1", int(port)), timeout=WAIT)
    try:
        lines = _wait_lines(ctx, prog, 3)
        assert lines[1][0] == "shutdown" and int(lines[1][1]) == prog.pid, lines
        line = int(lines[1][2])
        child = int(lines[2][1])
        assert lines[2] == ["child", str(child), "write", "EPIPE"], lines
        local = "127.0.0.1:%s" % port
        peer_addr = "127.0.0.1:%d" % peer.getsockname()[1]

        conns = [c for c in _tool_json(ctx, ["conns", "--session", session])[1:]
                 if c["peer"] == peer_addr]
        assert len(conns) == 1, conns
        c = conns[0]
        assert c["local"] == local and c["born"]["how"] == "accept", c
        # The child holds it: the parent closed nothing, so both do.
        assert sorted(h["pid"] for h in c["holders"]) == [prog.pid, child], c["holders"]
        (sd,) = c["shutdowns"]
        # Under valgrind the process is valgrind's tool, and named so.
        name = "memcheck-amd" if ctx.valgrind else "shutfork"
        assert sd["pid"] == prog.pid and sd["comm"] == name, sd
        assert sd["how"] == "SHUT_RDWR" and sd["time"], sd
        assert sd["other_holders"] == [{"pid": child, "comm": name}], sd
        assert sd["other_holders_count"] == 1, sd
        assert "shut down by one process while others hold it" in c["anomaly"], c
        cs = sd["callsite"]
        assert cs["module"].endswith("/shutfork") and cs["function"] == "main", cs
        if cs["file"] is not None:
            assert cs["file"].endswith("shutfork.c") and cs["line"] == line, (cs, line)

        (h,) = [s for s in _tool_json(ctx, ["holders", "--session", session])
                if s.get("inode") == c["inode"]]
        assert h["shutdowns"] == c["shutdowns"], (h["shutdowns"], c["shutdowns"])

        text = _tool_text(ctx, ["holders", "--session", session, str(c["inode"])])
        want = ("shut down for reading and writing by %s %d fd " % (name, prog.pid))
        assert want in text, text
        assert " while also held by %s %d (it acts for every holder)\n" % (name, child) in text, \
            text
        assert "shut down at: main+0x" in text, text
        text = _tool_text(ctx, ["conns", "--session", session, "--port", str(peer.getsockname()[1])])
        assert want in text and "shut down at: main+0x" in text, text
    finally:
        peer.close()
        lib.stop_tree(prog)


def _prefork_case(ctx, mode):
    """shutprefork MODE against a peer here that sends nothing and keeps
    its end open: (the conns entry, the holders entry, conns' text, the
    pids of the parent and its worker, the shutdown's line)."""
    session = ctx.session()
    prog = ctx.spawn([ctx.prog("shutprefork"), mode], session=session, name="shutprefork")
    (word, port), = _wait_lines(ctx, prog, 1)
    assert word == "port", word
    peer = socket.create_connection(("127.0.0.1", int(port)), timeout=WAIT)
    try:
        lines = _wait_lines(ctx, prog, 4 if mode != "default" else 3)
        assert lines[1][0] == "shutdown" and int(lines[1][1]) == prog.pid, lines
        line = int(lines[1][2])
        child = int(lines[2][1])
        if mode == "default":
            assert lines[2] == ["child", str(child), "killed", "SIGPIPE"], lines
        else:
            assert lines[2:4] == [["child", str(child), "write", "EPIPE"],
                                  ["child", str(child), "read", "0"]], lines
        peer_addr = "127.0.0.1:%d" % peer.getsockname()[1]
        conns = [c for c in _tool_json(ctx, ["conns", "--session", session])[1:]
                 if c["peer"] == peer_addr]
        assert len(conns) == 1, conns
        c = conns[0]
        # Shut down for sending, the peer silent and open: no FIN from it.
        assert c["state"] == "FIN_WAIT2" and c["local"] == "127.0.0.1:%s" % port, c
        assert "shut down by one process while others hold it" in c["anomaly"], c
        (h,) = [s for s in _tool_json(ctx, ["holders", "--session", session])
                if s.get("inode") == c["inode"]]
        text = _tool_text(ctx, ["conns", "--session", session, "--port",
                                str(peer.getsockname()[1])])
        htext = _tool_text(ctx, ["holders", "--session", session, str(c["inode"])])
        return c, h, text + htext, prog.pid, child, line
    finally:
        peer.close()
        lib.stop_tree(prog)


def test_shutdown_prefork_hits_tied_back(ctx):
    name = "memcheck-amd" if ctx.valgrind else "shutprefork"
    for mode in ("ignore", "nosignal", "default"):
        c, h, text, parent, child, line = _prefork_case(ctx, mode)
        assert c["born"]["how"] == "accept" and c["born"]["pid"] == parent, (mode, c)
        (sd,) = c["shutdowns"]
        assert sd["pid"] == parent and sd["how"] == "SHUT_RDWR" and sd["time"], (mode, sd)
        # The worker held it when the parent shut it down (pre-forked,
        # it got it over SCM_RIGHTS).
        assert sd["other_holders"] == [{"pid": child, "comm": name}], (mode, sd)
        cs = sd["callsite"]
        assert cs["module"].endswith("/shutprefork") and cs["function"] == "main", cs
        if cs["file"] is not None:
            assert cs["file"].endswith("shutprefork.c") and cs["line"] == line, (cs, line)
        assert h["shutdowns"] == c["shutdowns"], (mode, h["shutdowns"], c["shutdowns"])
        held = sorted(x["pid"] for x in c["holders"])
        if mode == "default":
            # Killed inside its write: the shim never saw it return, so
            # nothing is claimed; its reaper released its reference.
            assert sd["hit"] == [], (mode, sd)
            assert held == [parent], (mode, c["holders"])
            assert "it hit:" not in text, text
            continue
        assert held == [parent, child], (mode, c["holders"])
        hits = [(x["pid"], x["comm"], x["what"]) for x in sd["hit"]]
        assert hits == [(child, name, "EPIPE"), (child, name, "EOF")], (mode, sd["hit"])
        (wfd,) = {x["fd"] for x in sd["hit"]}
        assert wfd == [x["fd"] for x in c["holders"] if x["pid"] == child][0], (mode, sd, c)
        assert all(x["ts_ns"] >= sd["ts_ns"] and x["time"] for x in sd["hit"]), (mode, sd)
        want = "it hit: %s %d fd %d (a write failed with EPIPE at " % (name, child, wfd)
        assert text.count(want) == 2, (mode, text)  # conns and holders
        assert "(a read returned 0, EOF, at " in text, (mode, text)
        # The first EOF read is the shutdown's, not the peer's (it sent no FIN).
        assert c["eof"]["pid"] == child and c["eof"]["by_shutdown"] is True, (mode, c["eof"])
        assert h["eof"]["pid"] == child and h["eof"]["by_shutdown"] is True, (mode, h["eof"])
        assert "EOF (from the shutdown for reading, not the peer): " in text, (mode, text)
        assert "peer EOF:" not in text, (mode, text)


def _stats_of(ctx, session, port):
    (s,) = [s for s in _tool_json(ctx, ["stats", "--session", session])
            if s["local"] == "127.0.0.1:%d" % port]
    return s


def test_abortive_close_and_lifetimes(ctx):
    session = ctx.session()
    prog = ctx.spawn([ctx.prog("lingerlife"), str(CONNS), str(RESETS)], session=session,
                     name="lingerlife", valgrind=False)
    (word, port), = _wait_lines(ctx, prog, 1)
    assert word == "port", word
    port = int(port)
    ports = []
    for _ in range(CONNS):
        # Closed at once: the server sees the EOF, then holds the socket.
        c = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        ports.append(c.getsockname()[1])
        c.close()
    try:
        lines = _wait_lines(ctx, prog, 2)
        assert lines[1] == ["done"], lines
        s = _stats_of(ctx, session, port)
        assert s["accepts"] == CONNS and s["aborted"] == RESETS, s
        life = s["lifetime_ns"]["log2_hist"]
        cw = s["close_wait_ns"]["log2_hist"]
        want = [0] * len(life)
        want[SHORT_BUCKET] = CONNS // 2
        want[LONG_BUCKET] = CONNS // 2
        assert life == want, "lifetimes in buckets %s" % {i: n for i, n in enumerate(life) if n}
        assert cw == want, "CLOSE_WAIT in buckets %s" % {i: n for i, n in enumerate(cw) if n}
        assert s["lifetime_ns"]["count"] == CONNS and s["close_wait_ns"]["count"] == CONNS, s

        prom = _tool_text(ctx, ["stats", "--session", session, "--prometheus"])
        lbl = 'session="%s",listener="127.0.0.1:%d"' % (session, port)
        for fam, n in (("sockshim_connection_lifetime_seconds_count", CONNS),
                       ("sockshim_close_wait_seconds_count", CONNS),
                       ("sockshim_aborted_connections_total", RESETS)):
            assert any(l.startswith(fam + "{" + lbl) and l.endswith(" %d" % n)
                       for l in prom.splitlines()), (fam, prom)
        text = _tool_text(ctx, ["stats", "--session", session, "--hist"])
        assert "  connection lifetime (accept to release):\n" in text, text
        assert "   8388608 -> 16777215   : %-8d |%s|" % (CONNS // 2, "*" * 40) in text, text

        # The connections by their inodes (the accept records'): a
        # connection the kernel forgot is the ledger's, named by its inode.
        inode = {e["peer"]: e["inode"] for e in ctx.events(session) if e["type"] == "accept"}
        listed = _tool_json(ctx, ["conns", "--session", session])[1:]
        conns = {c["inode"]: c for c in listed}
        closers = []
        for i, p in enumerate(ports):
            c = conns[inode["127.0.0.1:%d" % p]]
            closers.append(c["closer"])
            # Gone from the kernel: a reset leaves no TIME_WAIT, and the
            # others (the peer closed first) none either.
            assert c["state"] == "CLOSED" and c["in_kernel"] is False, (i, c)
            assert c["peer"] == "127.0.0.1:%d" % p, (i, c)
        assert closers == ["abort"] * RESETS + ["peer"] * (CONNS - RESETS), closers
    finally:
        lib.stop_tree(prog)
