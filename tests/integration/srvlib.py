"""Helpers of test_servers.py: real servers started under `sockshim run`,
their events read through `sockshim events --json` with a bounded poll, and
the kernel's view of their connections (/proc/PID/fd, `ss -tenpH`).

Every wait has a deadline; every process is stopped by its pid.
"""

import os
import signal
import socket
import subprocess
import time

import lib

# How long a server gets to reach a state the test waits for.
WAIT = 15.0
# Between two reads of the ring while waiting.
POLL = 0.05
# `sockshim run` has this long to end after it was asked to.
RUN_EXIT_WAIT = 10.0


def python3():
    """Debian's interpreter when present (dynamically linked against the
    system libc), else whatever python3 is on PATH."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return lib.which("python3")


def find_program(name, dirs=("/usr/sbin", "/sbin", "/usr/local/sbin")):
    """NAME on PATH, else in the sbin directories a non-root PATH lacks."""
    p = lib.which(name)
    if p:
        return p
    for d in dirs:
        q = os.path.join(d, name)
        if os.access(q, os.X_OK):
            return q
    return None


def need(name, package):
    """The path of program NAME, or Skip naming the package to install."""
    p = find_program(name)
    if not p:
        raise lib.Skip("%s is not installed (apt-get install -y %s)" % (name, package))
    return p


# ---------------------------------------------------------------------------
# `sockshim run`.

def nginx_configure(exe):
    """What nginx EXE says of its build (`nginx -V`)."""
    r = subprocess.run([exe, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return r.stdout.decode("utf-8", "replace")


def nginx_temp_paths(configure, tmp):
    """The http block's lines that put nginx's temporary files under TMP:
    one for each module its build (CONFIGURE, nginx_configure) has
    (nginx-light lacks some)."""
    lines = ["    client_body_temp_path %s/client_body;" % tmp]
    for mod in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % mod not in configure:
            lines.append("    %s_temp_path %s/%s;" % (mod, tmp, mod))
    return "\n".join(lines)


def run_env(ctx):
    """The environment `sockshim run` needs on top of ctx.env(preload=False).
    In a sanitized build the shim needs its runtime loaded first, but the
    command puts the shim at the head of LD_PRELOAD: preload the runtime
    after it and tell ASan not to insist on the order."""
    rt = ctx.sanitizer_runtime()
    if not rt:
        return {}
    extra = {"LD_PRELOAD": rt}
    if ctx.sanitizer == "address":
        extra["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0"
    return extra


# Runs `sockshim run` with SIGINT and SIGHUP at their default actions even
# when the test runner inherited them ignored (a background job, nohup):
# ignored signals survive exec, and run rightly leaves them ignored.
DEFAULT_SIGNALS = ("import os, signal, sys; "
                   "[signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGHUP)]; "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def run_argv(ctx, session, argv, keep=False, default_signals=False):
    cmd = [ctx.tool, "run", "--session", session]
    if keep:
        cmd.append("--keep")
    cmd += ["--"] + list(argv)
    if default_signals:
        cmd = [python3(), "-c", DEFAULT_SIGNALS] + cmd
    return cmd


def start_run(ctx, argv, session, keep=False, name="run", cwd=None, default_signals=False):
    """`sockshim run --session SESSION [--keep] -- ARGV` in the background.
    The command sets LD_PRELOAD for ARGV itself, so it runs without it."""
    return ctx.spawn(run_argv(ctx, session, argv, keep, default_signals), preload=False,
                     extra_env=run_env(ctx), name=name, cwd=cwd)


def wait_exit(proc, timeout=RUN_EXIT_WAIT, what="sockshim run"):
    """PROC's exit status, failing if it does not end within TIMEOUT."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s (pid %d) still running %.0fs after it was asked to stop"
                             % (what, proc.pid, timeout)) from None


def signal_run(proc, sig):
    """Send SIG to the `sockshim run` process itself (it forwards it)."""
    if proc.poll() is not None:
        raise AssertionError("sockshim run (pid %d) already exited with %s"
                             % (proc.pid, proc.returncode))
    os.kill(proc.pid, sig)


def stop_server(ctx, run, server_pid, sig=signal.SIGTERM):
    """Ask the server (SERVER_PID) to stop: SIG to `sockshim run`, which
    forwards it, as a user's kill would."""
    del ctx, server_pid  # the signal goes through run, as in real use
    signal_run(run, sig)


def reap(proc, pids):
    """Cleanup of a server test: stop `sockshim run` (SIGTERM, forwarded),
    then any process of PIDS that outlived it, by pid."""
    try:
        lib.stop(proc, grace=3.0)
    except Exception:  # noqa: BLE001 - cleanup goes on
        pass
    for p in pids:
        if lib.alive(p):
            lib.stop_pid(p, grace=2.0)


# ---------------------------------------------------------------------------
# Events.

def events(ctx, session, args=()):
    """Every event of SESSION through `sockshim events --session S --json`.
    Fails the test if the command reports any loss, as a {"type":"lost"}
    line or on stderr."""
    r = lib.tool(ctx, ["events", "--session", session, "--json"] + list(args))
    evs = lib.json_lines(r.stdout, "sockshim events --json")
    lost = [e for e in evs if e.get("type") == "lost"]
    if lost or "lost" in r.stderr:
        raise AssertionError("session %s lost events: %s %s" % (session, lost, r.stderr.strip()))
    return evs


def wait_events(ctx, session, ready, what, timeout=WAIT, proc=None):
    """Read SESSION's events until READY(events) is true; returns them.
    Fails after TIMEOUT naming WHAT, or early if PROC (sockshim run) died."""
    deadline = time.monotonic() + timeout
    while True:
        # `sockshim run` creates the session a moment after it starts.
        evs = events(ctx, session) if os.path.exists(ctx.session_path(session)) else []
        if evs and ready(evs):
            return evs
        if proc is not None and proc.poll() is not None:
            out, err = ctx.output(proc)
            raise AssertionError("waiting for %s: sockshim run exited with %s; stderr: %s"
                                 % (what, proc.returncode, err.strip()[-2000:]))
        if time.monotonic() > deadline:
            raise AssertionError("waiting for %s: not there after %.0fs; %d events, last: %s"
                                 % (what, timeout, len(evs), evs[-5:]))
        time.sleep(POLL)


def addr(port):
    return "127.0.0.1:%d" % port


def listen_events(evs, port):
    return [e for e in evs if e["type"] == "listen" and e["local"] == addr(port)
            and e["ret"] == 0]


def accepted(evs, listen_inode):
    """The successful accepts on the listener LISTEN_INODE."""
    return [e for e in evs if e["type"] == "accept" and e["ret"] >= 0
            and e.get("listen_inode") == listen_inode]


def of_inode(evs, typ, inode):
    return [e for e in evs if e["type"] == typ and e["inode"] == inode]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------
# Clients and the kernel's view.

def connect(port, n, timeout=10.0):
    """N connections to 127.0.0.1:PORT, as {client port: socket}."""
    socks = {}
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            socks[s.getsockname()[1]] = s
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks.values():
        try:
            s.close()
        except OSError:
            pass


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        b = s.recv(n - len(data))
        if not b:
            raise AssertionError("connection %s closed after %d of %d bytes: %r"
                                 % (s.getsockname(), len(data), n, data))
        data += b
    return data


def check_kernel_view(port, conns):
    """CONNS: {client port: (inode, [(name, pid, fd)] expected holders)}.
    Each connection's server side as /proc and `ss -tenpH` show it must be
    exactly that. Returns a list of mismatches (empty when all agree)."""
    bad = []
    rows = {port_of(r["peer"]): r for r in lib.ss_rows(local_port=port)
            if r["peer"].startswith("127.0.0.1:")}
    for cport, (inode, holders) in sorted(conns.items()):
        for _, pid, fd in holders:
            got = lib.proc_fd_inode(pid, fd)
            if got != inode:
                bad.append("client port %d: /proc/%d/fd/%d is socket inode %s, events say %d"
                           % (cport, pid, fd, got, inode))
        row = rows.get(cport)
        if row is None:
            bad.append("client port %d: no server-side row in ss -tenpH" % cport)
            continue
        if row["state"] != "ESTAB":
            bad.append("client port %d: ss state %s, expected ESTAB" % (cport, row["state"]))
        if row["inode"] != inode:
            bad.append("client port %d: ss ino:%s, events say %d" % (cport, row["inode"], inode))
        if row["holders"] != sorted(holders):
            bad.append("client port %d: ss users %s, expected %s"
                       % (cport, row["holders"], sorted(holders)))
    return bad


def wait_kernel_view(port, conns, timeout=WAIT):
    """check_kernel_view until it agrees (a holder may still be closing its
    copy right after fork), bounded; fails with the last mismatches."""
    deadline = time.monotonic() + timeout
    while True:
        bad = check_kernel_view(port, conns)
        if not bad:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the kernel's view disagrees after %.0fs:\n  %s"
                                 % (timeout, "\n  ".join(bad)))
        time.sleep(POLL)


def terminate_signal_status(sig):
    """What `sockshim run` exits with when CMD is killed by SIG."""
    return 128 + int(sig)


SIGTERM_STATUS = terminate_signal_status(signal.SIGTERM)
