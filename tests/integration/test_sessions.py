"""`sockshim sessions`: the table stays aligned whatever the lengths of the
session names and creators' names (each column as wide as its widest)."""

import os
import re
import subprocess


def _run(ctx, argv):
    return subprocess.run([ctx.tool] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, env=ctx.env(preload=False), cwd=ctx.tmp)


def test_sessions_table_aligned(ctx):
    long_name = ctx.session("long")  # the test's name: well past 16 characters
    short = "t%d" % os.getpid()
    try:
        for s in (short, long_name):
            r = _run(ctx, ["run", "--keep", "--session", s, "--", "true"])
            assert r.returncode == 0, r.stderr
        r = _run(ctx, ["sessions"])
    finally:
        _run(ctx, ["clean", "--session", short])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    head = lines[0]
    rows = {l.split()[0]: l for l in lines[1:]}
    assert short in rows and long_name in rows, lines
    # Right-aligned columns end where their titles end; CREATOR starts
    # where its title starts, and AGE ends where its title ends.
    ends = {t: head.index(t) + len(t) for t in ("SIZE", "RING", "EVENTS", "AGE", "PROCS")}
    creator_at = head.index("CREATOR")
    for name in (short, long_name):
        row = rows[name]
        assert row.startswith(name + " "), row
        fields = re.finditer(r"\S+", row)
        spans = [(m.start(), m.end(), m.group()) for m in fields]
        # name, size, ring, events, creator, age, procs, status...
        got = {"SIZE": spans[1][1], "RING": spans[2][1], "EVENTS": spans[3][1],
               "AGE": spans[5][1], "PROCS": spans[6][1]}
        assert got == ends, (head, row)
        assert spans[4][0] == creator_at and spans[4][2].endswith("/sockshim"), (head, row)
