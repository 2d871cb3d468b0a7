"""The program's own SIGBUS handling stays its own under the shim, which
holds the kernel's SIGBUS action while a session is mapped: the cmocka
program tests/progs/sigbuscheck.c passes without the shim (the control)
and under it; under it, a session file cut to nothing while the program
blocks SIGBUS costs the shim its session, not the program its life."""

import re

import lib
from test_wrapcheck import cmocka_summary


def _run(ctx, preload, session=None, extra=None):
    res = ctx.run([ctx.prog("sigbuscheck")], session=session, preload=preload,
                  extra_env=extra, timeout=90)
    assert res.returncode == 0, "sigbuscheck: " + cmocka_summary(res)
    out = res.stdout + res.stderr
    passed = re.search(r"\[  PASSED  \] (\d+) test", out)
    skipped = re.search(r" (\d+) SKIPPED TEST", out)
    return res, int(passed.group(1)) if passed else 0, int(skipped.group(1)) if skipped else 0


def test_sigbus_without_shim(ctx):
    res, passed, skipped = _run(ctx, preload=False)
    assert (passed, skipped) == (7, 1), (passed, skipped)
    assert not lib.sockshim_lines(res.stderr), res.stderr


def test_sigbus_under_shim(ctx):
    res, passed, skipped = _run(ctx, preload=True, session=ctx.session())
    assert (passed, skipped) == (7, 1), (passed, skipped)
    assert not lib.sockshim_lines(res.stderr), res.stderr


def test_sigbus_session_truncated_while_blocked(ctx):
    s = ctx.session()
    res, passed, skipped = _run(ctx, preload=True, session=s,
                                extra={"SIGBUSCHECK_SESSION_FILE": ctx.session_path(s)})
    assert (passed, skipped) == (8, 0), (passed, skipped)
    # The child that truncated it, and the runner when it next wrote: one
    # line each, no more.
    lines = lib.sockshim_lines(res.stderr)
    assert 1 <= len(lines) <= 2 and all("shrank or lost its pages" in l for l in lines), lines
