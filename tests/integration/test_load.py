"""Load (issue 8): 8 pre-forked processes of 4 accepting threads each
serve 100,000 connections in each accept mode. Every connection is
accepted exactly once and closed (loadclient checks every answer), the
shim's statistics count every accept, the ledger holds exactly the
sockets still open (the listener, in every process of the pool, as /proc
shows), and the ring's producers and its reader agree: produced ==
delivered + lost. Under a sanitizer or valgrind, 10,000 connections."""

import json
import re
import signal
import time

import segment
from ledgerlib import holders_json
from lib import descendants, proc_set, tool
from segment import raw_ledger
from test_faults import fork_pool, load

PROCESSES = 8
THREADS = 4


def _connections(ctx):
    return 10000 if (ctx.sanitizer or ctx.valgrind) else 100000


def _started(ctx, proc, want):
    def count():
        return sum(1 for l in ctx.output(proc)[0].splitlines() if l.startswith("start "))
    deadline = time.monotonic() + 30.0
    while count() < want:
        assert proc.poll() is None, ctx.output(proc)
        assert time.monotonic() < deadline, "%d of %d workers started" % (count(), want)
        time.sleep(0.05)


def _produced(ctx, session):
    lay = segment.layout(ctx.root)
    with open(ctx.session_path(session), "rb") as f:
        return segment.get(lay, "H.ring_head", f.read(lay["SIZEOF_H"]))


def _summary(stderr):
    """(delivered, lost) from the reader's closing line, None without one."""
    m = re.search(r"(\d+) events delivered, (\d+) lost", stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _follower_counts(ctx, follower):
    """Stop the follower once it has drained the ring: (delivered, lost)."""
    out = follower.out_files[0]
    deadline, last, since = time.monotonic() + 120, -1, time.monotonic()
    while time.monotonic() < deadline:
        out.flush()
        size = out.seek(0, 2)
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since > 1.0:
            break
        time.sleep(0.1)
    follower.send_signal(signal.SIGTERM)
    assert follower.wait(timeout=30) == 0, ctx.output(follower)[1][-1000:]
    text, err = ctx.output(follower)
    delivered = sum(1 for l in text.splitlines() if json.loads(l).get("type") != "lost")
    summary = _summary(err)
    if summary:
        assert summary[0] == delivered, (summary, delivered)
        return delivered, summary[1]
    return delivered, 0


def _load_mode(ctx, mode):
    n = _connections(ctx)
    s = ctx.session(mode)
    proc, port = fork_pool(ctx, s, mode, n=PROCESSES, threads=THREADS)
    _started(ctx, proc, PROCESSES * THREADS)
    follower = ctx.spawn([ctx.tool, "events", "--session", s, "-f", "--json"], preload=False,
                         name="follower")
    workers = load(ctx, port, n, conc=32)
    assert 1 <= workers <= PROCESSES * THREADS
    if mode != "off":
        st = json.loads(tool(ctx, ["stats", "--session", s, "--json"]).stdout.splitlines()[0])
        assert st["accepts"] == n, "stats counted %d accepts of %d" % (st["accepts"], n)
    # The ledger holds exactly the sockets still open: the listener, in
    # the parent and each worker process.
    pids = descendants(proc.pid, include_root=True)
    assert len(pids) == PROCESSES + 1, pids
    truth = proc_set(pids)
    assert len(truth) == PROCESSES + 1 and len({t[2] for t in truth}) == 1, truth
    # Its reference count is exact; the names of its holders are too, but
    # for the ones beyond the SOCKSHIM_HOLDERS slots of an entry (8: one
    # here), which are counted as overflow (every holder named: issue 12).
    led = raw_ledger(ctx, s)
    held = {ino: e for ino, e in led.socks.items() if e["refs"] > 0}
    assert set(held) == {t[2] for t in truth}, "held in the ledger: %s" % sorted(held)
    (listener,) = held.values()
    assert listener["refs"] == len(truth), (listener["refs"], truth)
    named = led.holder_set()
    assert named <= truth, "ledger names %s, /proc has %s" % (sorted(named), sorted(truth))
    assert len(named) + listener["holder_overflow"] == len(truth), (
        len(named), listener["holder_overflow"], len(truth))
    cmd = {(h["pid"], h["fd"], o["inode"]) for o in holders_json(ctx, s)
           for h in o["holders"] if not h["stale"]}
    assert cmd == truth, "holders --json %s != /proc %s" % (sorted(cmd), sorted(truth))
    # Every writer gone: a reader that followed from the start delivered
    # or counted as lost every record produced; one that reads now says
    # how many had been overwritten before it began.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, ctx.output(proc)[1][-2000:]
    produced = _produced(ctx, s)
    # At least an accept and a close per connection.
    assert produced >= 2 * n, produced
    delivered, lost = _follower_counts(ctx, follower)
    assert produced == delivered + lost, "produced %d, followed: delivered %d + lost %d" % (
        produced, delivered, lost)
    r = tool(ctx, ["events", "--session", s, "--json"], timeout=300)
    once = sum(1 for l in r.stdout.splitlines() if json.loads(l).get("type") != "lost")
    m = re.search(r"(\d+) older events had been overwritten", r.stderr)
    before = int(m.group(1)) if m else 0
    summary = _summary(r.stderr) or (once, 0)
    assert summary[0] == once and produced == before + once + summary[1], (
        produced, before, once, summary, r.stderr)
    return n


def test_load_observe(ctx):
    _load_mode(ctx, "observe")


def test_load_serialize(ctx):
    _load_mode(ctx, "serialize")


def test_load_off(ctx):
    _load_mode(ctx, "off")
