"""`sockshim conns`: every TCP connection of the session against what the
kernel says (ss), with what the ledger adds.

tests/progs/conns_states under the shim holds a listener and four
connections to a peer in this (unpreloaded) process: one kept open
(ESTABLISHED), one shut down for sending and read forever against a peer
that never closes (FIN_WAIT2), one the peer closes (CLOSE_WAIT), one
closed first here (TIME_WAIT). At a quiet moment conns lists each once,
with the kernel's state, and its per-state counts equal ss's for the same
sockets; the FIN_WAIT2 one shows its age and its creator's call site.
Once the program has ended, its listener is CLOSED: remembered by the
ledger, released.

At a session level: the bundled prefork server and its client, both
preloaded, under load, then quiet: conns == ss for every socket of the
session, state by state, each end once.

The states loopback can hold still only with care: SYN_SENT (a listener's
full accept queue drops the SYN), CLOSING and LAST_ACK (a FIN queued behind
data a zero window holds back), each listed once as ss lists it.

A program holding 300 connections open, both ends its own: while other
programs' connections come and go, conns lists each of its sockets
exactly once, every time.
"""

import collections
import errno
import json
import os
import socket
import subprocess
import threading
import time

import lib

WAIT = 15.0
# The age the FIN_WAIT2 connection must show, at least.
FIN_AGE_S = 1.0

SS_STATES = {"ESTAB": "ESTABLISHED", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2",
             "TIME-WAIT": "TIME_WAIT", "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK",
             "CLOSING": "CLOSING", "LISTEN": "LISTEN", "SYN-SENT": "SYN_SENT",
             "SYN-RECV": "SYN_RECV"}


class _Peer:
    """Reads one command byte per connection: 'k' keep it open and never
    close it, 'c' close it at once, 'e' close it on the EOF."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.kept = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        cmd = c.recv(1)
        if cmd == b"k":
            self.kept.append(c)
            return
        if cmd == b"e":
            while c.recv(100):
                pass
        c.close()

    def close(self):
        self.sock.close()
        for c in self.kept:
            c.close()


def _ss_rows(lport, peer_port):
    """The program's TCP sockets as the kernel lists them: its listener
    (local port LPORT) and its connections to PEER_PORT; [(state, local,
    peer)], states named as sock_diag names them."""
    out = []
    # By address and port: test_load's TIME_WAIT sockets (127.0.1.x) may
    # name the same port numbers for a minute.
    lsock, psock = "127.0.0.1:%d" % lport, "127.0.0.1:%d" % peer_port
    for r in lib.ss_tcp("state", "all"):
        if r["local"] != lsock and (r["peer"] != psock or r["local"] == psock):
            continue
        out.append((SS_STATES.get(r["state"], r["state"]), r["local"],
                    r["peer"].replace(":*", ":0")))
    return out


def _conns(ctx, session, args=()):
    """(summary, [conn]) of `sockshim conns --session S --json ARGS`."""
    r = subprocess.run([ctx.tool, "conns", "--session", session, "--json"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=ctx.env(preload=False))
    assert r.returncode == 0, "conns exited %d: %s" % (r.returncode, r.stderr.decode())
    lines = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert lines and lines[0]["type"] == "summary", lines[:1]
    conns = lines[1:]
    assert all(c["type"] == "conn" for c in conns)
    counts = collections.Counter(c["state"] for c in conns)
    assert lines[0]["states"] == dict(counts), (lines[0], counts)
    return lines[0], conns


def _wait_ready(ctx, proc):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        out, _ = ctx.output(proc)
        if out.startswith("ready "):
            return int(out.split()[1])
        assert proc.poll() is None, "conns_states exited: %s" % (ctx.output(proc),)
        time.sleep(0.02)
    raise AssertionError("conns_states not ready within %.0fs" % WAIT)


def test_conns_states_match_kernel(ctx):
    session = ctx.session()
    peer = _Peer()
    try:
        prog = ctx.spawn([ctx.prog("conns_states"), str(peer.port)], session=session,
                         name="conns_states")
        lport = _wait_ready(ctx, prog)
        # The program's ends (its local ports): quiet once the four reach
        # their states.
        want = collections.Counter(["LISTEN", "ESTABLISHED", "FIN_WAIT2", "CLOSE_WAIT",
                                    "TIME_WAIT"])
        deadline = time.monotonic() + WAIT
        while True:
            mine = _ss_rows(lport, peer.port)
            if collections.Counter(r[0] for r in mine) == want:
                break
            assert time.monotonic() < deadline, "not quiet: %s" % mine
            time.sleep(0.05)
        time.sleep(FIN_AGE_S)
        t = time.monotonic()
        summary, conns = _conns(ctx, session)
        took = time.monotonic() - t
        kernel = sorted(_ss_rows(lport, peer.port))
        listed = sorted((c["state"], c["local"], c["peer"]) for c in conns if c["in_kernel"])
        assert listed == kernel, "conns %s\n   ss %s" % (listed, kernel)
        assert len({(c["local"], c["peer"]) for c in conns}) == len(conns), conns
        by = {c["state"]: c for c in conns if c["in_kernel"]}

        fw = by["FIN_WAIT2"]
        assert fw["closer"] == "local" and fw["fin_age_s"] >= FIN_AGE_S, fw
        assert fw["timer_s"] is None, fw  # held: no timer runs
        assert fw["born"]["how"] == "connect" and fw["born"]["pid"] == prog.pid, fw
        # Under valgrind the process is valgrind's tool, and named so.
        assert fw["born"]["comm"] == ("memcheck-amd" if ctx.valgrind else "conns_states"), fw
        cs = fw["born"]["callsite"]
        if ctx.sanitizer == "thread":
            # Under TSan its socket interceptor calls ours: that is the caller.
            assert cs["function"].startswith("__interceptor_"), cs
        else:
            assert cs["module"].endswith("/conns_states") and cs["function"] == "dial", cs
        assert [h["pid"] for h in fw["holders"]] == [prog.pid], fw["holders"]
        assert fw["eof"] is None and fw["released"] is None, fw
        assert "after shutdown for sending, still held" in fw["anomaly"], fw

        cw = by["CLOSE_WAIT"]
        assert cw["closer"] == "peer" and "closewait" in cw["anomaly"], cw
        tw = by["TIME_WAIT"]
        assert tw["closer"] == "local" and tw["inode"] == 0 and 0 < tw["timer_s"] <= 60, tw
        assert tw["released"] is not None and tw["lifetime_s"] >= 0, tw
        assert tw["anomaly"] is None, tw  # born by connect: the client side
        assert by["ESTABLISHED"]["closer"] == "unknown", by["ESTABLISHED"]
        assert by["LISTEN"]["local"] == "127.0.0.1:%d" % lport, by["LISTEN"]

        # The table: the summary first, one anomaly line per kind.
        r = ctx.run([ctx.tool, "conns", "--session", session], preload=False, timeout=60)
        assert r.returncode == 0, r.stderr
        head = r.stdout.splitlines()
        assert head[0].startswith('Session "%s": ' % session), head[:2]
        assert head[1].startswith("  anomaly: 1 CLOSE_WAIT (%s -> " % cw["local"]), head[:3]
        assert head[2].startswith("  anomaly: 1 FIN_WAIT2 (%s -> " % fw["local"]), head[:3]
        assert "this side's FIN" in r.stdout, r.stdout
        assert ctx.sanitizer == "thread" or "dial+0x" in r.stdout, r.stdout

        # The filters.
        _, only = _conns(ctx, session, ["--state", "fin-wait-2"])
        assert [c["local"] for c in only] == [fw["local"]], only
        _, only = _conns(ctx, session, ["--port", str(lport)])
        assert [c["state"] for c in only] == ["LISTEN"], only
        _, only = _conns(ctx, session, ["--pid", str(prog.pid), "--state", "established,listen"])
        assert sorted(c["state"] for c in only) == ["ESTABLISHED", "LISTEN"], only

        # Gone: the peer closes the half-closed connection, the program
        # reads its EOF and exits, and its end releases its sockets; the
        # kernel forgets the listener, the ledger remembers it.
        for c in peer.kept:
            c.close()
        assert prog.wait(WAIT) == 0
        _, after = _conns(ctx, session, ["--state", "closed"])
        gone = [c for c in after if c["local"] == "127.0.0.1:%d" % lport]
        assert len(gone) == 1 and not gone[0]["in_kernel"], after
        assert gone[0]["released"] is not None and gone[0]["born"]["pid"] == prog.pid, gone
        print("conns: %s == ss for the same sockets; FIN_WAIT2 %.3fs old, created at %s; "
              "took %.3fs" % (dict(summary["states"]), fw["fin_age_s"], cs["text"], took))
    finally:
        peer.close()



# The session under load: the bundled prefork server and its client, both
# preloaded, LOAD_CLIENTS clients of LOAD_CONNECTIONS connections each at
# once.
LOAD_WORKERS = 4
LOAD_CLIENTS = 2
LOAD_CONNECTIONS = 400


def _session_rows(port, before):
    """The kernel's TCP sockets with local or peer port PORT (every socket
    of the session: the server's ends and the client's), but for the
    TIME_WAIT ones in BEFORE (an earlier server's on that port number):
    sorted [(state, local, peer)]."""
    out = []
    for r in lib.ss_tcp("state", "all", "( sport = :%d or dport = :%d )" % (port, port)):
        row = (SS_STATES.get(r["state"], r["state"]), r["local"], r["peer"].replace(":*", ":0"))
        if row[0] == "TIME_WAIT" and (row[1], row[2]) in before:
            continue
        if "127.0.0.1:%d" % port not in (row[1], row[2]):
            continue  # the port number on another address (test_load's)
        out.append(row)
    return sorted(out)


def test_conns_session_under_load_matches_ss(ctx):
    """A real server under load, then quiet: conns' per-state counts for
    the session's sockets equal ss's for the same sockets, state by state,
    and every connection end is listed exactly once.

    prefork_server -l (4 workers; each hands its first connection to a
    helper by mistake, which keeps it open) and demo_client (half-closes
    first, reads the answer, closes), both under the shim in one session:
    the clients' ends end in TIME_WAIT, the leaked connections in
    CLOSE_WAIT on the server's side (the helper holds them) and FIN_WAIT2
    on the client's (closed, orphaned), the listener in LISTEN."""
    session = ctx.session("load")
    lib.room_for_time_wait(LOAD_CLIENTS * LOAD_CONNECTIONS + 1000)
    server = os.path.join(ctx.build, "examples", "prefork_server")
    client = os.path.join(ctx.build, "examples", "demo_client")
    srv = ctx.spawn([server, "-w", str(LOAD_WORKERS), "-l"], session=session, valgrind=False,
                    name="prefork_server")
    try:
        deadline = time.monotonic() + WAIT
        while not ctx.output(srv)[0].endswith("\n"):
            assert srv.poll() is None, "prefork_server: %s" % (ctx.output(srv),)
            assert time.monotonic() < deadline, "prefork_server gave no port in %.0fs" % WAIT
            time.sleep(0.02)
        port = int(ctx.output(srv)[0].split()[0])
        # No connection yet: what TIME_WAIT there is on the port is an
        # earlier server's.
        before = {(l, p) for s, l, p in _session_rows(port, set()) if s == "TIME_WAIT"}
        load = [ctx.spawn([client, "-p", str(port), "-n", str(LOAD_CONNECTIONS)],
                          session=session, valgrind=False, name="client")
                for _ in range(LOAD_CLIENTS)]
        for c in load:
            assert c.wait(120) == 0, ctx.output(c)
        answered = sum(ctx.output(c)[0].count("hello from worker") for c in load)
        assert answered == LOAD_CLIENTS * LOAD_CONNECTIONS, answered
        # Quiet: the kernel's view the same twice, 0.3 s apart, and again
        # after conns has looked.
        deadline = time.monotonic() + WAIT
        while True:
            kernel = _session_rows(port, before)
            time.sleep(0.3)
            if _session_rows(port, before) == kernel:
                summary, conns = _conns(ctx, session)
                if _session_rows(port, before) == kernel:
                    break
            assert time.monotonic() < deadline, "never quiet for %.0fs" % WAIT
        listed = sorted((c["state"], c["local"], c["peer"]) for c in conns if c["in_kernel"])
        assert listed == kernel, "conns and ss differ:\n  conns only %s\n  ss only %s" % (
            sorted(collections.Counter(listed) - collections.Counter(kernel))[:10],
            sorted(collections.Counter(kernel) - collections.Counter(listed))[:10])
        by_conns = collections.Counter(s for s, _, _ in listed)
        by_ss = collections.Counter(s for s, _, _ in kernel)
        assert by_conns == by_ss, (by_conns, by_ss)
        # The summary counts every connection conns lists (those the
        # kernel forgot among them, as CLOSED).
        gone = sum(1 for c in conns if not c["in_kernel"])
        assert {k: v for k, v in summary["states"].items() if k != "CLOSED"} == dict(by_ss), \
            (summary["states"], by_ss)
        assert summary["states"].get("CLOSED", 0) == gone, (summary["states"], gone)
        # Each end once.
        ends = collections.Counter((c["local"], c["peer"]) for c in conns if c["in_kernel"])
        assert max(ends.values()) == 1, [e for e, n in ends.items() if n > 1][:5]
        # What the load made: the listener, the clients' TIME_WAIT, and per
        # worker one leaked connection, both of its ends.
        assert by_ss["LISTEN"] == 1, by_ss
        assert by_ss["CLOSE_WAIT"] == by_ss["FIN_WAIT2"] == LOAD_WORKERS, by_ss
        assert by_ss["TIME_WAIT"] >= 0.9 * LOAD_CLIENTS * LOAD_CONNECTIONS, by_ss
        print("session under load: %d connections; conns == ss for the session's sockets: %s; "
              "%d ends the kernel forgot, listed as CLOSED" % (answered, dict(by_ss), gone))
    finally:
        lib.stop(srv)


# A preloaded Python program that puts one connection in each state loopback
# can hold still: SYN_SENT (a connect to a listener whose accept queue is
# full: the kernel drops the SYN and the client retries for minutes),
# CLOSING and LAST_ACK (its FIN stuck behind data the peer does not read:
# a zero window holds it back, so it is never acknowledged). It prints a
# word after each step and waits for the test's next byte on a socket.
RARE = r"""
import socket, sys, time
full, peer = int(sys.argv[1]), int(sys.argv[2])

def say(*words):
    print(*words, flush=True)

def fill(s):
    s.setblocking(False)
    chunk = b"x" * 65536
    try:
        for _ in range(10000):
            s.send(chunk)
    except BlockingIOError:
        pass
    s.setblocking(True)

syn = socket.socket()
syn.setblocking(False)
say("syn_sent", syn.connect_ex(("127.0.0.1", full)))
# CLOSING: this side shuts down first, its FIN queued behind data the peer
# does not read; the peer's FIN then comes in.
closing = socket.create_connection(("127.0.0.1", peer))
fill(closing)
closing.shutdown(socket.SHUT_WR)
say("fin_queued", closing.getsockname()[1])
assert closing.recv(1) == b""
say("closing")
# LAST_ACK: the peer closes first; this side reads its EOF and closes, its
# FIN queued behind data the peer does not read.
last = socket.create_connection(("127.0.0.1", peer))
fill(last)
say("filled", last.getsockname()[1])
assert last.recv(1) == b""
last.close()
say("last_ack")
time.sleep(120)
"""


def test_conns_rare_states(ctx):
    """SYN_SENT, CLOSING and LAST_ACK made on loopback by a preloaded
    program: conns lists each once with the kernel's state (as ss), the
    one who closed first as that state says, born by connect in it."""
    session = ctx.session("rare")
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    # Backlog 0: one connection the listener never accepts fills the
    # queue; the kernel drops the SYNs that come after it.
    filler = socket.create_connection(full.getsockname(), timeout=WAIT)
    peer = socket.socket()
    peer.bind(("127.0.0.1", 0))
    peer.listen(4)
    script = os.path.join(ctx.tmp, "rare.py")
    with open(script, "w") as f:
        f.write(RARE)
    prog = ctx.spawn([ctx.python, script, str(full.getsockname()[1]),
                      str(peer.getsockname()[1])], session=session, valgrind=False, name="rare")
    accepted = []
    try:
        def wait_word(word):
            deadline = time.monotonic() + WAIT
            while True:
                lines = [l.split() for l in ctx.output(prog)[0].splitlines()]
                found = [l for l in lines if l[0] == word]
                if found:
                    return found[0]
                assert prog.poll() is None, "exited: %s" % (ctx.output(prog),)
                assert time.monotonic() < deadline, "no %s within %.0fs: %r" % (
                    word, WAIT, ctx.output(prog))
                time.sleep(0.02)

        assert wait_word("syn_sent")[1] == str(errno.EINPROGRESS)
        peer.settimeout(WAIT)
        c, _ = peer.accept()
        accepted.append(c)
        wait_word("fin_queued")
        c.shutdown(socket.SHUT_WR)  # never read: the program's FIN stays queued
        wait_word("closing")
        c, _ = peer.accept()
        accepted.append(c)
        wait_word("filled")
        c.shutdown(socket.SHUT_WR)
        wait_word("last_ack")
        # Its ends: those whose peer is one of the two listeners, but for
        # the filler's (this process's).
        ports = (full.getsockname()[1], peer.getsockname()[1])
        skip = {"127.0.0.1:%d" % filler.getsockname()[1]}
        def kernel():
            rows = []
            for p in ports:
                for r in lib.ss_tcp("state", "all", "( dport = :%d )" % p):
                    if r["local"] not in skip and r["peer"] == "127.0.0.1:%d" % p:
                        rows.append((SS_STATES.get(r["state"], r["state"]), r["local"], r["peer"]))
            return sorted(rows)
        want = ["CLOSING", "LAST_ACK", "SYN_SENT"]
        deadline = time.monotonic() + WAIT
        while sorted(s for s, _, _ in kernel()) != want:
            assert time.monotonic() < deadline, "not there: %s" % kernel()
            time.sleep(0.05)
        before = kernel()
        _, conns = _conns(ctx, session)
        assert kernel() == before, (before, kernel())
        listed = sorted((c["state"], c["local"], c["peer"]) for c in conns if c["in_kernel"])
        assert listed == before, "conns %s\n   ss %s" % (listed, before)
        by = {c["state"]: c for c in conns if c["in_kernel"]}
        for state, closer in (("SYN_SENT", "unknown"), ("CLOSING", "both"),
                              ("LAST_ACK", "peer")):
            c = by[state]
            assert c["closer"] == closer, (state, c)
            assert c["born"]["how"] == "connect" and c["born"]["pid"] == prog.pid, (state, c)
        # Closed here: the kernel's orphan, no inode, the ledger's release.
        assert by["LAST_ACK"]["inode"] == 0 and by["LAST_ACK"]["released"], by["LAST_ACK"]
        assert by["CLOSING"]["inode"] and [h["pid"] for h in by["CLOSING"]["holders"]] == \
            [prog.pid], by["CLOSING"]
        assert by["SYN_SENT"]["peer"] == "127.0.0.1:%d" % ports[0], by["SYN_SENT"]
        # Its FIN is held back by data the peer never reads: a LAST_ACK
        # that lingers, said once it has lasted a second.
        time.sleep(1.2)
        _, conns = _conns(ctx, session)
        la = [c for c in conns if c["in_kernel"] and c["state"] == "LAST_ACK"]
        assert len(la) == 1 and "LAST_ACK for over a second" in (la[0]["anomaly"] or ""), la
        print("conns: SYN_SENT, CLOSING and LAST_ACK held on loopback, each listed once as ss "
              "lists it")
    finally:
        lib.stop(prog)
        for s in accepted + [filler, full, peer]:
            s.close()


OPEN_PAIRS = 300
HOLD_OPEN = r"""
import socket, sys, time
n = int(sys.argv[1])
lsn = socket.socket()
lsn.bind(("127.0.0.1", 0))
lsn.listen(n)
keep = []
for _ in range(n):
    c = socket.create_connection(lsn.getsockname())
    s, _ = lsn.accept()
    keep += [c, s]
print("ready", lsn.getsockname()[1], flush=True)
time.sleep(120)
"""


def _churn(stop, port):
    """Connections opened and closed as fast as they come, not the
    session's: the kernel's table changes under every dump."""
    while not stop.is_set():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            pass


def test_conns_open_connections_while_others_churn(ctx):
    """Every connection open and listed with its inode: conns dumps the
    kernel's table once (its second dump is for what the first may have
    missed of the session's, which the ledger then tells). While other
    programs' connections come and go, each of the session's sockets is
    still listed exactly once, every time."""
    session = ctx.session()
    script = os.path.join(ctx.tmp, "hold_open.py")
    with open(script, "w") as f:
        f.write(HOLD_OPEN)
    prog = ctx.spawn([ctx.python, script, str(OPEN_PAIRS)], session=session, name="hold_open",
                     valgrind=False)
    lport = _wait_ready(ctx, prog)
    peer = _Peer()
    stop = threading.Event()
    churners = [threading.Thread(target=_churn, args=(stop, peer.port), daemon=True)
                for _ in range(2)]
    try:
        kernel = sorted(_ss_rows(lport, lport))
        assert len(kernel) == 2 * OPEN_PAIRS + 1, len(kernel)
        for t in churners:
            t.start()
        for _ in range(5):
            summary, conns = _conns(ctx, session)
            listed = sorted((c["state"], c["local"], c["peer"]) for c in conns)
            assert listed == kernel, "conns %d rows, ss %d" % (len(listed), len(kernel))
            assert summary["states"] == {"ESTABLISHED": 2 * OPEN_PAIRS, "LISTEN": 1}, summary
    finally:
        stop.set()
        for t in churners:
            if t.is_alive():
                t.join(5)
        peer.close()
    print("conns: %d sockets listed once each, 5 times, while others churned"
          % (2 * OPEN_PAIRS + 1))
