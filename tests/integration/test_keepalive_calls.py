"""The shim makes no system call of its own on a keep-alive request:
nginx-light, one process (master_process off), 200 requests on one
connection, the worker's system calls counted by `strace -c` attached
after start-up, without the shim and under observe. Every call's count is
the same in both (the recvfrom and writev of each request, the epoll
waits), save `newfstatat`: two more, both for the one connection, not
its requests: at its accept the shim learns the socket's inode, and at
the peer's EOF (the client closes first) it checks the descriptor is
still that socket. epoll_wait may differ by one: a wait that strace's
attach or detach cuts in two."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import acclib
import lib
import srvlib

REQUESTS = 200
# The calls the shim adds for the one connection counted (accepted, then
# closed by the client first): the fstat at its accept, the one at EOF.
PER_CONNECTION = {"newfstatat": 2}

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx-ka.{variant}.pid;
error_log {tmp}/nginx-ka.{variant}.error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    keepalive_timeout 60;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def _conf(ctx, variant, port):
    exe = srvlib.need("nginx", "nginx-light")
    conf = os.path.join(ctx.tmp, "nginx-ka.%s.conf" % variant)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=ctx.tmp, port=port, variant=variant,
                                  temp_paths=srvlib.nginx_temp_paths(srvlib.nginx_configure(exe),
                                                                     ctx.tmp)))
    return [exe, "-p", ctx.tmp, "-c", conf, "-e",
            os.path.join(ctx.tmp, "nginx-ka.%s.error.log" % variant)]


def _requests(port, n):
    """N requests on one keep-alive connection, each answered in full."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        for _ in range(n):
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            length = None
            while True:
                line = f.readline()
                assert line, "connection closed"
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert length is not None
            assert f.read(length) == b"ok\n"


def _counts(ctx, session, variant):
    """{call: count} of nginx's one process over the requests."""
    port = lib.free_port()
    proc = ctx.spawn(_conf(ctx, variant, port), session=session, preload=variant == "observe",
                     name="nginx-ka-" + variant)
    try:
        acclib.wait_http(port, proc, path="/")
        _requests(port, 5)  # its first connection, and lazy set-up, before counting
        out = os.path.join(ctx.tmp, "strace.%s" % variant)
        tracer = subprocess.Popen(["strace", "-c", "-o", out, "-p", str(proc.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # Attached once strace says so (its "attached" line), bounded.
            deadline = time.monotonic() + 10
            while b"attached" not in tracer.stderr.read1(4096):
                assert time.monotonic() < deadline and tracer.poll() is None, \
                    "strace did not attach"
            _requests(port, REQUESTS)
            time.sleep(0.2)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    counts = {}
    with open(out) as f:
        for line in f:
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
    return counts


def test_keepalive_no_added_calls(ctx):
    if not shutil.which("strace"):
        raise lib.Skip("strace is not installed (apt-get install -y strace)")
    if ctx.valgrind or ctx.sanitizer:
        raise lib.Skip("strace of a sanitized or valgrind run counts their calls too")
    session = ctx.session()
    none = _counts(ctx, session, "none")
    shim = _counts(ctx, session, "observe")
    say("without the shim %s; under observe %s", sorted(none.items()), sorted(shim.items()))
    # The requests were counted: each one's read and write.
    assert none.get("recvfrom", 0) >= REQUESTS and none.get("writev", 0) == REQUESTS, none
    for call in sorted(set(none) | set(shim)):
        want = none.get(call, 0) + PER_CONNECTION.get(call, 0)
        got = shim.get(call, 0)
        if call == "epoll_wait":
            assert abs(got - want) <= 1, (call, none, shim)
        else:
            assert got == want, (call, none, shim)
