"""The program's signal actions under the shim (shim/sigwatch.c): under
serialize every handler the program installs is held by the kernel as the
shim's trampoline, which counts it (the accept lock's waiters need to know
whether a handler ran while they slept) and calls the program's handler;
the program sees exactly what it would without the shim: every query's
handler, flags and mask, what each handler gets, the errno it leaves,
SA_RESETHAND's reset, signal(), bsd_signal() and sysv_signal()."""


def test_sigwatch_actions_exact(ctx):
    """tests/progs/sigquery prints the same report without the shim, under
    observe and under serialize; only its last line, asked of the kernel
    by a system call no wrapper sees, shows that serialize installed the
    trampoline (and observe did not: the fewer hosts touched, the
    better)."""
    runs = {}
    for mode in (None, "observe", "serialize"):
        if mode is None:
            r = ctx.run([ctx.prog("sigquery")], preload=False, timeout=30)
        else:
            r = ctx.run([ctx.prog("sigquery")], session=ctx.session(mode),
                        extra_env={"SOCKSHIM_ACCEPT": mode}, timeout=30)
        assert r.returncode == 0, "sigquery (%s) exited %d: %s" % (mode, r.returncode, r.stderr)
        runs[mode] = r.stdout.splitlines()
    plain = runs[None]
    last = "kernel holds the program's SIGUSR1 handler: "
    # A sanitizer's runtime holds every handler itself, shim or not.
    assert plain[-1] == last + ("yes" if ctx.sanitizer is None else "no"), plain[-1]
    # The report is about something: handlers ran with their arguments.
    assert "raise 12: ret 0 errno 0 plain 0/10 info 1/12 signo 12 code -6 uc 1" in plain, plain
    assert any(l.startswith("after delivery: sig 1 handler SIG_DFL") for l in plain), plain
    for mode in ("observe", "serialize"):
        differ = [(a, b) for a, b in zip(plain[:-1], runs[mode][:-1]) if a != b]
        assert len(runs[mode]) == len(plain) and not differ, (mode, differ)
    assert runs["observe"][-1] == plain[-1], runs["observe"][-1]
    assert runs["serialize"][-1] == last + "no", runs["serialize"][-1]
