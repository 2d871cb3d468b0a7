"""The peer of an accepted connection, however the program asks accept for
its address (tests/progs/acceptaddr.c: none, through libc and through
syscall(), a whole buffer, a truncated one, a zero length, a bad address
pointer, a bad length pointer, IPv6, a Unix listener):

- the program gets exactly what it gets without the shim (result, errno,
  length left), in observe and in serialize;
- the shim records each accepted connection's peer exactly (its event
  and its ledger entry name the client's port), and a failed accept as
  failed with the kernel's errno;
- when the program asks for no address, the shim hands the kernel its
  own buffer instead of asking getpeername afterwards (strace counts the
  calls); when the program's whole buffer is in the main thread's
  frames, the shim reads the peer there, after the kernel wrote it; a
  Unix listener's connections are not asked at all.
"""

import shutil
import subprocess

import lib
import segment

CASES = ("null", "null4", "sys", "buf", "short", "zero", "heap", "thread", "efault", "lenfault",
         "null6", "buf6", "unix")
# The cases that pass accept a bad pointer: a sanitizer's own accept
# interceptor reads through it first and dies (SEGV in the runtime, before
# any shim code runs), so those runs leave them out. valgrind reports the
# system call's bad parameter: tests/integration/valgrind.supp says those
# are on purpose (a read of the pointer by the shim is still reported).
FAULTS = ("efault", "lenfault")
# The cases where the program passes no address: the shim passes its own.
NO_ADDRESS = ("null", "null4", "sys", "null6")
# A whole buffer in the main thread's frames: the shim reads the peer
# there, after the kernel wrote it.
IN_MAIN_FRAMES = ("buf", "buf6")
# A buffer of the program's the shim does not read: a getpeername each
# (truncated, on the heap, on another thread's stack).
NOT_READ = ("short", "zero", "heap", "thread")
# The peer each accepted inet connection must be recorded with.
PEER_IP = {"null6": "[::1]", "buf6": "[::1]"}


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def cases(ctx):
    """The cases this build can run (no bad pointers under a sanitizer)."""
    return tuple(c for c in CASES if not (ctx.sanitizer and c in FAULTS))


def parse(out, want):
    """acceptaddr's lines: {case: (ok, errno, len, client_port)}."""
    res = {}
    for line in out.splitlines():
        name, ok, err, length, port = line.split()
        res[name] = (ok, int(err), int(length), int(port))
    assert tuple(res) == want, out
    return res


def run_cases(ctx, session=None, mode=None, preload=True):
    want = cases(ctx)
    r = ctx.run([ctx.prog("acceptaddr")] + list(want), session=session, preload=preload,
                extra_env={"SOCKSHIM_ACCEPT": mode} if mode else None, timeout=60)
    assert r.returncode == 0, r.stderr
    return parse(r.stdout, want)


def test_accept_addr_results_and_peers(ctx):
    """Every case ends as without the shim; every accepted connection's
    peer is recorded exactly, in its event and in its ledger entry."""
    bare = run_cases(ctx, preload=False)
    assert ctx.sanitizer or (bare["efault"][:2] == ("fail", 14) and
                             bare["lenfault"][:2] == ("fail", 14)), bare
    assert bare["short"][2] == 16 and bare["zero"][2] == 16 and bare["buf6"][2] == 28, bare
    for mode in ("observe", "serialize"):
        session = ctx.session(mode)
        got = run_cases(ctx, session, mode)
        # Ports differ from run to run; the rest must not.
        assert {k: v[:3] for k, v in got.items()} == {k: v[:3] for k, v in bare.items()}, \
            (mode, got, bare)
        evs = [e for e in ctx.events(session) if e["type"] == "accept"]
        ok = [c for c in cases(ctx) if got[c][0] == "ok"]
        assert len(evs) == len(cases(ctx)), (mode, evs)
        ledger = segment.raw_ledger(ctx, session).socks
        for case, e in zip(cases(ctx), evs):
            if case in FAULTS:
                assert e["ret"] == -1 and e["errno"] == 14, (mode, case, e)
                continue
            assert e["ret"] >= 0, (mode, case, e)
            entry = ledger[e["inode"]]
            if case == "unix":
                assert e["peer"] is None and entry["peer"] is None, (mode, case, e, entry)
                continue
            want = "%s:%d" % (PEER_IP.get(case, "127.0.0.1"), got[case][3])
            assert e["peer"] == want and entry["peer"] == want, (mode, case, e, entry, want)
            assert entry["born_name"] == "accept" and entry["refs"] == 0, (mode, case, entry)
        say("%s: %d cases as without the shim, %d accepted connections' peers exact",
            mode, len(cases(ctx)), len(ok))


def address_calls(ctx, session, cases, preload=True):
    """{name: count} of the getpeername and getsockname calls acceptaddr
    CASES makes (under the preload when PRELOAD), by strace."""
    env = ["-E", "LD_PRELOAD=%s" % ctx.env()["LD_PRELOAD"],
           "-E", "SOCKSHIM_SESSION=%s" % session] if preload else []
    argv = ["strace", "-f", "-qq", "-e", "trace=getpeername,getsockname", "-o", "/dev/stderr"] \
        + env + [ctx.prog("acceptaddr")] + list(cases)
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=ctx.env(preload=False), cwd=ctx.tmp)
    assert r.returncode == 0, r.stderr.decode()
    assert len(r.stdout.decode().splitlines()) == len([c for c in cases if c in CASES]), r.stdout
    lines = r.stderr.decode().splitlines()
    return {name: sum(1 for l in lines if name + "(" in l) for name in ("getpeername",
                                                                         "getsockname")}


def test_accept_addr_no_getpeername(ctx):
    """No address asked: the accept's own answer names the peer, no
    getpeername follows; neither for a whole buffer in the main thread's
    frames (read there); a Unix connection (accepted or connected) is
    asked nothing; a buffer of the program's that the shim does not read
    (truncated, on the heap, on another thread's stack) costs one
    getpeername each."""
    if not shutil.which("strace"):
        raise lib.Skip("strace is not installed (apt-get install -y strace)")
    if ctx.valgrind or ctx.sanitizer:
        raise lib.Skip("strace of a sanitized or valgrind run counts their calls too")
    session = ctx.session()
    # The listeners alone (no case): what the shim asks of them (their
    # port, bound to port 0) is the same in every run.
    setup_bare = address_calls(ctx, session, ("none",), preload=False)
    setup_shim = address_calls(ctx, session, ("none",))
    for cases, more_peer in ((NO_ADDRESS, 0), (("unix",), 0), (IN_MAIN_FRAMES, 0),
                             (NOT_READ, len(NOT_READ))):
        bare = address_calls(ctx, session, cases, preload=False)
        shim = address_calls(ctx, session, cases)
        assert shim["getpeername"] == bare["getpeername"] + more_peer, (cases, bare, shim)
        if cases == ("unix",):
            assert shim["getsockname"] - bare["getsockname"] == \
                setup_shim["getsockname"] - setup_bare["getsockname"], (bare, shim, setup_shim)
        say("%s: getpeername %d without the shim, %d with; getsockname %d, %d", " ".join(cases),
            bare["getpeername"], shim["getpeername"], bare["getsockname"], shim["getsockname"])


def test_accept_addr_one_clock_read_per_call(ctx):
    """An accept reads the clock once for all it writes: its event's time
    is the connection's birth in the ledger and its `born` step's time;
    the close reads it once too: its event's time is the release time and
    its `close` step's time."""
    session = ctx.session()
    got = run_cases(ctx, session)
    evs = ctx.events(session)
    socks = segment.raw_ledger(ctx, session).socks
    accepts = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0]
    assert len(accepts) == sum(1 for v in got.values() if v[0] == "ok"), (accepts, got)
    for a in accepts:
        entry = socks[a["inode"]]
        closes = [e for e in evs if e["type"] == "close" and e["inode"] == a["inode"]]
        born = [st for st in entry["steps"] if st["op"] == "born"]
        closed = [st for st in entry["steps"] if st["op"] == "close"]
        assert len(closes) == 1 and len(born) == 1 and len(closed) == 1, (a, closes, entry)
        assert a["ts"] == entry["born_ns"] == born[0]["ts_ns"], (a, entry)
        assert closes[0]["ts"] == entry["released_ns"] == closed[0]["ts_ns"], (closes, entry)
    say("%d accepted connections: birth, born step and accept event one time; release, "
        "close step and close event one time", len(accepts))
