"""`sockshim stats`: on a synthetic session (tests/progs/stats_fixture.c fills
the listener table with known numbers, on real listeners whose accept queues
the kernel reports), the table, JSON and Prometheus output exactly;
`promtool check metrics`; a real Prometheus server scraping the output on
loopback; --watch on a pipe and on a terminal; usage errors; and the real
shim under the bundled pre-forked server, in observe and serialize mode.

Every wait is bounded; every process is stopped by its pid."""

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import lib
import segment
import srvlib

WAIT = 15.0
# How long a real Prometheus gets to start and scrape a changed value.
PROM_WAIT = 60.0

NO_LISTENER = ('No listener in session "%s" yet: a listening socket appears here once a '
               'process of the session calls listen() on it, or accepts on one it '
               'inherited (none under SOCKSHIM_ACCEPT=off).\n')
FOOTER = ("Lock wait and hold times, lifetimes and CLOSE_WAIT times are upper bounds of log2 "
          "buckets (<=); queue/backlog is the kernel's accept queue now (sock_diag).\n")
# The fixture's corrupt entry C: an inode no socket here has (2^32 - 1).
FAKE_INODE = (1 << 32) - 1
BUCKETS = 32


# ---------------------------------------------------------------------------
# The fixture.

class Fixture:
    """stats_fixture SESSION [empty], running until close(). Its ready line
    gives pid, ports and inodes of listeners A and B, and the tids of its
    threads fxw1..fxw3."""

    def __init__(self, ctx, empty=False):
        self.session = ctx.session("fx")
        # Not under valgrind: the thread names (comm) are part of the output.
        argv = [ctx.prog("stats_fixture"), self.session] + (["empty"] if empty else [])
        self.proc = subprocess.Popen(argv, env=ctx.env(preload=False), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=ctx.tmp, start_new_session=True)
        ctx._procs.append(self.proc)  # stopped by cleanup whatever happens
        self._buf = b""
        f = self.line().split()
        if not f or f[0] != "ready":
            raise AssertionError("stats_fixture: %r; stderr: %s" % (
                f, self.proc.stderr.read().decode()[-2000:] if self.proc.poll() is not None
                else "(running)"))
        (self.pid, self.port_a, self.inode_a, self.port_b, self.inode_b,
         *self.tids) = [int(x) for x in f[1:]]

    def line(self, timeout=WAIT):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("stats_fixture said nothing within %.0fs" % timeout)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("stats_fixture exited (%s): %s" % (
                        self.proc.wait(timeout=5),
                        self.proc.stderr.read().decode()[-2000:]))
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def command(self, text):
        """TEXT to the fixture; what followed its "ok"."""
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()
        answer = self.line()
        assert answer.split()[:1] == ["ok"], "stats_fixture: %r answered %r" % (text, answer)
        return answer[3:]

    def close(self):
        """End of input: the fixture removes its session and exits 0."""
        self.proc.stdin.close()
        status = self.proc.wait(timeout=WAIT)
        assert status == 0, "stats_fixture exited with %s" % status


def stats(ctx, session, *args, timeout=30):
    return subprocess.run([ctx.tool, "stats", "--session", session] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=ctx.env(preload=False))


def stats_ok(ctx, session, *args):
    r = stats(ctx, session, *args)
    assert r.returncode == 0, "sockshim stats %s: exit %d\n%s" % (
        " ".join(args), r.returncode, r.stderr.decode())
    return r.stdout.decode(), r.stderr.decode()


# ---------------------------------------------------------------------------
# What the fixture's numbers must look like (see stats_fixture.c).

def cells(*pairs):
    return "  " + "   ".join("%-17s%9s" % p for p in pairs) + "\n"


WORKER_HEAD = "  %8s %8s %-16s %9s %9s %6s %9s %8s %8s %9s\n" % (
    "PID", "TID", "COMM", "CALLS", "ACCEPTS", "SHARE", "SPURIOUS", "EMPTY", "EINTR", "MEAN WAIT")


def worker_row(pid, tid, comm, calls, accepts, share, spurious, empty, eintr, mean):
    return "  %8d %8d %-16s %9d %9d %6s %9d %8d %8d %9s\n" % (
        pid, tid, comm, calls, accepts, share, spurious, empty, eintr, mean)


def block_a(fx):
    t1, t2, t3 = fx.tids
    return ("LISTENER 127.0.0.1:%d  inode %d  mode serialize  listen(backlog 7)\n"
            % (fx.port_a, fx.inode_a)
            + cells(("accepts", "500"), ("accept calls", "1600"), ("spurious wakeups", "1000"))
            + cells(("spurious/accept", "2.00"), ("empty accepts", "12"),
                    ("poll wakeups", "1400"))
            + cells(("EINTR", "3"), ("ECONNABORTED", "1"), ("EMFILE/ENFILE", "2"))
            + cells(("lock acquired", "500"), ("lock contended", "120"),
                    ("lock owner died", "1"))
            + cells(("lock wait p50", "<=2.0us"), ("lock wait p99", "<=2.1ms"),
                    ("lock wait max", "<=67ms"))
            + cells(("lock hold p50", "<=16us"), ("lock hold p99", "<=131us"),
                    ("waiters now/max", "2/3"))
            + cells(("fairness (Jain)", "0.893"), ("max/min accepts", "2.00"),
                    ("queue/backlog", "2/7"))
            + cells(("conns released", "500"), ("lifetime p50", "<=134ms"),
                    ("lifetime p99", ">=2.1s"))
            + cells(("aborted (RST)", "6"), ("CLOSE_WAIT p50", "<=17ms"),
                    ("CLOSE_WAIT p99", "<=134ms"))
            + "  gated by: the accept lock (blocking accept), 500 acquisitions; the poll token "
            "(poll/select), 40 waits with it, 37 hand-offs to a waiting worker; EPOLLEXCLUSIVE "
            "(epoll), 2 registrations\n"
            + "  lock bypassed: stopped 4, stalled 2, invalid word reset 1; tokens taken: "
            "stopped 3, stalled 0; unlock errors 1\n"
            + "  lock holder: pid %d tid %d (fxw1, sleeping) for HELD\n" % (fx.pid, t1)
            + WORKER_HEAD
            + worker_row(fx.pid, fx.pid, "stats_fixture", 640, 200, "40.0%", 400, 12, 0, "1.0us")
            + worker_row(fx.pid, t1, "fxw1", 320, 100, "20.0%", 200, 0, 1, "10us")
            + worker_row(fx.pid, t2, "fxw2", 320, 100, "20.0%", 200, 0, 1, "0ns")
            + worker_row(fx.pid, t3, "fxw3", 320, 100, "20.0%", 200, 0, 1, "1ns")
            + "  and 3 workers that ended (rows retired): 20 accepts, 4 spurious, 5 "
            "empty (in the totals above)\n"
            + "  and 2 more workers that did not fit in the table (in the totals above)\n"
            + "  1 worker rows skipped: their keys name no thread (corrupt)\n")


def block_b(fx):
    return ("LISTENER 127.0.0.1:%d  inode %d  mode observe  listen(backlog 5)\n"
            % (fx.port_b, fx.inode_b)
            + cells(("accepts", "0"), ("accept calls", "0"), ("spurious wakeups", "0"))
            + cells(("spurious/accept", "-"), ("empty accepts", "0"), ("poll wakeups", "0"))
            + cells(("EINTR", "0"), ("ECONNABORTED", "0"), ("EMFILE/ENFILE", "0"))
            + cells(("lock acquired", "0"), ("lock contended", "0"), ("lock owner died", "0"))
            + cells(("lock wait p50", "-"), ("lock wait p99", "-"), ("lock wait max", "-"))
            + cells(("lock hold p50", "-"), ("lock hold p99", "-"), ("waiters now/max", "0/0"))
            + cells(("fairness (Jain)", "1.000"), ("max/min accepts", "1.00"),
                    ("queue/backlog", "0/5"))
            + cells(("conns released", "0"), ("lifetime p50", "-"), ("lifetime p99", "-"))
            + cells(("aborted (RST)", "0"), ("CLOSE_WAIT p50", "-"), ("CLOSE_WAIT p99", "-"))
            + "  epoll: EPOLLEXCLUSIVE of the program's own, 3 registrations\n"
            + "  lock holder: none\n"
            + "  no worker has tried to accept on it yet\n")


def block_c(fx):
    return ("LISTENER -  inode %d  mode unknown(9)\n" % FAKE_INODE
            + cells(("accepts", "5"), ("accept calls", "5"), ("spurious wakeups", "0"))
            + cells(("spurious/accept", "0.00"), ("empty accepts", "0"), ("poll wakeups", "0"))
            + cells(("EINTR", "0"), ("ECONNABORTED", "0"), ("EMFILE/ENFILE", "0"))
            + cells(("lock acquired", "0"), ("lock contended", "0"), ("lock owner died", "0"))
            + cells(("lock wait p50", "-"), ("lock wait p99", "-"), ("lock wait max", "-"))
            + cells(("lock hold p50", "-"), ("lock hold p99", "-"), ("waiters now/max", "1/2"))
            + cells(("fairness (Jain)", "1.000"), ("max/min accepts", "1.00"),
                    ("queue/backlog", "-"))
            + cells(("conns released", "0"), ("lifetime p50", "-"), ("lifetime p99", "-"))
            + cells(("aborted (RST)", "0"), ("CLOSE_WAIT p50", "-"), ("CLOSE_WAIT p99", "-"))
            + "  lock holder: none\n"
            # Its one row's thread has ended: retired by the reader.
            + "  no live worker accepts on it now\n"
            + "  and 1 worker that ended (rows retired): 5 accepts, 0 spurious, 0 empty (in "
            "the totals above)\n")


def blocks(fx):
    """The three blocks in the command's order: by family (C has none),
    then address and port."""
    ab = [(fx.port_a, block_a(fx)), (fx.port_b, block_b(fx))]
    return [block_c(fx)] + [b for _, b in sorted(ab)]


def hide_held(text):
    """The holder's age grows while the test runs: one token stands for it."""
    return re.sub(r"(lock holder: pid \d+ tid \d+ \([^)]*\) for )\S+", r"\1HELD", text)


def hist_lines(title, counts):
    """bcc's funclatency layout, from the first non-empty bucket to the last."""
    used = [i for i, c in enumerate(counts) if c]
    top = max(counts)
    out = "  %s:\n     %-19s : count    distribution\n" % (title, "nsecs")
    for i in range(used[0], used[-1] + 1):
        lo = 0 if i == 0 else 1 << i
        hi = "inf" if i == BUCKETS - 1 else str((1 << (i + 1)) - 1)
        stars = counts[i] * 40 // top
        out += "%10s -> %-10s : %-8d |%s|\n" % (lo, hi, counts[i], ("*" * stars).ljust(40))
    return out


def hist_of(pairs):
    h = [0] * BUCKETS
    for i, c in pairs:
        h[i] = c
    return h


WAIT_HIST = hist_of([(10, 300), (12, 150), (20, 45), (25, 5)])
HOLD_HIST = hist_of([(13, 400), (16, 95), (31, 5)])
LIFE_HIST = hist_of([(23, 200), (26, 290), (31, 10)])
CLOSEWAIT_HIST = hist_of([(23, 40), (26, 10)])


# ---------------------------------------------------------------------------
# The table.

def test_stats_table_exact(ctx):
    fx = Fixture(ctx)
    out, err = stats_ok(ctx, fx.session)
    assert err == "", err
    m = re.search(r"lock holder: pid \d+ tid \d+ \(fxw1, sleeping\) for (\S+)\n", out)
    assert m and re.fullmatch(r"\d+(\.\d)?s", m.group(1)), "holder age: %r" % (m and m.group(1))
    age = float(m.group(1)[:-1])
    assert 1.5 <= age < 60, "the holder took the lock 1.5 s before the fixture said ready: %s" % age
    expected = "".join(b + "\n" for b in blocks(fx)) + FOOTER
    got = hide_held(out)
    assert got == expected, "table differs:\n--- got\n%s--- expected\n%s" % (got, expected)
    fx.close()


def test_stats_table_holder_gone(ctx):
    """A lock holder whose thread has ended (killed holding the lock, no
    waiter has looked yet) holds nothing: the table says none and whom the
    word still names, with no made-up name; JSON has no holder, the lock
    abandoned by that thread; Prometheus holds it 0 s. The same for the
    poll token's holder."""
    fx = Fixture(ctx)
    tid = int(fx.command("holder-gone"))
    out, err = stats_ok(ctx, fx.session)
    assert err == "", err
    want = ("  lock holder: none (pid %d tid %d ended holding the lock; the next waiter "
            "takes it over); poll token: none (pid %d tid %d ended holding it; the next "
            "waiter takes it over)\n" % (fx.pid, tid, fx.pid, tid))
    assert want in out, out
    out, err = stats_ok(ctx, fx.session, "--json")
    a = [o for o in map(json.loads, out.splitlines()) if o["inode"] == fx.inode_a]
    assert len(a) == 1 and a[0]["holder"] is None and a[0]["poll_token"] is None, out
    assert a[0]["lock"] == {"state": "abandoned", "word": tid, "pid": fx.pid, "tid": tid,
                            "bypassed": None}, a[0]["lock"]
    out, err = stats_ok(ctx, fx.session, "--prometheus")
    samples, _ = parse_prom(out)
    held = [v for (name, labels), v in samples.items()
            if name == "sockshim_lock_held_seconds" and ("inode", str(fx.inode_a)) in labels]
    assert held == ["0"], held
    fx.close()


def test_stats_table_hist(ctx):
    fx = Fixture(ctx)
    out, _ = stats_ok(ctx, fx.session, "--hist")
    none = ("  lock wait: no samples\n  lock hold: no samples\n"
            "  connection lifetime (accept to release): no samples\n"
            "  CLOSE_WAIT (peer EOF to release): no samples\n")
    with_hist = {
        "a": block_a(fx) + hist_lines("lock wait", WAIT_HIST) + hist_lines("lock hold", HOLD_HIST)
        + hist_lines("connection lifetime (accept to release)", LIFE_HIST)
        + hist_lines("CLOSE_WAIT (peer EOF to release)", CLOSEWAIT_HIST),
        "b": block_b(fx) + none,
        "c": block_c(fx) + none,
    }
    ab = sorted([(fx.port_a, "a"), (fx.port_b, "b")])
    expected = "".join(with_hist[k] + "\n" for k in ["c"] + [k for _, k in ab]) + FOOTER
    got = hide_held(out)
    assert got == expected, "table differs:\n--- got\n%s--- expected\n%s" % (got, expected)
    # The fullest bucket has all 40 stars; 5 of 300 none.
    assert "      1024 -> 2047       : 300      |%s|\n" % ("*" * 40) in out
    assert "2147483648 -> inf        : 5        |%s|\n" % (" " * 40) in out
    fx.close()


def test_stats_no_listener(ctx):
    fx = Fixture(ctx, empty=True)
    out, err = stats_ok(ctx, fx.session)
    assert out == NO_LISTENER % fx.session and err == "", (out, err)
    out, err = stats_ok(ctx, fx.session, "--json")
    assert out == "" and err == NO_LISTENER % fx.session, (out, err)
    out, err = stats_ok(ctx, fx.session, "--prometheus")
    assert out.endswith('sockshim_listeners{session="%s"} 0\n' % fx.session), out
    assert "sockshim_accepts_total" not in out, out
    fx.close()


def test_stats_usage_errors(ctx):
    fx = Fixture(ctx, empty=True)
    for args in (["--json", "--prometheus"], ["--watch", "0"], ["--watch", "abc"],
                 ["--watch", "nan"], ["--watch", "100000"], ["--prometheus", "--watch", "1"],
                 ["--bogus"], ["extra"], ["--watch"]):
        r = stats(ctx, fx.session, *args)
        err = r.stderr.decode()
        assert r.returncode == 2, "%s: exit %d, not 2" % (args, r.returncode)
        assert err.startswith("sockshim stats: ") and "Usage: sockshim stats" in err, err
    r = stats(ctx, "it-stats-no-such-session")
    assert r.returncode == 1, r.returncode
    assert 'session "it-stats-no-such-session" not found' in r.stderr.decode(), r.stderr
    r = stats(ctx, fx.session, "--help")
    assert r.returncode == 0 and r.stdout.decode().startswith("Usage: sockshim stats"), r
    r = subprocess.run([ctx.tool, "--help"], stdout=subprocess.PIPE, timeout=30)
    assert b"  stats [--session NAME] [--json | --prometheus] [--watch SECONDS] [--hist]\n" \
        in r.stdout, r.stdout
    fx.close()


# ---------------------------------------------------------------------------
# JSON.

def bound(lo, hi):
    return {"ge": lo, "lt": hi}


def expected_json(fx):
    t1, t2, t3 = fx.tids
    zero_hist = {"count": 0, "p50": None, "p99": None, "log2_hist": [0] * BUCKETS}

    def worker(tid, comm, calls, accepts, share, spurious, empty, eintr, wait, mean,
               waiting=False):
        return {"pid": fx.pid, "tid": tid, "comm": comm, "calls": calls, "accepts": accepts,
                "share": share, "spurious_wakeups": spurious, "empty_accepts": empty,
                "eintr": eintr, "lock_wait_ns": wait, "mean_lock_wait_ns": mean,
                "waiting": waiting}

    common = {"session": fx.session, "poll_token": None, "spurious_wakeups": 0,
              "empty_accepts": 0, "poll_wakeups": 0, "eintr": 0, "econnaborted": 0,
              "emfile_enfile": 0, "lock_acquisitions": 0, "lock_contended": 0,
              "lock_owner_died": 0, "lock_wait_ns": dict(zero_hist, max=None),
              "lock_hold_ns": zero_hist, "aborted": 0,
              "lifetime_ns": dict(zero_hist, max=None), "close_wait_ns": dict(zero_hist, max=None),
              "waiters": 0, "max_waiters": 0, "holder": None,
              "lock": {"state": "free", "word": 0, "bypassed": None},
              "lock_bypassed": {"stopped": 0, "stalled": 0, "invalid": 0},
              "token_taken": {"stopped": 0, "stalled": 0, "invalid": 0}, "unlock_errors": 0,
              "poll_token_waits": 0, "poll_token_handoffs": 0,
              "epoll_exclusive_registrations": 0, "closed": False,
              "fairness_jain": 1, "max_min_ratio": 1, "worker_overflow": 0,
              "bad_worker_rows": 0,
              "retired_workers": {"count": 0, "calls": 0, "accepts": 0, "spurious": 0,
                                  "empty": 0, "eintr": 0}}
    a = dict(common, **{
        "local": "127.0.0.1:%d" % fx.port_a, "inode": fx.inode_a, "mode": "serialize",
        "listen_backlog": 7, "accepts": 500, "accept_calls": 1600, "spurious_wakeups": 1000,
        "spurious_per_accept": 2, "empty_accepts": 12, "poll_wakeups": 1400, "eintr": 3,
        "econnaborted": 1, "emfile_enfile": 2, "lock_acquisitions": 500,
        "lock_contended": 120, "lock_owner_died": 1,
        "lock_wait_ns": {"count": 500, "p50": bound(1024, 2048),
                         "p99": bound(1 << 20, 1 << 21), "max": bound(1 << 25, 1 << 26),
                         "log2_hist": WAIT_HIST},
        "lock_hold_ns": {"count": 500, "p50": bound(8192, 16384),
                         "p99": bound(65536, 131072), "log2_hist": HOLD_HIST},
        "aborted": 6,
        "lifetime_ns": {"count": 500, "p50": bound(1 << 26, 1 << 27),
                        "p99": {"ge": 1 << 31, "lt": None}, "max": {"ge": 1 << 31, "lt": None},
                        "log2_hist": LIFE_HIST},
        "close_wait_ns": {"count": 50, "p50": bound(1 << 23, 1 << 24),
                          "p99": bound(1 << 26, 1 << 27), "max": bound(1 << 26, 1 << 27),
                          "log2_hist": CLOSEWAIT_HIST},
        "waiters": 2, "max_waiters": 3,
        "holder": {"pid": fx.pid, "tid": t1, "held_ns": "HELD"},
        "lock": {"state": "held", "word": t1, "pid": fx.pid, "tid": t1, "comm": "fxw1",
                 "thread_state": "S", "state_text": "sleeping", "held_ns": "HELD",
                 "bypassed": None},
        "lock_bypassed": {"stopped": 4, "stalled": 2, "invalid": 1},
        "token_taken": {"stopped": 3, "stalled": 0, "invalid": 0}, "unlock_errors": 1,
        "poll_token_waits": 40, "poll_token_handoffs": 37, "epoll_exclusive_registrations": 2,
        "fairness_jain": 250000 / 280000, "max_min_ratio": 2,
        "queue_length": 2, "queue_backlog": 7, "worker_overflow": 2, "bad_worker_rows": 1,
        "retired_workers": {"count": 3, "calls": 30, "accepts": 20, "spurious": 4, "empty": 5,
                            "eintr": 1},
        "workers": [worker(fx.pid, "stats_fixture", 640, 200, 0.4, 400, 12, 0, 640000, 1000),
                    worker(t1, "fxw1", 320, 100, 0.2, 200, 0, 1, 3200000, 10000),
                    worker(t2, "fxw2", 320, 100, 0.2, 200, 0, 1, 0, 0, waiting=True),
                    worker(t3, "fxw3", 320, 100, 0.2, 200, 0, 1, 320, 1, waiting=True)]})
    b = dict(common, **{
        "local": "127.0.0.1:%d" % fx.port_b, "inode": fx.inode_b, "mode": "observe",
        "listen_backlog": 5, "accepts": 0, "accept_calls": 0, "spurious_per_accept": None,
        "queue_length": 0, "queue_backlog": 5, "epoll_exclusive_registrations": 3,
        "workers": []})
    c = dict(common, **{
        "local": None, "inode": FAKE_INODE, "mode": "unknown(9)", "listen_backlog": None,
        "accepts": 5, "accept_calls": 5, "spurious_per_accept": 0, "queue_length": None,
        "queue_backlog": None, "workers": [], "closed": None, "waiters": 1, "max_waiters": 2,
        "retired_workers": {"count": 1, "calls": 5, "accepts": 5, "spurious": 0, "empty": 0,
                            "eintr": 0}})
    return [c] + [x for _, x in sorted([(fx.port_a, a), (fx.port_b, b)],
                                       key=lambda p: p[0])]


def test_stats_json_exact(ctx):
    fx = Fixture(ctx)
    out, err = stats_ok(ctx, fx.session, "--json")
    assert err == "", err
    lines = out.splitlines()
    assert len(lines) == 3, out
    got = [json.loads(l) for l in lines]
    for obj in got:
        if obj["holder"]:
            held = obj["holder"]["held_ns"]
            assert 1500000000 <= held < 60 * 10**9, held
            obj["holder"]["held_ns"] = "HELD"
            assert obj["lock"]["held_ns"] == held, obj["lock"]
            obj["lock"]["held_ns"] = "HELD"
    exp = expected_json(fx)
    for g, e in zip(got, exp):
        assert g == e, "JSON differs:\n got %s\nwant %s" % (
            json.dumps(g, sort_keys=True), json.dumps(e, sort_keys=True))
    # The keys the issue names, on every object.
    for obj in got:
        for k in ("local", "inode", "mode", "accepts", "spurious_wakeups", "empty_accepts",
                  "workers"):
            assert k in obj, k
        for w in obj["workers"]:
            assert {"pid", "tid", "accepts"} <= set(w), w
    fx.close()


# ---------------------------------------------------------------------------
# Prometheus.

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def parse_prom(text):
    """{(name, frozenset of label items): value} and {family: type}; fails
    on a line that is neither a sample nor a HELP/TYPE comment."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, fam, typ = line.split(" ", 3)
            assert fam not in types, "family %s described twice" % fam
            types[fam] = typ
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(3) or ""))
        key = (m.group(1), labels)
        assert key not in samples, "sample twice: %s" % line
        samples[key] = m.group(4)
    return samples, types


def lbl(**kw):
    return frozenset(kw.items())


def test_stats_prometheus_exact(ctx):
    fx = Fixture(ctx)
    out, err = stats_ok(ctx, fx.session, "--prometheus")
    assert err == "", err
    samples, types = parse_prom(out)
    s = fx.session
    a = dict(session=s, listener="127.0.0.1:%d" % fx.port_a, inode=str(fx.inode_a))
    b = dict(session=s, listener="127.0.0.1:%d" % fx.port_b, inode=str(fx.inode_b))
    c = dict(session=s, listener="-", inode=str(FAKE_INODE))
    want = {
        ("sockshim_listeners", lbl(session=s)): "3",
        ("sockshim_listener_info", lbl(mode="serialize", **a)): "1",
        ("sockshim_listener_info", lbl(mode="observe", **b)): "1",
        ("sockshim_listener_info", lbl(mode="unknown(9)", **c)): "1",
        ("sockshim_accepts_total", lbl(**a)): "500",
        ("sockshim_accepts_total", lbl(**b)): "0",
        ("sockshim_accepts_total", lbl(**c)): "5",
        ("sockshim_accept_calls_total", lbl(**a)): "1600",
        ("sockshim_spurious_wakeups_total", lbl(**a)): "1000",
        ("sockshim_empty_accepts_total", lbl(**a)): "12",
        ("sockshim_listener_wakeups_total", lbl(**a)): "1400",
        ("sockshim_accept_errors_total", lbl(error="EINTR", **a)): "3",
        ("sockshim_accept_errors_total", lbl(error="ECONNABORTED", **a)): "1",
        ("sockshim_accept_errors_total", lbl(error="EMFILE_ENFILE", **a)): "2",
        ("sockshim_lock_acquisitions_total", lbl(**a)): "500",
        ("sockshim_lock_contended_total", lbl(**a)): "120",
        ("sockshim_lock_owner_died_total", lbl(**a)): "1",
        ("sockshim_lock_unlock_errors_total", lbl(**a)): "1",
        ("sockshim_lock_bypassed_total", lbl(reason="stopped", **a)): "4",
        ("sockshim_lock_bypassed_total", lbl(reason="stalled", **a)): "2",
        ("sockshim_lock_bypassed_total", lbl(reason="invalid", **a)): "1",
        ("sockshim_token_taken_total", lbl(reason="stopped", **a)): "3",
        ("sockshim_token_taken_total", lbl(reason="stalled", **b)): "0",
        ("sockshim_worker_overflow_total", lbl(**a)): "2",
        ("sockshim_retired_workers_total", lbl(**a)): "3",
        ("sockshim_retired_worker_accepts_total", lbl(**a)): "20",
        ("sockshim_retired_workers_total", lbl(**b)): "0",
        ("sockshim_lock_waiters", lbl(**a)): "2",
        ("sockshim_lock_max_waiters", lbl(**a)): "3",
        ("sockshim_lock_waiters", lbl(**c)): "1",
        ("sockshim_lock_max_waiters", lbl(**c)): "2",
        ("sockshim_accept_queue_length", lbl(**a)): "2",
        ("sockshim_accept_backlog", lbl(**a)): "7",
        ("sockshim_accept_queue_length", lbl(**b)): "0",
        ("sockshim_accept_backlog", lbl(**b)): "5",
        ("sockshim_listener_closed", lbl(**a)): "0",
        ("sockshim_listener_closed", lbl(**b)): "0",
        ("sockshim_workers", lbl(**a)): "4",
        ("sockshim_fairness_jain", lbl(**a)): repr(250000 / 280000),
        ("sockshim_fairness_jain", lbl(**b)): "1",
        ("sockshim_accepts_max_min_ratio", lbl(**a)): "2",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="0.000001024", **a)): "0",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="0.000002048", **a)): "300",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="0.000008192", **a)): "450",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="0.002097152", **a)): "495",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="0.067108864", **a)): "500",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="2.147483648", **a)): "500",
        ("sockshim_lock_wait_seconds_bucket", lbl(le="+Inf", **a)): "500",
        ("sockshim_lock_wait_seconds_count", lbl(**a)): "500",
        ("sockshim_lock_hold_seconds_bucket", lbl(le="2.147483648", **a)): "495",
        ("sockshim_lock_hold_seconds_bucket", lbl(le="+Inf", **a)): "500",
        ("sockshim_worker_accepts_total", lbl(pid=str(fx.pid), tid=str(fx.pid), **a)): "200",
        ("sockshim_worker_accepts_total",
         lbl(pid=str(fx.pid), tid=str(fx.tids[0]), **a)): "100",
        # C's one row, of a thread that has ended, is retired by the reader.
        ("sockshim_retired_workers_total", lbl(**c)): "1",
        ("sockshim_retired_worker_accepts_total", lbl(**c)): "5",
        ("sockshim_poll_token_waits_total", lbl(**a)): "40",
        ("sockshim_poll_token_handoffs_total", lbl(**a)): "37",
        ("sockshim_poll_token_handoffs_total", lbl(**b)): "0",
        ("sockshim_epoll_exclusive_registrations_total", lbl(**a)): "2",
        ("sockshim_epoll_exclusive_registrations_total", lbl(**b)): "3",
        ("sockshim_worker_lock_wait_seconds_total",
         lbl(pid=str(fx.pid), tid=str(fx.tids[0]), **a)): "0.0032",
        ("sockshim_aborted_connections_total", lbl(**a)): "6",
        ("sockshim_aborted_connections_total", lbl(**b)): "0",
        ("sockshim_connection_lifetime_seconds_bucket", lbl(le="0.008388608", **a)): "0",
        ("sockshim_connection_lifetime_seconds_bucket", lbl(le="0.016777216", **a)): "200",
        ("sockshim_connection_lifetime_seconds_bucket", lbl(le="0.134217728", **a)): "490",
        ("sockshim_connection_lifetime_seconds_bucket", lbl(le="2.147483648", **a)): "490",
        ("sockshim_connection_lifetime_seconds_bucket", lbl(le="+Inf", **a)): "500",
        ("sockshim_connection_lifetime_seconds_count", lbl(**a)): "500",
        ("sockshim_connection_lifetime_seconds_count", lbl(**b)): "0",
        ("sockshim_close_wait_seconds_bucket", lbl(le="0.016777216", **a)): "40",
        ("sockshim_close_wait_seconds_bucket", lbl(le="0.134217728", **a)): "50",
        ("sockshim_close_wait_seconds_count", lbl(**a)): "50",
    }
    for k, v in want.items():
        assert samples.get(k) == v, "%s %s: got %r, want %r" % (
            k[0], dict(k[1]), samples.get(k), v)
    # _sum from bucket midpoints: 300 x 1536 + 150 x 6144 + 45 x 1572864 + 5 x 50331648 ns.
    approx = (300 * 1536 + 150 * 6144 + 45 * 1572864 + 5 * 50331648) / 1e9
    got = float(samples[("sockshim_lock_wait_seconds_sum", lbl(**a))])
    assert abs(got - approx) < 1e-12, (got, approx)
    held = float(samples[("sockshim_lock_held_seconds", lbl(**a))])
    assert 1.5 <= held < 60, held
    assert not any(n == "sockshim_worker_accepts_total" and dict(l).get("inode") == str(FAKE_INODE)
                   for (n, l) in samples), "C's ended worker has a row"
    # The corrupt entry C has no queue: the kernel does not list it.
    assert ("sockshim_accept_queue_length", lbl(**c)) not in samples
    # Nor can the kernel tell whether it is closed (no family: not TCP).
    assert ("sockshim_listener_closed", lbl(**c)) not in samples
    # 31 finite bounds and +Inf per histogram and listener.
    assert sum(1 for (n, l) in samples if n == "sockshim_lock_wait_seconds_bucket") == 3 * 32
    for fam, typ in types.items():
        assert fam.startswith("sockshim_"), fam
        assert (typ == "counter") == fam.endswith("_total"), (fam, typ)
    assert types["sockshim_lock_wait_seconds"] == "histogram"
    assert types["sockshim_lock_hold_seconds"] == "histogram"
    assert types["sockshim_connection_lifetime_seconds"] == "histogram"
    assert types["sockshim_close_wait_seconds"] == "histogram"
    fx.close()


def test_stats_promtool(ctx):
    promtool = srvlib.need("promtool", "prometheus")
    fx = Fixture(ctx)
    out, _ = stats_ok(ctx, fx.session, "--prometheus")
    r = subprocess.run([promtool, "check", "metrics"], input=out.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, "promtool check metrics:\n%s" % r.stdout.decode()
    assert r.stdout.decode().strip() == "", "promtool's lint: %s" % r.stdout.decode()
    fx.close()
    # An empty session passes too.
    fx = Fixture(ctx, empty=True)
    out, _ = stats_ok(ctx, fx.session, "--prometheus")
    r = subprocess.run([promtool, "check", "metrics"], input=out.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout.decode()
    fx.close()


def _query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        body = json.loads(resp.read().decode())
    assert body.get("status") == "success", body
    return body["data"]["result"]


def _wait_value(port, expr, want, proc, what):
    """Poll Prometheus until EXPR has the single value WANT (a string, or a
    float to compare within 1e-15). Bounded."""
    deadline = time.monotonic() + PROM_WAIT
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("prometheus exited with %s" % proc.returncode)
        try:
            last = _query(port, expr)
            if len(last) == 1 and (last[0]["value"][1] == want if isinstance(want, str)
                                   else abs(float(last[0]["value"][1]) - want) < 1e-15):
                return last[0]
        except OSError as e:
            last = "%s" % e
        time.sleep(0.25)
    raise AssertionError("%s: %s did not become %s within %.0fs; last answer %s"
                         % (what, expr, want, PROM_WAIT, last))


def test_stats_prometheus_scrape(ctx):
    prometheus = srvlib.find_program("prometheus")
    if not prometheus:
        raise lib.Skip("prometheus is not installed (apt-get install -y prometheus): no real "
                       "server to scrape sockshim stats --prometheus")
    fx = Fixture(ctx)
    www = os.path.join(ctx.tmp, "www")
    os.mkdir(www)

    def publish():
        out, _ = stats_ok(ctx, fx.session, "--prometheus")
        tmp = os.path.join(www, ".metrics.tmp")
        with open(tmp, "w") as f:
            f.write(out)
        os.rename(tmp, os.path.join(www, "metrics"))  # never a half-written file

    publish()
    http_port = lib.free_port()
    http = ctx.spawn([srvlib.python3(), "-m", "http.server", "--bind", "127.0.0.1",
                      "--directory", www, str(http_port)], preload=False, name="http",
                     valgrind=False)
    lib.wait_port(http_port, timeout=WAIT, proc=http)
    prom_port = lib.free_port()
    conf = os.path.join(ctx.tmp, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: sockshim\n    metrics_path: /metrics\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % http_port)
    prom = ctx.spawn([prometheus, "--config.file=" + conf,
                      "--storage.tsdb.path=" + os.path.join(ctx.tmp, "tsdb"),
                      "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"],
                     preload=False, name="prometheus", valgrind=False)
    try:
        lib.wait_port(prom_port, timeout=PROM_WAIT, proc=prom)
        listener = "127.0.0.1:%d" % fx.port_a
        expr = 'sockshim_accepts_total{listener="%s"}' % listener
        got = _wait_value(prom_port, expr, "500", prom, "first scrape")
        assert got["metric"]["session"] == fx.session, got
        assert got["metric"]["inode"] == str(fx.inode_a), got
        assert got["metric"]["job"] == "sockshim", got
        _wait_value(prom_port, 'up{job="sockshim"}', "1", prom, "target health")
        _wait_value(prom_port, 'sockshim_accept_queue_length{listener="%s"}' % listener, "2",
                    prom, "accept queue")
        # Prometheus interpolates inside the bucket: rank 250 of the 300
        # values in [1.024, 2.048) us.
        _wait_value(prom_port, 'histogram_quantile(0.5, sockshim_lock_wait_seconds_bucket'
                    '{listener="%s"})' % listener, 1.024e-6 * (1 + 250 / 300), prom,
                    "median lock wait")
        # A new value in the segment reaches Prometheus at the next scrape.
        fx.command("accepts 777")
        publish()
        _wait_value(prom_port, expr, "777", prom, "after the counter moved")
    finally:
        status = lib.stop(prom, grace=10.0)
        lib.stop(http)
    assert status == 0, "prometheus ended with %s after SIGTERM, not 0" % status
    out, err = ctx.output(prom)
    assert "level=error" not in err, err[-3000:]
    fx.close()


# ---------------------------------------------------------------------------
# --watch.

def test_stats_watch_pipe(ctx):
    fx = Fixture(ctx)
    p = subprocess.Popen([ctx.tool, "stats", "--session", fx.session, "--watch", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ctx.env(preload=False), start_new_session=True)
    ctx._procs.append(p)
    buf = b""
    deadline = time.monotonic() + WAIT
    header = ('sockshim stats: session "%s", every 0.2s, at ' % fx.session).encode()
    while buf.count(header) < 3 and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            buf += os.read(p.stdout.fileno(), 65536)
    assert buf.count(header) >= 3, buf[-2000:]
    p.send_signal(signal.SIGTERM)
    rest, err = p.communicate(timeout=WAIT)
    assert p.returncode == 0, "after SIGTERM: exit %s, %s" % (p.returncode, err)
    text = (buf + rest).decode()
    assert "\033" not in text, "escape codes on a pipe"
    # Frames one after another, a blank line between them.
    assert text.startswith("sockshim stats: "), text[:200]
    frames = text[len("sockshim stats: "):].split("\n\nsockshim stats: ")
    assert len(frames) >= 3, text[-2000:]
    # Every frame is a whole snapshot, headed by its time.
    for i, fr in enumerate(frames):
        if i + 1 < len(frames):
            fr += "\n"  # the split took the last frame's own newline
        assert re.match(r'session "%s", every 0\.2s, at \d\d:\d\d:\d\d\n\n' % re.escape(
            fx.session), fr), fr[:200]
        body = hide_held(fr.split("\n\n", 1)[1])
        assert body.startswith(blocks(fx)[0]), body[:400]
        assert body.endswith(FOOTER), body[-400:]

    # The reader goes away: stats ends on its own, exit 0.
    p = subprocess.Popen([ctx.tool, "stats", "--session", fx.session, "--watch", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ctx.env(preload=False), start_new_session=True)
    ctx._procs.append(p)
    assert select.select([p.stdout], [], [], WAIT)[0], "no first frame"
    p.stdout.close()
    assert p.wait(timeout=WAIT) == 0, p.returncode

    # SIGINT too; and JSON lines carry their time when watched.
    p = subprocess.Popen([ctx.tool, "stats", "--session", fx.session, "--watch", "0.2",
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ctx.env(preload=False), start_new_session=True)
    ctx._procs.append(p)
    buf = b""
    deadline = time.monotonic() + WAIT
    while buf.count(b"\n") < 6 and time.monotonic() < deadline:
        if select.select([p.stdout], [], [], 0.5)[0]:
            buf += os.read(p.stdout.fileno(), 65536)
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=WAIT)
    assert p.returncode == 0, p.returncode
    for line in (buf + rest).decode().splitlines():
        obj = json.loads(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", obj["time"]), obj["time"]
    fx.close()


def test_stats_watch_tty_and_session_end(ctx):
    fx = Fixture(ctx)
    master, slave = pty.openpty()
    p = subprocess.Popen([ctx.tool, "stats", "--session", fx.session, "--watch", "0.2"],
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                         env=ctx.env(preload=False), start_new_session=True)
    ctx._procs.append(p)
    os.close(slave)
    buf = b""
    deadline = time.monotonic() + WAIT
    try:
        while buf.count(b"\033[H") < 2 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    buf += os.read(master, 65536)
                except OSError:
                    break
        assert buf.count(b"\033[H") >= 2, buf[-2000:]
        # Redrawn in place: home, lines cleared to their end, the rest of
        # the screen cleared; no blank line between frames.
        first = buf.split(b"\033[H")[1]
        assert first.endswith(b"\033[J"), first[-200:]
        assert b"LISTENER 127.0.0.1:%d" % fx.port_a in first
        assert b"\033[K\r\n" in first  # the terminal turns \n into \r\n
        # The fixture ends and removes the session: stats says so, exit 0.
        fx.close()
        status = p.wait(timeout=WAIT)
        err = p.stderr.read().decode()
        assert status == 0, (status, err)
        assert err == 'sockshim: session "%s" ended (its segment was removed)\n' % fx.session, err
    finally:
        os.close(master)


# ---------------------------------------------------------------------------
# The real shim.

@contextlib.contextmanager
def _prefork_served(ctx, mode, connections=60, workers=4, model=()):
    """prefork_server -w WORKERS (-m MODEL: how its workers wait) under
    sockshim run --accept MODE, CONNECTIONS sequential clients served;
    yields the session, the port and the replies, the server still up."""
    s = ctx.session(mode)
    portfile = os.path.join(ctx.tmp, "port")
    server = os.path.join(ctx.build, "examples", "prefork_server")
    client = os.path.join(ctx.build, "examples", "demo_client")
    run = ctx.spawn([ctx.tool, "run", "--session", s, "--accept", mode, "--", server, "-w",
                     str(workers), "-f", portfile] + (["-m", model] if model else []),
                    preload=False, extra_env=srvlib.run_env(ctx), name="run")
    try:
        lib.wait_for_file(portfile, run, WAIT, "sockshim run -- prefork_server")
        with open(portfile) as f:
            port = int(f.read().split()[0])
        r = ctx.run([client, "-p", str(port), "-n", str(connections)], preload=False,
                    timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("hello from worker") == connections, r.stdout
        yield s, port, r.stdout
    finally:
        # Every process of the run's group, by the group's id (the run's pid).
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run.wait(timeout=WAIT)


def _prefork_stats(ctx, mode, connections=60, workers=4):
    """prefork_server -w WORKERS under sockshim run --accept MODE, CONNECTIONS
    sequential clients, then `sockshim stats --json` of its listener."""
    with _prefork_served(ctx, mode, connections, workers) as (s, port, replies):
        out, err = stats_ok(ctx, s, "--json")
        objs = [json.loads(l) for l in out.splitlines()]
        table, _ = stats_ok(ctx, s)
        prom, _ = stats_ok(ctx, s, "--prometheus")
        return port, objs, table, prom, replies


def _check_prefork(port, objs, table, prom, replies, connections, workers):
    assert len(objs) == 1, objs
    o = objs[0]
    assert o["local"] == "127.0.0.1:%d" % port, o["local"]
    assert o["accepts"] == connections, o
    assert o["accept_calls"] >= connections, o
    assert len(o["workers"]) == workers, o["workers"]
    assert sum(w["accepts"] for w in o["workers"]) == connections, o["workers"]
    # Each worker's count matches the replies it signed.
    for w in o["workers"]:
        assert replies.count("hello from worker %d\n" % w["pid"]) == w["accepts"], (w, replies)
        assert w["comm"] == "prefork_server", w
    assert 0 < o["fairness_jain"] <= 1, o
    assert o["queue_backlog"] == 128 and o["queue_length"] == 0, o
    assert "LISTENER 127.0.0.1:%d" % port in table, table
    assert 'sockshim_accepts_total{session=' in prom and ' %d\n' % connections in prom
    return o


def test_stats_real_shim_observe(ctx):
    port, objs, table, prom, replies = _prefork_stats(ctx, "observe")
    o = _check_prefork(port, objs, table, prom, replies, 60, 4)
    assert o["mode"] == "observe", o
    assert o["lock_acquisitions"] == 0 and o["lock_wait_ns"]["count"] == 0, o


def test_stats_real_shim_serialize(ctx):
    port, objs, table, prom, replies = _prefork_stats(ctx, "serialize")
    o = _check_prefork(port, objs, table, prom, replies, 60, 4)
    assert o["mode"] == "serialize", o
    # Every accepted connection came through the lock; one worker holds it
    # again, blocked in accept for the next one.
    assert o["lock_acquisitions"] >= 60, o
    assert o["lock_wait_ns"]["count"] == o["lock_acquisitions"], o
    assert o["holder"] is not None, o


# The table's poll token clause: its waits and its hand-offs.
TOKEN_CLAUSE = re.compile(r"^  gated by:.* the poll token \(poll/select\), (\d+) waits with it, "
                          r"(\d+) hand-offs to a waiting worker[;\n]", re.M)


def _token_shown(ctx, session, port):
    """The poll token's hand-offs of the listener on PORT: as the segment
    counts them (segment.py, read from /dev/shm) and as `sockshim stats`
    shows them in JSON, Prometheus and the table (None: no token clause),
    all four read while the segment's token counts did not move (read
    before and after the three commands, and the same). Also the JSON
    object and the table."""
    local = "127.0.0.1:%d" % port

    def raw():
        hits = [e for e in segment.raw_listeners(ctx, session) if e["local"] == local]
        assert len(hits) == 1, hits
        return hits[0]["token_handoffs"], hits[0]["token_waits"]

    for _ in range(20):
        before = raw()
        objs = [json.loads(l) for l in stats_ok(ctx, session, "--json")[0].splitlines()]
        assert len(objs) == 1 and objs[0]["local"] == local, objs
        samples, types = parse_prom(stats_ok(ctx, session, "--prometheus")[0])
        table = stats_ok(ctx, session)[0]
        if raw() != before:
            time.sleep(0.05)
            continue
        assert types.get("sockshim_poll_token_handoffs_total") == "counter", types
        prom = samples[("sockshim_poll_token_handoffs_total",
                        lbl(session=session, listener=local, inode=str(objs[0]["inode"])))]
        m = TOKEN_CLAUSE.findall(table)
        assert len(m) <= 1, table
        shown = (int(m[0][0]), int(m[0][1])) if m else None
        assert objs[0]["poll_token_waits"] == before[1], (objs[0], before)
        return before[0], objs[0], int(prom), shown, table
    raise AssertionError("the poll token's hand-offs of %s moved at every read" % local)


def test_stats_real_shim_poll_token_handoffs(ctx):
    """prefork_server -m poll (4 workers waiting in poll) under serialize:
    the poll token's hand-offs, as the segment counts them, are what JSON,
    Prometheus and the table show, and there are some (a worker that gives
    the token back at its accept wakes the next waiting one for it)."""
    connections = 60
    with _prefork_served(ctx, "serialize", connections, 4, "poll") as (s, port, replies):
        raw, obj, prom, shown, table = _token_shown(ctx, s, port)
    print("    %d connections: %d hand-offs, %d waits with the token; table: %s" % (
        connections, raw, obj["poll_token_waits"], shown), flush=True)
    assert obj["mode"] == "serialize" and obj["accepts"] == connections, obj
    assert raw > 0, obj
    assert obj["poll_token_handoffs"] == raw, (obj["poll_token_handoffs"], raw)
    assert prom == raw, (prom, raw)
    assert shown == (obj["poll_token_waits"], raw), (shown, table)
    # Handed over at most once per hold of the token.
    assert raw <= obj["poll_token_waits"], obj


def test_stats_real_shim_poll_token_observe(ctx):
    """The same pool under observe: no token, so no hand-off: 0 in the
    segment, 0 in JSON and Prometheus, and no token clause in the table."""
    connections = 60
    with _prefork_served(ctx, "observe", connections, 4, "poll") as (s, port, replies):
        raw, obj, prom, shown, table = _token_shown(ctx, s, port)
    assert obj["mode"] == "observe" and obj["accepts"] == connections, obj
    assert (raw, obj["poll_token_handoffs"], obj["poll_token_waits"], prom) == (0, 0, 0, 0), \
        (raw, obj, prom)
    assert shown is None and "hand-off" not in table and "gated by" not in table, table
