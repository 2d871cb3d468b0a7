"""Every wrapper returns what libc returns, with libc's errno: the cmocka
program tests/progs/wrapcheck.c, run without the shim (the control) and under
it, must pass both ways; the preloaded run must really have been preloaded
(it checks symbol resolution itself, and its events are in the session)."""

import errno
import re

import lib

# tests/progs/wrapcheck.c: MISSING, and the calls that exec it.
MISSING = "/nonexistent/sockshim-wrapcheck"
EXECS_OF_MISSING = 8  # execve execv execvp execvpe execl execlp execle, syscall(SYS_execve)
# accept and accept4 interrupted by SIGALRM, one each (test_accept, test_accept4).
ACCEPT_EINTR = 2
# Exit statuses of the children that exec successfully, one fork each.
MIN_FORKS = 12


def cmocka_summary(res):
    """A short reason from a cmocka run: the failed tests and their lines."""
    out = res.stdout + res.stderr
    failed = re.findall(r"^\[  (?:FAILED|ERROR)\s*\] (test_\w+)", out, re.M)
    msgs = [l for l in out.splitlines()
            if l and not l.startswith("[") and "wrapcheck: exec failed" not in l][:12]
    return "status %d; failed: %s\n%s" % (res.returncode, " ".join(sorted(set(failed))) or "?",
                                          "\n".join(msgs))


def test_wrapcheck_without_shim(ctx):
    res = ctx.run([ctx.prog("wrapcheck")], preload=False,
                  extra_env={"WRAPCHECK_PRELOAD": "0"}, timeout=90)
    assert res.returncode == 0, "wrapcheck fails without the shim: " + cmocka_summary(res)
    assert "[  PASSED  ] " in res.stdout + res.stderr
    assert not lib.sockshim_lines(res.stderr), res.stderr


def test_wrapcheck_under_shim(ctx):
    s = ctx.session()
    res = ctx.run([ctx.prog("wrapcheck")], session=s,
                  extra_env={"WRAPCHECK_PRELOAD": "1"}, timeout=90)
    problems = []
    if res.returncode != 0:
        problems.append("wrapcheck fails under the shim: " + cmocka_summary(res))
    if lib.sockshim_lines(res.stderr):
        problems.append("shim warnings: %s" % lib.sockshim_lines(res.stderr))
    try:
        check_events(ctx.events(s))
        ctx.cross_check(s)
    except AssertionError as e:
        problems.append("events: %s" % e)
    assert not problems, "\n".join(problems)


def test_wrapcheck_under_shim_serialize(ctx):
    """The same with SOCKSHIM_ACCEPT=serialize, where poll and select hide
    listeners and put the program's sets back between slices."""
    s = ctx.session()
    res = ctx.run([ctx.prog("wrapcheck")], session=s,
                  extra_env={"WRAPCHECK_PRELOAD": "1", "SOCKSHIM_ACCEPT": "serialize"},
                  timeout=90)
    assert res.returncode == 0, "wrapcheck fails under serialize: " + cmocka_summary(res)
    assert not lib.sockshim_lines(res.stderr), res.stderr
    check_events(ctx.events(s))


def check_events(evs):
    """The preload was active: the session holds wrapcheck's events, and
    the ones it is sure to cause are there, exactly."""
    pids = {e["pid"] for e in evs if e["type"] == "socket"}
    assert len(pids) == 1, "socket events from pids %s, expected wrapcheck's only" % pids
    (pid,) = pids
    mine = [e for e in evs if e["pid"] == pid]
    for t in ("socket", "bind", "listen", "accept", "connect", "shutdown", "close",
              "peer_eof", "dup", "fork", "exec", "exit"):
        assert lib.count(mine, type=t), "no %s event from wrapcheck (pid %d)" % (t, pid)

    failed_execs = lib.select(mine, type="exec", path=MISSING, ret=-1)
    assert len(failed_execs) == EXECS_OF_MISSING, \
        "%d failed exec events of %s, expected %d" % (len(failed_execs), MISSING,
                                                      EXECS_OF_MISSING)
    assert all(e["errno"] == errno.ENOENT for e in failed_execs), failed_execs
    eintr = lib.select(mine, type="accept", ret=-1, errno=errno.EINTR)
    assert len(eintr) == ACCEPT_EINTR, "%d accept EINTR events, expected %d" % (
        len(eintr), ACCEPT_EINTR)
    # EAGAIN is a poll loop's normal answer: never logged.
    assert not lib.select(mine, type="accept", errno=errno.EAGAIN)
    forks = lib.select(evs, type="fork", pid=pid)
    assert len(forks) >= MIN_FORKS, "%d fork events, expected at least %d" % (
        len(forks), MIN_FORKS)
    assert all(f["ret"] == f["child_pid"] and f["child_pid"] > 0 for f in forks), forks
    # Successful execs happen in children only (forked or vforked), and a
    # forked child logs as itself, not as its parent.
    sh_execs = lib.select(evs, type="exec", path="/bin/sh")
    assert sh_execs, "no exec event of /bin/sh"
    assert all(e["pid"] != pid for e in sh_execs), "an exec of /bin/sh logged as the parent"
    children = {f["child_pid"] for f in forks}
    assert children & {e["pid"] for e in sh_execs}, "no forked child logged its exec"
