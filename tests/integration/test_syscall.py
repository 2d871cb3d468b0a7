"""Calls made through libc's syscall() are seen: tests/progs/rawsys.c makes a
whole socket lifecycle by number (socket, bind, listen, connect, accept,
accept4, dup, dup3, fcntl, close) and the session shows exactly its events,
with the references before and after each close, the ledger exact while it
holds them and empty of references once it closed them. Node.js (libuv
closes every descriptor with syscall(SYS_close, fd)) answering 2,000
requests leaves every accept with its close and no connection referenced.
Also: every exported wrapper that has a system call number is routed by
shim/calls_syscall.c or named there as passed through on purpose."""

import os
import re
import socket
import subprocess
import time

import ledgerlib
import lib
import segment

# rawsys connections: three, one per way of duplicating (dup, dup3, fcntl).
RAWSYS_CONNS = 6
# Node.js: requests, each on its own connection (Connection: close).
NODE_REQUESTS = 2000
WAIT = 30.0


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def wait_output(ctx, proc, word, what, timeout=WAIT):
    """PROC's stdout so far, once it has a line WORD (fails if PROC ends
    first or after TIMEOUT)."""
    deadline = time.monotonic() + timeout
    while True:
        out, err = ctx.output(proc)
        if word in out.splitlines():
            return out
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s before saying %r: %s"
                                 % (what, proc.returncode, word, err[-1500:]))
        if time.monotonic() > deadline:
            raise AssertionError("%s did not say %r within %.0fs: %s"
                                 % (what, word, timeout, err[-1500:]))
        time.sleep(0.02)


def parse_rawsys(out):
    """rawsys's lines: (listener fd, inode, port), [conn dicts]."""
    listener, conns = None, []
    for line in out.splitlines():
        w = line.split()
        if w and w[0] == "listener":
            listener = tuple(int(x) for x in w[1:4])
        elif w and w[0] == "conn":
            i, cfd, cino, afd, aino, dfd = (int(x) for x in w[1:7])
            conns.append({"i": i, "client_fd": cfd, "client_ino": cino, "acc_fd": afd,
                          "acc_ino": aino, "dup_fd": dfd})
    assert listener and conns, out
    return listener, conns


def close_events(evs, pid):
    return [e for e in evs if e["type"] == "close" and e["pid"] == pid]


def test_syscall_lifecycle(ctx):
    """rawsys under the preload: its events are exactly the calls it made by
    number; the ledger names its holders while it runs (call sites in
    rawsys itself) and keeps no reference once it closed them."""
    session = ctx.session()
    proc = ctx.spawn([ctx.prog("rawsys"), ctx.tmp, str(RAWSYS_CONNS)], session=session,
                     name="rawsys")
    out = wait_output(ctx, proc, "ready", "rawsys")
    (lfd, lino, port), conns = parse_rawsys(out)
    pid = proc.pid

    # While it holds everything.
    evs = [e for e in ctx.events(session) if e["pid"] == pid]
    kinds = [e["type"] for e in evs]
    n = len(conns)
    assert kinds.count("socket") == 1 + n and kinds.count("connect") == n, kinds
    assert kinds.count("bind") == 1 and kinds.count("listen") == 1, kinds
    accepts = lib.select(evs, type="accept")
    assert [(e["fd"], e["inode"], e["listen_fd"], e["listen_inode"], e["ret"]) for e in accepts] \
        == [(c["acc_fd"], c["acc_ino"], lfd, lino, c["acc_fd"]) for c in conns], accepts
    dups = lib.select(evs, type="dup")
    assert [(e["fd"], e["newfd"], e["inode"], e["cloexec"]) for e in dups] == [
        (c["acc_fd"], c["dup_fd"], c["acc_ino"], c["i"] % 3 != 0) for c in conns], dups
    assert not close_events(evs, pid), close_events(evs, pid)

    led = segment.raw_ledger(ctx, session)
    truth = lib.proc_set([pid])
    mine = {t for t in led.holder_set() if t[0] == pid}
    assert mine == truth, "ledger != /proc: only in the ledger %s, only in /proc %s" % (
        sorted(mine - truth), sorted(truth - mine))
    for c in conns:
        e = led.socks[c["acc_ino"]]
        assert e["refs"] == 2 and e["born_name"] == "accept", (c, e["refs"], e["born_name"])
    for ino in [lino] + [c["client_ino"] for c in conns] + [c["acc_ino"] for c in conns]:
        mod = led.socks[ino]["callsite_module"]
        # The call site is the program's syscall() call, not the shim or libc.
        assert os.path.basename(mod) == "rawsys", (ino, mod)
    got = {(h["pid"], h["fd"], o["inode"])
           for o in ledgerlib.holders_json(ctx, session, ["--pid", str(pid)])
           for h in o["holders"] if h["pid"] == pid and not h["stale"]}
    assert got == truth, "holders --pid != /proc: %s vs %s" % (sorted(got), sorted(truth))

    # Now every descriptor is closed through syscall(SYS_close).
    with open(os.path.join(ctx.tmp, "go"), "w"):
        pass
    status = proc.wait(timeout=WAIT)
    out, err = ctx.output(proc)
    assert status == 0 and "closed" in out.splitlines(), (status, err[-1500:])
    evs = [e for e in ctx.events(session) if e["pid"] == pid]
    closes = close_events(evs, pid)
    want = []
    for c in conns:
        want += [(c["dup_fd"], c["acc_ino"], 2, 1, False), (c["acc_fd"], c["acc_ino"], 1, 0, True),
                 (c["client_fd"], c["client_ino"], 1, 0, True)]
    want.append((lfd, lino, 1, 0, True))
    got = [(e["fd"], e["inode"], e["refs_before"], e["refs_after"], e["released"]) for e in closes]
    assert got == want, "close events:\n  got  %s\n  want %s" % (got, want)
    assert all(e["via"] == "close" and e["ret"] == 0 for e in closes), closes
    assert len(lib.select(evs, type="accept")) == n and len(lib.select(evs, type="dup")) == n

    led = segment.raw_ledger(ctx, session)
    held = {i: (e["refs"], e["holders"]) for i, e in led.socks.items() if e["refs"] > 0}
    assert not held, "ledger entries still referenced after every close: %s" % held
    say("rawsys: %d connections by syscall(): %d accepts, %d dups, %d closes (refs exact); "
        "ledger: %d entries, none referenced", n, len(accepts), len(dups), len(closes),
        len(led.socks))


NODE_SERVER = r"""
const http = require('http');
const fs = require('fs');
const [port, ready] = process.argv.slice(2);
const srv = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain', 'Connection': 'close'});
  res.end('ok\n');
});
srv.listen(Number(port), '127.0.0.1', () => fs.writeFileSync(ready, String(process.pid)));
process.on('SIGTERM', () => srv.close(() => process.exit(0)));
"""


def http_close(port, timeout=10.0):
    """One request on its own connection; the status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            b = s.recv(4096)
            if not b:
                break
            data += b
    return data.split(b"\r\n", 1)[0]


def test_syscall_node(ctx):
    """Node.js's http server under the preload, NODE_REQUESTS requests with
    Connection: close: each accept has its close (refs 1->0, released) in
    the events, and no ledger entry of a connection keeps a reference."""
    node = lib.which("node") or lib.which("nodejs")
    if not node:
        raise lib.Skip("node is not installed (apt-get install -y nodejs)")
    if ctx.sanitizer == "thread":
        # With halt_on_error, its first report (V8's own threads) stops node.
        raise lib.Skip("ThreadSanitizer's runtime reports races inside node's V8 (not "
                       "instrumented) and stops it, without the shim as well")
    script = os.path.join(ctx.tmp, "server.js")
    with open(script, "w") as f:
        f.write(NODE_SERVER)
    ready = os.path.join(ctx.tmp, "ready")
    port = lib.free_port()
    session = ctx.session()
    proc = ctx.spawn([node, script, str(port), ready], session=session, valgrind=False,
                     name="node")
    try:
        lib.wait_for_file(ready, proc, WAIT, "node")
        t0 = time.monotonic()
        for i in range(NODE_REQUESTS):
            status = http_close(port)
            assert status == b"HTTP/1.1 200 OK", "request %d: %r" % (i, status)
        took = time.monotonic() - t0
        pid = proc.pid

        def settled():
            evs = ctx.events(session)
            acc = [e for e in evs if e["type"] == "accept" and e["pid"] == pid and e["ret"] >= 0]
            rel = [e for e in evs if e["type"] == "close" and e["pid"] == pid and e["released"]]
            return (evs, acc) if len(rel) >= len(acc) >= NODE_REQUESTS else None

        deadline = time.monotonic() + WAIT
        while True:
            got = settled()
            if got or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        evs = ctx.events(session)
        accepts = [e for e in evs if e["type"] == "accept" and e["pid"] == pid and e["ret"] >= 0]
        lino = {e["listen_inode"] for e in accepts}
        assert len(accepts) == NODE_REQUESTS and len(lino) == 1, (len(accepts), lino)
        closes = {}
        for e in evs:
            if e["type"] == "close" and e["pid"] == pid:
                closes.setdefault(e["inode"], []).append(e)
        bad = []
        for a in accepts:
            cs = closes.get(a["inode"], [])
            if [(c["fd"], c["refs_before"], c["refs_after"], c["released"]) for c in cs] != [
                    (a["fd"], 1, 0, True)]:
                bad.append((a["inode"], a["fd"], [(c["fd"], c["refs_before"], c["refs_after"],
                                                   c["released"]) for c in cs]))
        shutdowns = lib.count(evs, type="shutdown", pid=pid)
        conns, led = connection_entries(ctx, session, port)
        held = [(e["inode"], e["refs"], e["holders"]) for e in conns if e["refs"] > 0]
        referenced = sum(1 for e in led.socks.values() if e["refs"] > 0)
        say("node: %d requests in %.2f s; events: %d accepts, %d with their close "
            "(refs 1->0, released), %d shutdowns; ledger: %d connection entries, %d referenced; "
            "entries with refs > 0 in the whole ledger: %d (the listener)",
            NODE_REQUESTS, took, len(accepts), len(accepts) - len(bad), shutdowns, len(conns),
            len(held), referenced)
        assert not bad, "%d accepts without exactly one releasing close, e.g. %s" % (
            len(bad), bad[:5])
        assert not held, "%d closed connections still referenced: %s" % (len(held), held[:5])
        (listener_ino,) = lino
        assert led.socks[listener_ino]["refs"] == 1, led.socks[listener_ino]
    finally:
        status = lib.stop(proc)
    assert status in (0, -15), "node ended with status %s: %s" % (
        status, ctx.output(proc)[1][-1500:])


def connection_entries(ctx, session, port):
    """The ledger's entries of connections accepted on PORT, and the ledger."""
    led = segment.raw_ledger(ctx, session)
    local = "127.0.0.1:%d" % port
    return [e for e in led.socks.values() if e["local"] == local and not e["listener"]], led


def syscall_numbers():
    """{name: number} of this machine's system calls (<sys/syscall.h>)."""
    res = subprocess.run([os.environ.get("CC", "cc"), "-dM", "-E", "-x", "c", "-"],
                         input=b"#include <sys/syscall.h>\n", stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60, check=True)
    return {m.group(1).decode(): int(m.group(2))
            for m in re.finditer(rb"#define __NR_(\w+) (\d+)", res.stdout)}


def test_syscall_routes_every_wrapper(ctx):
    """Each name the shim exports that is also a system call's name is either
    routed by shim/calls_syscall.c (a `case SYS_name:` in shim_syscall_slow
    and in routed(), its fast test) or listed there as passed through on
    purpose: a new wrapper cannot be forgotten here."""
    res = subprocess.run(["nm", "-D", "--defined-only", ctx.lib], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30, check=True)
    exported = {re.sub(r"@.*", "", l.split()[2]) for l in res.stdout.decode().splitlines()
                if len(l.split()) == 3}
    numbers = syscall_numbers()
    with open(os.path.join(ctx.root, "shim", "calls_syscall.c")) as f:
        src = f.read()
    def cases(start):
        body = src.split(start, 1)[1].split("default:", 1)[0]
        return set(re.findall(r"case SYS_(\w+):", body))

    routed = cases("shim_syscall_slow(long n")
    fast = cases("static inline int routed(long n)")
    assert routed == fast, "routed() and shim_syscall_slow() differ: %s" % sorted(routed ^ fast)
    head = src.split("*/", 1)[0]
    assert "Passed through on purpose:" in head, "calls_syscall.c's list of numbers passed through"
    passed = set(re.findall(r"SYS_(\w+)", head.split("Passed through on purpose:", 1)[1]))
    both = sorted(n for n in exported if n in numbers)
    missing = [n for n in both if n not in routed and n not in passed]
    assert "close" in both and "accept4" in both, both
    assert not missing, ("exported wrappers with a system call number that syscall() neither "
                         "routes nor lists as passed through: %s" % missing)
    say("exported names with a system call number: %d, routed %d, passed through on purpose %d",
        len(both), len([n for n in both if n in routed]), len([n for n in both if n in passed]))
