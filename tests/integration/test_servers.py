"""Real, unmodified servers under `sockshim run`: socat in fork mode,
Python's http.server and nginx with two workers. K clients connect on
127.0.0.1; while they are open, the accept events must name exactly those
connections, with the pid, fd and inode that /proc/PID/fd and `ss -tenpH`
show; after the clients close, every accepted socket must have exactly the
close events its server's code makes. No event may be lost.

Also: `sockshim run` exits with its command's status and forwards SIGTERM,
SIGINT and SIGHUP to it.
"""

import os
import re
import signal
import subprocess
import time

import lib
import srvlib
from srvlib import WAIT, accepted, addr, of_inode, port_of

# Client connections per server: enough for two nginx workers to share.
K = 6


def _listener(ctx, session, run, port, what):
    """The one successful listen on 127.0.0.1:PORT: (pid, fd, inode). The
    process is the command `sockshim run` started (its child)."""
    evs = srvlib.wait_events(ctx, session, lambda e: srvlib.listen_events(e, port),
                             "%s to listen on %s" % (what, addr(port)), proc=run)
    lst = srvlib.listen_events(evs, port)
    # nginx calls listen() twice on the same socket (the second applies the
    # configured backlog): one listener, one inode, one pid.
    assert len({(e["pid"], e["fd"], e["inode"]) for e in lst}) == 1, lst
    pid, fd, inode = lst[0]["pid"], lst[0]["fd"], lst[0]["inode"]
    assert inode > 0, lst[0]
    assert lib.ppid(pid) == run.pid, (
        "listen by pid %d, whose parent is %d, not sockshim run (%d)"
        % (pid, lib.ppid(pid), run.pid))
    assert lib.proc_fd_inode(pid, fd) == inode, (
        "/proc/%d/fd/%d is %s, listen event says inode %d"
        % (pid, fd, lib.proc_fd_inode(pid, fd), inode))
    return pid, fd, inode


def _check_accepts(evs, port, listen_fd, listen_inode, clients, pids):
    """Exactly one successful accept per client, none other on the listener;
    each in one of PIDS, on its main thread. Returns {client port: event}."""
    acc = accepted(evs, listen_inode)
    got = sorted(port_of(e["peer"]) for e in acc if e["peer"])
    assert len(acc) == len(clients) and got == sorted(clients), (
        "%d accepts on listener inode %d, peers %s; expected %d, peers %s"
        % (len(acc), listen_inode, got, len(clients), sorted(clients)))
    by_port = {}
    for e in acc:
        assert e["pid"] in pids, "accept by pid %d, expected one of %s: %s" % (
            e["pid"], sorted(pids), e)
        assert e["family"] == "inet" and e["local"] == addr(port), e
        assert e["fd"] == e["ret"] and e["fd"] >= 0 and e["errno"] == 0, e
        assert e["listen_fd"] == listen_fd, e
        assert e["inode"] > 0 and e["inode"] != listen_inode, e
        by_port[port_of(e["peer"])] = e
    assert len({e["inode"] for e in acc}) == len(acc), "accepted inodes repeat: %s" % acc
    return by_port


def _count(evs, typ, inode):
    return len(of_inode(evs, typ, inode))


# ---------------------------------------------------------------------------
# socat, fork mode.

def test_servers_socat_fork(ctx):
    socat = srvlib.need("socat", "socat")
    port = lib.free_port()
    session = ctx.session()
    run = srvlib.start_run(ctx, [socat, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % port,
                                 "EXEC:cat"], session, keep=True, name="socat")
    pids = []
    clients = {}
    try:
        main, lfd, linode = _listener(ctx, session, run, port, "socat")
        pids.append(main)
        clients = srvlib.connect(port, K)
        for cport, c in clients.items():
            msg = b"echo from client port %d\n" % cport
            c.sendall(msg)
            got = srvlib.recv_exact(c, len(msg))
            assert got == msg, "port %d: echo %r, sent %r" % (cport, got, msg)

        # socat accepts in its main process, forks a child for the
        # connection, and closes its own copy in the parent (xio-listen.c).
        def parent_done(evs):
            acc = accepted(evs, linode)
            return len(acc) >= K and all(
                any(c["pid"] == main for c in of_inode(evs, "close", a["inode"])) for a in acc)

        evs = srvlib.wait_events(ctx, session, parent_done,
                                 "%d accepts, each closed by socat's parent" % K, proc=run)
        acc = _check_accepts(evs, port, lfd, linode, clients, {main})
        forks = [e["child_pid"] for e in evs if e["type"] == "fork" and e["pid"] == main]
        pids += forks
        assert len(forks) == K, "socat's parent forked %d times for %d connections: %s" % (
            len(forks), K, forks)
        for child in forks:
            assert lib.ppid(child) == main, "child %d's parent is not %d" % (child, main)

        # Whose copy is open now: exactly one forked child per connection,
        # at the fd the parent accepted it on.
        holder = {}
        for cport, a in sorted(acc.items()):
            check_exec_closes(evs, a["inode"])
            closes = [c for c in of_inode(evs, "close", a["inode"]) if c["via"] != "exec"]
            assert len(closes) == 1, "port %d: %d closes while open: %s" % (
                cport, len(closes), closes)
            c = closes[0]
            assert (c["pid"], c["fd"], c["via"]) == (main, a["fd"], "close"), c
            assert c["seq"] > a["seq"], "close before accept: %s %s" % (a, c)
            owners = [ch for ch in forks if lib.proc_fd_inode(ch, a["fd"]) == a["inode"]]
            assert len(owners) == 1, "port %d: inode %d at fd %d held by children %s" % (
                cport, a["inode"], a["fd"], owners)
            holder[cport] = owners[0]
        assert sorted(holder.values()) == sorted(forks), (
            "one child per connection expected: %s" % holder)
        srvlib.wait_kernel_view(port, {
            cport: (a["inode"], [(lib.comm(holder[cport]), holder[cport], a["fd"])])
            for cport, a in acc.items()})

        srvlib.close_all(clients)

        # The child sees EOF, shuts the socket down and exits without
        # close(): the kernel drops its copy at exit, which the shim logs
        # as a close via exit. So each connection has exactly two closes
        # besides exec's: the parent's (no effect: the child holds it) and
        # the child's at exit (the last: 1 -> 0, released).
        def children_done(evs):
            return all(_count(evs, "peer_eof", a["inode"]) >= 1 for a in acc.values()) and all(
                any(e["type"] == "exit" and e["pid"] == ch for e in evs) for ch in forks)

        evs = srvlib.wait_events(ctx, session, children_done,
                                 "peer_eof and exit of %d socat children" % K, proc=run)
        for cport, a in sorted(acc.items()):
            ch = holder[cport]
            exec_closers = check_exec_closes(evs, a["inode"])
            closes = [c for c in of_inode(evs, "close", a["inode"]) if c["via"] != "exec"]
            got = sorted((c["pid"], c["via"], c["released"], c["refs_before"] - c["refs_after"],
                          c["refs_after"] if c["released"] else None) for c in closes)
            want = sorted([(main, "close", False, 1, None), (ch, "exit", True, 1, 0)])
            assert got == want, (
                "port %d inode %d: closes %s; expected the parent's %d (no effect) and child "
                "%d's at exit (1 -> 0)" % (cport, a["inode"], closes, main, ch))
            eofs = of_inode(evs, "peer_eof", a["inode"])
            assert len(eofs) == 1 and (eofs[0]["pid"], eofs[0]["fd"]) == (ch, a["fd"]), (
                "port %d inode %d: peer_eof %s; expected one, in child %d fd %d"
                % (cport, a["inode"], eofs, ch, a["fd"]))
            exits = [e for e in evs if e["type"] == "exit" and e["pid"] == ch]
            assert len(exits) == 1 and exits[0]["seq"] > eofs[0]["seq"], exits
            others = [e for e in evs if e["inode"] == a["inode"]
                      and e["pid"] not in (main, ch) and e["pid"] not in exec_closers]
            # The child's exit close comes before its exit event.
            exit_close = [c for c in closes if c["via"] == "exit"][0]
            assert exit_close["seq"] < exits[0]["seq"], (exit_close, exits)
            assert not others, "inode %d touched by a process other than %d and %d: %s" % (
                a["inode"], main, ch, others)
        left = lib.wait_gone(forks)
        assert not left, "socat children still running after their clients closed: %s" % left

        # socat ends on SIGTERM with status 128+15, as if killed by it.
        srvlib.stop_server(ctx, run, main)
        status = srvlib.wait_exit(run)
        assert status == srvlib.SIGTERM_STATUS, (
            "sockshim run exited %s after SIGTERM, expected %d" % (status, srvlib.SIGTERM_STATUS))
        assert not lib.wait_gone([main]), "socat %d outlived sockshim run" % main
        srvlib.events(ctx, session)  # the whole ring, after the end: nothing lost
    finally:
        srvlib.close_all(clients)
        srvlib.reap(run, pids)


def check_exec_closes(evs, inode):
    """socat's child runs its EXEC: program in a process of its own, which
    got the connection by fork and lost it to close-on-exec: the new image
    reports that close (via exec). Each such close left the connection to
    the others (no effect on the wire). Returns the pids that made them."""
    closers = set()
    for c in of_inode(evs, "close", inode):
        if c["via"] != "exec":
            continue
        assert c["released"] is False and c["refs_after"] >= 1, (
            "close-on-exec of inode %d released it: %s" % (inode, c))
        closers.add(c["pid"])
    return closers


# ---------------------------------------------------------------------------
# python3 -m http.server (HTTP/1.0: the server closes after each response).

def test_servers_python_http_server(ctx):
    py = srvlib.python3()
    if not py:
        raise lib.Skip("python3 is not installed (apt-get install -y python3)")
    port = lib.free_port()
    session = ctx.session()
    with open(os.path.join(ctx.tmp, "index.html"), "w") as f:
        f.write("sockshim\n")
    run = srvlib.start_run(ctx, [py, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", ctx.tmp], session, keep=True, name="http")
    pids = []
    clients = {}
    try:
        server, lfd, linode = _listener(ctx, session, run, port, "http.server")
        pids.append(server)
        # Connected, nothing sent: the server has accepted each one and its
        # handler thread waits for the request line, so all K stay open.
        clients = srvlib.connect(port, K)
        evs = srvlib.wait_events(ctx, session, lambda e: len(accepted(e, linode)) >= K,
                                 "%d accepts" % K, proc=run)
        acc = _check_accepts(evs, port, lfd, linode, clients, {server})
        for a in acc.values():
            # ThreadingHTTPServer accepts in serve_forever's thread.
            assert a["tid"] == server, a
            assert _count(evs, "close", a["inode"]) == 0, a
        srvlib.wait_kernel_view(port, {
            cport: (a["inode"], [(lib.comm(server), server, a["fd"])])
            for cport, a in acc.items()})

        for cport, c in clients.items():
            c.sendall(b"GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = lib.recv_all(c)
            head, _, body = data.partition(b"\r\n\r\n")
            assert re.match(rb"HTTP/1\.0 200 ", head) and body == b"sockshim\n", (
                "port %d: %r" % (cport, data[:300]))

        # The handler thread answers, then shutdown_request(): shutdown(SHUT_WR)
        # and close(), both in that thread; the client had not closed yet
        # (it was reading to EOF), so the shutdown succeeded.
        evs = srvlib.wait_events(
            ctx, session, lambda e: all(_count(e, "close", a["inode"]) >= 1 for a in acc.values()),
            "a close of each of the %d accepted sockets" % K, proc=run)
        for cport, a in sorted(acc.items()):
            closes = of_inode(evs, "close", a["inode"])
            shuts = of_inode(evs, "shutdown", a["inode"])
            assert len(closes) == 1, "port %d: %d closes: %s" % (cport, len(closes), closes)
            c = closes[0]
            assert (c["pid"], c["fd"], c["via"], c["ret"]) == (server, a["fd"], "close", 0), c
            assert c["tid"] != server, "close on the accepting thread, not a handler: %s" % c
            assert len(shuts) == 1, "port %d: shutdowns %s" % (cport, shuts)
            s = shuts[0]
            assert (s["how"], s["ret"], s["tid"], s["fd"]) == ("SHUT_WR", 0, c["tid"], a["fd"]), s
            assert a["seq"] < s["seq"] < c["seq"], (a, s, c)
            # It never read after the request: no EOF seen.
            assert _count(evs, "peer_eof", a["inode"]) == 0, of_inode(evs, "peer_eof", a["inode"])
        srvlib.close_all(clients)

        srvlib.stop_server(ctx, run, server)
        status = srvlib.wait_exit(run)
        # Python leaves SIGTERM at its default action.
        assert status == srvlib.SIGTERM_STATUS, (
            "sockshim run exited %s after SIGTERM, expected %d" % (status, srvlib.SIGTERM_STATUS))
        srvlib.events(ctx, session)
    finally:
        srvlib.close_all(clients)
        srvlib.reap(run, pids)


# ---------------------------------------------------------------------------
# nginx, master and two workers.

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp_paths}
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def _nginx_version(nginx):
    r = subprocess.run([nginx, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    text = r.stdout.decode("utf-8", "replace")
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text)
    return (tuple(int(x) for x in m.groups()) if m else (0, 0, 0)), text


def _nginx_conf(tmp, port, configure):
    """A configuration that writes only under TMP: every temp path of the
    modules this nginx was built with (nginx-light lacks some)."""
    return NGINX_CONF.format(tmp=tmp, port=port,
                             temp_paths=srvlib.nginx_temp_paths(configure, tmp))


def _http_keepalive_get(c):
    """One GET on an HTTP/1.1 keep-alive connection; the exact response."""
    c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 8192:
        b = c.recv(1)
        if not b:
            raise AssertionError("nginx closed the connection: %r" % head)
        head += b
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and m, head
    assert b"\r\nConnection: keep-alive\r\n" in head, head
    return srvlib.recv_exact(c, int(m.group(1)))


def test_servers_nginx_workers(ctx):
    nginx = srvlib.need("nginx", "nginx-light")
    version, configure = _nginx_version(nginx)
    if version < (1, 19, 5):
        raise lib.Skip("nginx %s lacks -e (1.19.5+): it would open /var/log/nginx first"
                       % ".".join(map(str, version)))
    port = lib.free_port()
    session = ctx.session()
    conf = os.path.join(ctx.tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_nginx_conf(ctx.tmp, port, configure))
    # -e: Debian's nginx opens its compiled-in error log before reading -c.
    run = srvlib.start_run(ctx, [nginx, "-p", ctx.tmp + "/", "-e",
                                 os.path.join(ctx.tmp, "error.log"), "-c", conf],
                           session, keep=True, name="nginx")
    pids = []
    clients = {}
    try:
        master, lfd, linode = _listener(ctx, session, run, port, "nginx")
        pids.append(master)
        evs = srvlib.wait_events(
            ctx, session,
            lambda e: sum(1 for x in e if x["type"] == "fork" and x["pid"] == master) >= 2,
            "nginx's master to fork 2 workers", proc=run)
        workers = [e["child_pid"] for e in evs if e["type"] == "fork" and e["pid"] == master]
        pids += workers
        assert len(workers) == 2, "nginx forked %s, expected 2 workers" % workers
        for w in workers:
            assert lib.ppid(w) == master, "worker %d's parent is not %d" % (w, master)
            assert lib.proc_fd_inode(w, lfd) == linode, (
                "worker %d does not hold the listener at fd %d" % (w, lfd))

        clients = srvlib.connect(port, K)
        for cport, c in clients.items():
            body = _http_keepalive_get(c)
            assert body == b"ok\n", "port %d: body %r" % (cport, body)

        evs = srvlib.wait_events(ctx, session, lambda e: len(accepted(e, linode)) >= K,
                                 "%d accepts" % K, proc=run)
        acc = _check_accepts(evs, port, lfd, linode, clients, set(workers))
        for a in acc.values():
            assert a["tid"] == a["pid"], a  # no thread pool in this configuration
            assert _count(evs, "close", a["inode"]) == 0, "closed while open: %s" % a
        srvlib.wait_kernel_view(port, {
            cport: (a["inode"], [(lib.comm(a["pid"]), a["pid"], a["fd"])])
            for cport, a in acc.items()})

        srvlib.close_all(clients)

        # The worker reads EOF on the idle keep-alive connection and
        # closes it: one peer_eof, then one close, in the accepting worker.
        evs = srvlib.wait_events(
            ctx, session, lambda e: all(_count(e, "close", a["inode"]) >= 1 for a in acc.values()),
            "a close of each of the %d accepted sockets" % K, proc=run)
        for cport, a in sorted(acc.items()):
            closes = of_inode(evs, "close", a["inode"])
            eofs = of_inode(evs, "peer_eof", a["inode"])
            assert len(closes) == 1, "port %d: %d closes: %s" % (cport, len(closes), closes)
            c = closes[0]
            assert (c["pid"], c["fd"], c["via"], c["ret"]) == (a["pid"], a["fd"], "close", 0), c
            assert len(eofs) == 1 and (eofs[0]["pid"], eofs[0]["fd"]) == (a["pid"], a["fd"]), eofs
            assert a["seq"] < eofs[0]["seq"] < c["seq"], (a, eofs[0], c)
            assert not [e for e in evs if e["inode"] == a["inode"] and e["pid"] != a["pid"]], (
                "inode %d touched by another process" % a["inode"])

        # SIGTERM is nginx's fast shutdown: the master stops its workers
        # and exits 0.
        srvlib.stop_server(ctx, run, master)
        status = srvlib.wait_exit(run)
        assert status == 0, "sockshim run exited %s after SIGTERM to nginx, expected 0; %s" % (
            status, ctx.output(run)[1].strip()[-1000:])
        left = lib.wait_gone([master] + workers)
        assert not left, "nginx processes outlived sockshim run: %s" % left
        srvlib.events(ctx, session)
    finally:
        srvlib.close_all(clients)
        srvlib.reap(run, pids)


# ---------------------------------------------------------------------------
# `sockshim run`: exit status and signal forwarding.

def _run_status(ctx, argv, session):
    r = ctx.run(srvlib.run_argv(ctx, session, argv), preload=False,
                extra_env=srvlib.run_env(ctx), timeout=60)
    return r.returncode, r.stderr


def test_servers_run_exit_status(ctx):
    cases = [
        (["sh", "-c", "exit 0"], 0),
        (["sh", "-c", "exit 7"], 7),
        (["sh", "-c", "exit 255"], 255),
        (["sh", "-c", "kill -TERM $$"], 128 + signal.SIGTERM),
        (["sh", "-c", "kill -KILL $$"], 128 + signal.SIGKILL),
        (["/nonexistent/sockshim-test-command"], 127),
    ]
    for argv, want in cases:
        session = ctx.session()
        status, err = _run_status(ctx, argv, session)
        assert status == want, "sockshim run -- %s exited %d, expected %d; stderr: %s" % (
            " ".join(argv), status, want, err.strip())
        assert not os.path.exists(ctx.session_path(session)), (
            "session %s left behind by sockshim run without --keep" % session)


SIGNAL_PROG = """\
import signal, sys, time
def on_term(sig, frame):
    sys.stdout.write("got %d\\n" % sig)
    sys.stdout.flush()
    sys.exit(42)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[1] + ".tmp", "w").close()
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
for _ in range(600):
    time.sleep(0.1)
sys.exit(3)
"""


def _wait_file(path, proc, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError("sockshim run exited %s before %s appeared: %s"
                                 % (proc.returncode, path, lib.Context.output(proc)[1]))
        if time.monotonic() > deadline:
            raise AssertionError("%s did not appear within %.0fs" % (path, timeout))
        time.sleep(srvlib.POLL)


def test_servers_run_forwards_sigterm(ctx):
    py = srvlib.python3()
    if not py:
        raise lib.Skip("python3 is not installed")
    # A program that handles SIGTERM: run exits with the program's status.
    prog = os.path.join(ctx.tmp, "sigprog.py")
    with open(prog, "w") as f:
        f.write(SIGNAL_PROG)
    ready = os.path.join(ctx.tmp, "ready")
    session = ctx.session()
    run = srvlib.start_run(ctx, [py, prog, ready], session, name="sigprog")
    _wait_file(ready, run)
    srvlib.signal_run(run, signal.SIGTERM)
    status = srvlib.wait_exit(run)
    out, err = ctx.output(run)
    assert status == 42 and out == "got %d\n" % signal.SIGTERM, (
        "status %s, stdout %r, stderr %r" % (status, out, err))
    assert not os.path.exists(ctx.session_path(session)), "session left behind"

    # A server that leaves SIGTERM at its default: killed, run exits 143.
    # SIGINT: http.server catches KeyboardInterrupt and exits 0. SIGHUP:
    # default action, 129.
    for sig, want in ((signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 0),
                      (signal.SIGHUP, 128 + signal.SIGHUP)):
        port = lib.free_port()
        session = ctx.session()
        run = srvlib.start_run(ctx, [py, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                     "--directory", ctx.tmp], session, name="http",
                               default_signals=True)
        pids = []
        try:
            server = _listener(ctx, session, run, port, "http.server")[0]
            pids.append(server)
            status_line = lib.http_get(port, "/no-such-file")[0]
            assert status_line == 404, status_line
            srvlib.signal_run(run, sig)
            status = srvlib.wait_exit(run)
            assert status == want, "%s to sockshim run: exited %s, expected %d; stderr %s" % (
                signal.Signals(sig).name, status, want, ctx.output(run)[1].strip()[-500:])
            assert not lib.alive(server), "http.server %d still running" % server
            assert not os.path.exists(ctx.session_path(session)), "session left behind"
        finally:
            srvlib.reap(run, pids)
