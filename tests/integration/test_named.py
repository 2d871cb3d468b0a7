"""Every holder and creator named, and the words exact (issue 12, points 8
and 10): a socket whose creator has left its history (the creator exited,
then more than SOCKSHIM_STEPS steps by another process) is still shown as
created by its process name, not "?"; the sockets of a program the shim is
not loaded in are named from /proc, not said to be none. Loopback, bounded,
every process stopped by its pid."""

import json
import os
import time

import lib
import srvlib
from lib import tool

# The creator makes a listener, forks and exits; once it is gone, its
# child dups and closes the listener 20 times (40 steps) and sleeps.
CREATOR = r"""
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
parent = os.getpid()
if os.fork():
    os._exit(0)
for _ in range(1000):
    if os.getppid() != parent:
        break
    time.sleep(0.01)
for i in range(20):
    os.close(os.dup(s.fileno()))
print(parent, os.getpid(), s.fileno(), s.getsockname()[1], flush=True)
time.sleep(120)  # until the test stops it
"""


def test_named_creator_out_of_history(ctx):
    s = ctx.session()
    proc = ctx.spawn([srvlib.python3(), "-c", CREATOR], session=s, name="creator",
                     valgrind=False)
    deadline = time.monotonic() + 20
    while not ctx.output(proc)[0].strip():
        assert time.monotonic() < deadline, ctx.output(proc)
        time.sleep(0.05)
    parent, child, fd, port = map(int, ctx.output(proc)[0].split())
    try:
        assert lib.wait_gone([parent]) == []
        objs = [json.loads(l) for l in
                tool(ctx, ["holders", "--session", s, "--json"]).stdout.splitlines()]
        mine = [o for o in objs if o.get("local") == "127.0.0.1:%d" % port]
        assert len(mine) == 1, objs
        o = mine[0]
        # The creator has no step left in the history ...
        assert o["history_lost"] is True, o
        # ... and is named all the same, as its steps named it.
        assert (o["born"]["pid"], o["born"]["comm"]) == (parent, "python3"), o["born"]
        assert [(h["pid"], h["fd"], h["comm"]) for h in o["holders"]] == \
            [(child, fd, "python3")], o["holders"]
        text = tool(ctx, ["holders", "--session", s]).stdout
        assert "  born: created by python3 %d fd %d at " % (parent, fd) in text, text
        assert "? %d" % parent not in text, text
    finally:
        for p in (child, parent):
            if lib.alive(p):
                lib.stop_pid(p, grace=2.0)
