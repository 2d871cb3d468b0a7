"""fork from a multi-threaded process under the shim: 1,000 forks (300 under
valgrind) while three threads open, copy and close sockets
(tests/progs/forkstress.c). It must finish, every child must exit 0, and
the session must hold exactly one fork event per fork, from the parent,
naming each child."""

import re
import subprocess

import lib

FORKS = 1000
# Under valgrind, which runs one thread at a time and makes each fork of a
# threaded program slow: 1,000 forks took 61 s without the shim and did
# not finish within forkstress's own alarm (100 s) under it.
VALGRIND_FORKS = 300
# ~90,000 events in all: a ring that holds them, so the count is exact.
RING = 1 << 18


def parse(res):
    children = [int(m) for m in re.findall(r"^child (\d+)$", res.stdout, re.M)]
    m = re.search(r"^forks (\d+) failures (\d+) iterations (\d+) threads-failed (\d+)$",
                  res.stdout, re.M)
    assert m, "no summary line from forkstress; stderr: %s" % res.stderr[-2000:]
    return children, [int(x) for x in m.groups()]


def fork_count(ctx):
    return VALGRIND_FORKS if ctx.valgrind else FORKS


def test_forkstress_without_shim(ctx):
    n = fork_count(ctx)
    res = ctx.run([ctx.prog("forkstress"), str(n)], preload=False, timeout=110)
    children, (forks, failures, _, bad_threads) = parse(res)
    assert res.returncode == 0, "status %d: %s" % (res.returncode, res.stderr[-2000:])
    assert (forks, failures, bad_threads, len(children)) == (n, 0, 0, n)


def test_forkstress_under_shim(ctx):
    s = ctx.session()
    n = fork_count(ctx)
    proc = ctx.spawn([ctx.prog("forkstress"), str(n)], session=s, extra_env={
        "SOCKSHIM_RING_EVENTS": str(RING)}, name="forkstress")
    try:
        status = proc.wait(timeout=110)
    except subprocess.TimeoutExpired:
        raise AssertionError("forkstress did not finish within 110s (deadlock?)")
    out, err = ctx.output(proc)
    res = type("R", (), {"stdout": out, "stderr": err, "returncode": status})
    children, (forks, failures, iterations, bad_threads) = parse(res)
    assert status == 0, "forkstress exited with status %d: %s" % (status, err[-2000:])
    assert (forks, failures, bad_threads) == (n, 0, 0)
    assert len(set(children)) == n
    assert iterations > 0
    assert not lib.sockshim_lines(err), lib.sockshim_lines(err)

    # What users run: the command, filtered to the parent's fork events.
    forks_ev = ctx.events(s, ["--type", "fork", "--pid", str(proc.pid)])
    assert all(e["type"] == "fork" and e["pid"] == proc.pid for e in forks_ev), \
        "filters not applied: %s" % forks_ev[:3]
    assert len(forks_ev) == n, "%d fork events from pid %d, expected %d" % (
        len(forks_ev), proc.pid, n)
    logged = sorted(e["child_pid"] for e in forks_ev)
    assert logged == sorted(children), "fork events name other children than forkstress forked"
    assert all(e["ret"] == e["child_pid"] for e in forks_ev)

    # Cross-check against the segment itself: nothing lost, the same count,
    # and no fork event from anyone else.
    ring = ctx.raw(s)
    assert ring.lost == 0, "%d events lost (ring of %d)" % (ring.lost, ring.capacity)
    assert ring.capacity == RING, "ring of %d records, asked for %d" % (ring.capacity, RING)
    raw_forks = lib.select(ring.events, type="fork")
    assert len(raw_forks) == n and all(e["pid"] == proc.pid for e in raw_forks)
    # Each child that made a socket logged it as itself.
    child_pids = set(children)
    made = {e["pid"] for e in ring.events if e["type"] == "socket" and e["pid"] in child_pids}
    assert len(made) == len(range(1, n, 3)), \
        "%d children logged a socket, expected %d" % (len(made), len(range(1, n, 3)))
