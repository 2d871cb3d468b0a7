"""The bundled prefork_server's poll and epoll worker modes (-m poll,
-m epoll) under `sockshim run`: workers wait for one non-blocking listener
in poll or in an epoll instance of their own, then accept; an accept that
finds the connection taken by another woken worker fails with EAGAIN.

- poll, 4 workers, 300 sequential connections: every one answered and
  accepted once in observe and in serialize; the server's own count of
  EAGAIN accepts equals what the shim counted (spurious + empty); observe
  shows the herd (spurious > 0), serialize (the poll token) at most half
  as many per accept, and its workers wake no more than observe's (the
  holder, and the one waiter the token is handed to).
- epoll: the same exactness; serialize (EPOLLEXCLUSIVE) at most a few
  spurious wakeups per hundred accepts. Observe's figure is printed only:
  epoll's level-triggered re-check swallows most of the herd before user
  space sees it (0.00 to 0.38 per accept measured on this 2-core machine).

Figures are printed for the report, with the workers' CPU per accept (the
server's -r report: wait4's rusage of each worker) and the kernel's count
of their wakeups (voluntary context switches), which sees the wakeups the
kernel swallows inside poll too.
"""

import os
import re
import signal

import acclib
import lib
import srvlib

CONNECTIONS = 300
WORKERS = 4
STOP_BOUND = 15.0
# Measured 0.00 in serialize with poll and 0.005-0.015 with epoll (EPOLLEXCLUSIVE
# may wake more than one waiter); observe 0.07-0.65 with poll.
EPOLL_SERIALIZE_CEILING = 0.05
# Voluntary context switches of the workers per connection, poll: measured
# 2.1 to 5.8 in observe (every sleeping waiter woken; fewer sleep while
# other jobs hold the cores). serialize: the holder wakes for the
# connection, and the one waiter rung when the token is handed over at its
# accept (1.0 to 4.0 measured: the holder's reads of the request sleep too
# when the cores are busy, in both modes), never more than observe's herd;
# a ring that woke every waiter would add the herd to the holder's own.
# (Before the hand-off: 0.25, with one worker taking most connections.)
HERD_SWITCHES_FLOOR = 2.0

REPORT_RE = re.compile(r"prefork_server: (\d+) workers \((\w+)\): (\d+) accepts, (\d+) accept "
                       r"calls found nothing .*workers' CPU ([0-9.]+) ms")


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def _workers(run):
    """The pids of the server's workers: the children of its main process."""
    main = [p for p in lib.descendants(run.pid) if lib.ppid(p) == run.pid]
    assert len(main) == 1, "sockshim run has children %s" % main
    return lib.descendants(main[0])


def _herd_run(ctx, wait_mode, mode):
    """prefork_server -w 4 -m WAIT_MODE -r under sockshim run --accept MODE,
    CONNECTIONS sequential clients. Returns a dict of the figures."""
    session = ctx.session(mode)
    portfile = os.path.join(ctx.tmp, "port.%s.%s" % (wait_mode, mode))
    server = os.path.join(ctx.build, "examples", "prefork_server")
    client = os.path.join(ctx.build, "examples", "demo_client")
    run = ctx.spawn([ctx.tool, "run", "--session", session, "--accept", mode, "--", server,
                     "-w", str(WORKERS), "-m", wait_mode, "-r", "-f", portfile],
                    preload=False, extra_env=srvlib.run_env(ctx),
                    name="prefork-%s-%s" % (wait_mode, mode))
    pids = []
    try:
        lib.wait_for_file(portfile, run, acclib.WAIT, "sockshim run -- prefork_server")
        with open(portfile) as f:
            port = int(f.read().split()[0])
        pids = _workers(run)
        assert len(pids) == WORKERS, "workers %s" % pids
        switches = acclib.voluntary_switches(pids)
        r = ctx.run([client, "-p", str(port), "-n", str(CONNECTIONS)], preload=False,
                    timeout=60)
        switches = acclib.voluntary_switches(pids) - switches
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("hello from worker") == CONNECTIONS, r.stdout[-2000:]
        e = acclib.listener(ctx, session, port)
        assert e is not None, "no listener 127.0.0.1:%d in the table" % port
        assert e["mode"] == mode, acclib.summary(e)
        assert e["accepts"] == CONNECTIONS, acclib.summary(e)
        assert e["spurious"] <= e["wakeups"], acclib.summary(e)
        srvlib.signal_run(run, signal.SIGTERM)
        status = srvlib.wait_exit(run, STOP_BOUND, "prefork_server -m %s" % wait_mode)
        assert status == 0, "prefork_server exited %s: %s" % (status, ctx.output(run)[1])
        m = REPORT_RE.search(ctx.output(run)[0])
        assert m, "no report from prefork_server -r: %r" % (ctx.output(run),)
        n_workers, name, accepts, eagain, cpu_ms = m.groups()
        assert (int(n_workers), name, int(accepts)) == (WORKERS, wait_mode, CONNECTIONS), m.group(0)
        # Every accept that found nothing, as the server saw it, is one the
        # shim counted: after a wakeup (spurious) or without one (empty).
        assert int(eagain) == e["spurious"] + e["empty"], (
            "the server counted %s EAGAIN accepts, the shim %d spurious + %d empty"
            % (eagain, e["spurious"], e["empty"]))
        fig = {"spurious": e["spurious"] / CONNECTIONS, "cpu_us": float(cpu_ms) * 1e3 / CONNECTIONS,
               "switches": switches / CONNECTIONS, "per_pid": sorted(acclib.per_pid(e).values())}
        say("%-5s %-9s: %d accepts, %d spurious wakeups (%.3f per accept), %d empty; "
            "workers' CPU %.1f us per accept; %.2f voluntary context switches of the workers "
            "per connection; accepts per worker %s", wait_mode, mode, e["accepts"],
            e["spurious"], fig["spurious"], e["empty"], fig["cpu_us"], fig["switches"],
            fig["per_pid"])
        return fig
    finally:
        srvlib.reap(run, pids)


def test_herd_prefork_poll(ctx):
    obs = _herd_run(ctx, "poll", "observe")
    ser = _herd_run(ctx, "poll", "serialize")
    # Whether a woken worker returns from poll before the winner's accept
    # (a spurious wakeup the program sees: EAGAIN) or after it (poll goes
    # back to sleep inside the kernel) is the scheduler's call: with other
    # jobs holding both cores, all of them were swallowed once (0 in 300,
    # with 5.99 wakeups of the workers per connection). The server's own
    # EAGAIN count equals the shim's either way (above), and the kernel's
    # count of wakeups below sees the whole herd.
    if obs["spurious"] == 0:
        say("observe: every wakeup without a connection stayed inside poll this time")
    assert ser["spurious"] == 0 or ser["spurious"] <= obs["spurious"] / 2, (
        "serialize: %.3f spurious wakeups per accept, observe %.3f: the poll token did not "
        "halve the herd" % (ser["spurious"], obs["spurious"]))
    if ctx.sanitizer == "thread" or ctx.valgrind:
        # ThreadSanitizer's workers and client take 2-3 times the CPU per
        # connection: with other jobs on both cores they stay runnable
        # between connections instead of sleeping (0.23 and 0.63 switches
        # per connection in observe seen under TSan with three busy loops
        # running, while the normal build showed 6.00 beside the same
        # loops), so the kernel's count does not show the herd there.
        # Valgrind's, slower still, the same (1.95 seen, the floor 2.0).
        say("the workers' wakeups not asserted under ThreadSanitizer or valgrind: their "
            "slowed workers need idle cores to sleep between connections")
        return
    # The kernel's count sees the whole herd, the wakeups poll swallows too.
    assert obs["switches"] >= HERD_SWITCHES_FLOOR, (
        "observe: the workers woke %.2f times per connection; a herd of %d wakes >= %.1f"
        % (obs["switches"], WORKERS, HERD_SWITCHES_FLOOR))
    assert ser["switches"] <= obs["switches"], (
        "serialize: the workers woke %.2f times per connection, more than observe's herd "
        "(%.2f)" % (ser["switches"], obs["switches"]))


def test_herd_prefork_epoll(ctx):
    obs = _herd_run(ctx, "epoll", "observe")
    ser = _herd_run(ctx, "epoll", "serialize")
    ceiling = EPOLL_SERIALIZE_CEILING if not (ctx.sanitizer or ctx.valgrind) else 0.15
    assert ser["spurious"] <= max(ceiling, obs["spurious"]), (
        "serialize (EPOLLEXCLUSIVE): %.3f spurious wakeups per accept, observe %.3f"
        % (ser["spurious"], obs["spurious"]))
