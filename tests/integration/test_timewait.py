"""`sockshim timewait`: the TIME_WAIT sockets a session's processes left,
matched to the ledger by their four addresses, against the kernel's own
count (ss).

- server side: nginx (4 workers) under `sockshim run` answers requests
  with Connection: close and closes first: every TIME_WAIT socket on its
  port is attributed to its workers, born by accept, closer local, with
  the keep-alive remedy; attributed + unattributed == ss's count.
- client side: a preloaded Python client opens 3,000 connections one after
  another to memcached (not preloaded), one command each, and closes
  first: attributed to the client's pid and command line, born by connect,
  closer local, port_share == count / the port range, the rate within 20%
  of the client's own, and the time to exhaustion consistent with both.
"""

import json
import os
import socket
import subprocess
import time

import acclib
import lib
import srvlib

SERVER_REQUESTS = 3000
CLIENT_CONNECTIONS = 3000
# The client's pace: slow enough that its run spans seconds (the rate is
# taken over the time since its first connection), fast enough to stay
# well under the test's budget.
CLIENT_PER_S = 1000
WAIT = 15.0


def _ss_time_wait(sport=None, dport=None):
    """The kernel's TIME_WAIT sockets with local port SPORT or peer port
    DPORT: [(local, peer)]."""
    filt = "( sport = :%d )" % sport if sport else "( dport = :%d )" % dport
    return [(r["local"], r["peer"]) for r in lib.ss_tcp("state", "all", filt)
            if r["state"] == "TIME-WAIT"]


def _ss_count_states(dport, states):
    return sum(1 for r in lib.ss_tcp("state", "all", "( dport = :%d )" % dport)
               if r["state"] in states)


def _timewait(ctx, session):
    """`sockshim timewait --session S --all --json`: (groups, summary,
    unattributed) and the seconds it took."""
    t = time.monotonic()
    r = subprocess.run([ctx.tool, "timewait", "--session", session, "--all", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=ctx.env(preload=False))
    took = time.monotonic() - t
    assert r.returncode == 0, "timewait exited %d: %s" % (r.returncode, r.stderr.decode())
    groups, summary, unattributed = [], None, []
    for line in r.stdout.decode().splitlines():
        o = json.loads(line)
        if o["type"] == "group":
            groups.append(o)
        elif o["type"] == "summary":
            summary = o
        elif o["type"] == "unattributed":
            unattributed.append(o)
    assert summary is not None, "no summary line:\n%s" % r.stdout.decode()
    assert summary["attributed"] == sum(g["count"] for g in groups)
    assert summary["unattributed"] == len(unattributed)
    return groups, summary, unattributed, took


def _stable_count(count_fn, what):
    """COUNT_FN() once it gives the same answer twice 0.2 s apart."""
    deadline = time.monotonic() + WAIT
    last = count_fn()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = count_fn()
        if now == last:
            return now
        last = now
    raise AssertionError("%s did not settle within %.0fs" % (what, WAIT))


def _tuple_of(u):
    return (u["local"], u["peer"])


def test_timewait_server_nginx(ctx):
    lib.room_for_time_wait(SERVER_REQUESTS + 1000)
    port = lib.free_port()
    # TIME_WAIT sockets an earlier server on this port number left (another
    # test's, up to 60 s ago): the host's, not the session's, and not counted.
    before = set(_ss_time_wait(sport=port))
    session = ctx.session("nginx")
    argv = [ctx.tool, "run", "--session", session, "--"] + acclib.nginx_argv(ctx, port)
    run = ctx.spawn(argv, preload=False, extra_env=srvlib.run_env(ctx), name="nginx")
    acclib.wait_http(port, run, path="/ready", timeout=30)
    started = time.monotonic()
    for i in range(SERVER_REQUESTS):
        st, _ = lib.http_get(port, "/r%d" % i)
        assert st == 200, "request %d: status %d" % (i, st)
    took = time.monotonic() - started
    # nginx closes each connection after its answer (keepalive_timeout 0):
    # its side ends in TIME_WAIT; wait for the last ones to get there.
    def ours():
        return len(set(_ss_time_wait(sport=port)) - before)

    kernel = _stable_count(ours, "TIME_WAIT on nginx's port")
    groups, summary, unattributed, tw_took = _timewait(ctx, session)
    assert ours() == kernel, "TIME_WAIT sockets left meanwhile"
    workers = {p for p in lib.descendants(run.pid)}
    mine = [g for g in groups if g["local"] == "127.0.0.1:%d" % port]
    assert mine, "no group on 127.0.0.1:%d: %s" % (port, groups)
    for g in mine:
        assert g["side"] == "server" and g["born"] == "accept" and g["closer"] == "local", g
        assert g["listener"] == "127.0.0.1:%d" % port, g
        assert g["peer"] == "127.0.0.1:*", g
        assert "keep-alive" in g["remedy"] and "tcp_tw_reuse" not in g["remedy"], g
        assert g["port_share"] is None and g["exhaustion_s"] is None, g
        for p in g["pids"]:
            assert p["pid"] in workers, "pid %d is not one of nginx's: %s" % (p["pid"], workers)
            assert p["comm"] == "nginx", p
        assert sum(p["count"] for p in g["pids"]) == g["count"], g
        assert g["rate_per_s"] > 0, g
    attributed = sum(g["count"] for g in mine)
    other = [u for u in unattributed
             if u["local"].endswith(":%d" % port) and _tuple_of(u) not in before]
    assert attributed + len(other) == kernel, (attributed, len(other), kernel)
    assert other == [], "TIME_WAIT sockets on nginx's port not attributed: %s" % other[:5]
    # The readiness requests (at least one) and ours, each one connection;
    # a client port used again while its TIME_WAIT lasted ends that one
    # (loopback reuses TIME_WAIT ports: 201 of 3,000 once, with other
    # suites making connections on the host). The exact check is the one
    # above, against the kernel's own count.
    assert SERVER_REQUESTS * 0.8 <= kernel <= SERVER_REQUESTS + 50, kernel
    pids = {p["pid"] for g in mine for p in g["pids"]}
    assert len(pids) >= 2, "all connections went to one worker: %s" % pids
    print("nginx: %d requests in %.1fs; %d TIME_WAIT on port %d, %d attributed to %d workers, "
          "rate %.0f/s; timewait took %.3fs over %d host TIME_WAIT sockets"
          % (SERVER_REQUESTS, took, kernel, port, attributed, len(pids),
             sum(g["rate_per_s"] for g in mine), tw_took, summary["time_wait"]))


CLIENT = r"""
import socket, sys, time
port, n, per_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic()
for i in range(n):
    ahead = t0 + i / per_s - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"version\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        got = c.recv(100)
        if not got:
            sys.exit("connection %d: closed by memcached after %r" % (i, reply))
        reply += got
    if not reply.startswith(b"VERSION "):
        sys.exit("connection %d: %r" % (i, reply))
    c.close()
print("%d %.6f" % (n, n / (time.monotonic() - t0)), flush=True)
# Still running when timewait looks: its command line is in /proc.
time.sleep(120)
"""


def _memcached(ctx, port):
    """memcached on 127.0.0.1:PORT, not preloaded, TCP only."""
    argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1", "-m", "16",
            "-c", "4096"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # it refuses root without a user to run as
    # Not ours and not preloaded: never under valgrind (there it cannot
    # raise its descriptor limit for -c and exits 71).
    proc = ctx.spawn(argv, preload=False, valgrind=False, name="memcached")
    lib.wait_port(port, proc=proc)
    return proc


def _fin_drained(dport):
    """Wait until no connection to DPORT is in FIN_WAIT: the server has
    closed each one the client closed, which is then in TIME_WAIT."""
    deadline = time.monotonic() + WAIT
    while _ss_count_states(dport, ("FIN-WAIT-1", "FIN-WAIT-2")) and \
            time.monotonic() < deadline:
        time.sleep(0.1)


def test_timewait_client_python(ctx):
    """A preloaded Python client opens CLIENT_CONNECTIONS connections one
    after another to memcached (not preloaded), one command each
    (`version`), and closes first."""
    session = ctx.session("client")
    lib.room_for_time_wait(CLIENT_CONNECTIONS + 1000)
    port = lib.free_port()
    srv = _memcached(ctx, port)
    client = None
    try:
        # What the readiness probe and an earlier server on this port
        # number left: not the session's.
        _fin_drained(port)
        before = set(_ss_time_wait(dport=port))
        script = os.path.join(ctx.tmp, "client.py")
        with open(script, "w") as f:
            f.write(CLIENT)
        argv = [ctx.python, script, str(port), str(CLIENT_CONNECTIONS), str(CLIENT_PER_S)]
        started = time.monotonic()
        client = ctx.spawn(argv, session=session, valgrind=False, name="client")
        deadline = started + 60
        while not ctx.output(client)[0].endswith("\n"):
            assert client.poll() is None, "client: %s" % (ctx.output(client),)
            assert time.monotonic() < deadline, "client not done in 60 s"
            time.sleep(0.01)
        # At once, as the rate is taken over the time since the first
        # connection up to now.
        groups, summary, unattributed, tw_took = _timewait(ctx, session)
        span = first_span = time.monotonic() - started
        rate = float(ctx.output(client)[0].split()[1])
        first = [g for g in groups if g["peer"] == "127.0.0.1:%d" % port]
        assert len(first) == 1, "want one group toward port %d: %s" % (port, groups)
        first_g = first[0]
        # Connections memcached has not closed yet are in FIN_WAIT_2, not
        # TIME_WAIT: count once none is left.
        _fin_drained(port)
        now = set(_ss_time_wait(dport=port))
        kernel = len(now - before)
        if kernel != sum(g["count"] for g in groups if g["peer"] == "127.0.0.1:%d" % port):
            groups, summary, unattributed, tw_took = _timewait(ctx, session)
            now = set(_ss_time_wait(dport=port))
            kernel = len(now - before)
            span = time.monotonic() - started
    finally:
        lib.stop(srv)
        if client is not None:
            lib.stop(client)
    mine = [g for g in groups if g["peer"] == "127.0.0.1:%d" % port]
    assert len(mine) == 1, "want one group toward port %d: %s" % (port, groups)
    g = mine[0]
    assert g["side"] == "client" and g["born"] == "connect" and g["closer"] == "local", g
    assert g["local"] == "127.0.0.1:*" and g["listener"] is None, g
    assert len(g["pids"]) == 1 and g["pids"][0]["count"] == g["count"], g
    assert g["pids"][0]["comm"].startswith("python"), g
    assert g["pids"][0]["pid"] == client.pid, (g["pids"], client.pid)
    assert g["pids"][0]["cmdline"] == " ".join(argv), g["pids"][0]
    other = [u for u in unattributed
             if u["peer"] == "127.0.0.1:%d" % port and _tuple_of(u) not in before]
    assert other == [], other[:5]
    # Loopback lets connect() take a local port whose TIME_WAIT toward the
    # same destination exists (tcp_tw_reuse 2): a connection of the client
    # may have replaced one of BEFORE's sockets (the readiness probe's),
    # with the same four addresses. Such a socket is the client's (counted
    # in the group) though its addresses are in BEFORE: at most as many as
    # BEFORE's addresses still in TIME_WAIT; none when BEFORE is empty.
    reused = g["count"] + len(other) - kernel
    assert 0 <= reused <= len(before & now), (g["count"], len(other), kernel,
                                              len(before & now))
    # Loopback may hand out a port still in TIME_WAIT again (that one
    # ends): the exact check is the one above, against the kernel.
    # The more TIME_WAIT sockets the host holds (other runs'), the more
    # ports connect() finds taken and the more often it reuses one of the
    # client's own toward the same destination (2,752 of 3,000 seen on a
    # host with 40,000 others). Under a sanitizer or valgrind the client is
    # slow enough that its first sockets may also reach the end of their 60
    # s in TIME_WAIT before the count (2,695 seen under ASan).
    floor = 0.9 if not (ctx.sanitizer or ctx.valgrind) else 0.5
    assert CLIENT_CONNECTIONS * floor <= kernel <= CLIENT_CONNECTIONS, kernel
    lo, hi = g["port_range"]
    size = hi - lo + 1
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        assert [lo, hi] == [int(x) for x in f.read().split()]
    # The ports toward that destination in TIME_WAIT: ours, and what was
    # there before (still there, or expired since).
    assert g["count"] <= g["dest_time_wait"] <= g["count"] + len(before), (g, len(before))
    assert abs(g["port_share"] - g["dest_time_wait"] / size) < 1e-9, g
    if not before:
        assert abs(g["port_share"] - g["count"] / size) < 1e-9, g
    assert g["births_60s"] == CLIENT_CONNECTIONS, g
    first_rate = first_g["rate_per_s"]
    if not (ctx.sanitizer or ctx.valgrind):
        assert abs(first_rate - rate) <= 0.2 * rate, (first_rate, rate)
    else:
        # The rate runs from the first birth to the command's clock read,
        # after its sock_diag dump, which a sanitized or valgrind command
        # makes slowly (1.9 s over 74,000 host TIME_WAIT sockets under
        # TSan, against the client's 3 s: 614 against 996 per second seen).
        # Both ends lie within the test's FIRST_SPAN: at least the births
        # over it, at most the client's own rate with the same margin.
        assert CLIENT_CONNECTIONS / first_span <= first_rate <= 1.2 * rate, (
            first_rate, rate, CLIENT_CONNECTIONS / first_span)
    # Exhaustion at that rate: never when a minute of it does not fill the
    # range; else no sooner than the free ports last at that rate, and
    # exactly that when they run out before the first of ours leaves
    # (60 s after its birth, at least 60 s - SPAN from now).
    if g["rate_per_s"] * 60 < size:
        assert g["exhaustion_s"] is None, g
    else:
        free_for = (1 - g["port_share"]) * size / g["rate_per_s"]
        assert g["exhaustion_s"] >= free_for * 0.999, (g, free_for)
        if free_for < 60 - span:
            assert abs(g["exhaustion_s"] - free_for) <= 0.01 * free_for + 0.01, (g, free_for)
    assert "tcp_tw_reuse" in g["remedy"] and "pool" in g["remedy"], g
    print("client: %d connections to memcached at %.0f/s (its own count); timewait: %d "
          "TIME_WAIT (ss: %d), rate %.0f/s, port share %.4f, exhaustion %s s; took %.3fs"
          % (CLIENT_CONNECTIONS, rate, g["count"], kernel, first_rate, g["port_share"],
             g["exhaustion_s"], tw_took))
