"""The shim follows every exec (issue 12, point 3): a preloaded program that
executes another with the shim's variables gone from the environment still
has the new image recorded in the same session, its own LD_PRELOAD entries
kept; SOCKSHIM_FOLLOW=0 turns that off; secure-execution and static images
are not followed, and the shim says so.

- tests/progs/followexec.c executes tests/progs/followchild.c each way a
  program can scrub the environment (execve with envp {NULL} or NULL,
  execle, TZ and NGINX only as nginx's binary upgrade, execv/execvp/execlp
  after unsetenv, fexecve, a vfork child): the child's accept on the
  inherited listener and its socket are in the session; `env -i` and
  Python's os.execve with {} the same. Exec failures keep errno exactly and
  the program's environment untouched.
- systemd-socket-activate, plain (the server gets the listener) and
  --inetd --accept (one process per connection), under `sockshim run`:
  every accept in `events` and `stats`, and no ledger entry keeps a
  reference to a closed connection.
- nginx-light's binary upgrade (USR2, WINCH, QUIT to the old master) under
  a bounded load: every request answered, `events` accepts == requests, the
  new master's workers recorded, the ledger exact afterwards.

Figures are printed for the report.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import acclib
import ledgerlib
import lib
import segment
import srvlib

WAIT = 15.0
# The settings a test gives the first process besides the session: each
# must reach the images it executes as it was in effect.
SETTINGS = {"SOCKSHIM_RING_EVENTS": "4096", "SOCKSHIM_MAX_SOCKETS": "512",
            "SOCKSHIM_ACCEPT": "observe", "SOCKSHIM_LOG": "warn"}
# The environments followexec can hand its child (tests/progs/followexec.c).
SCRUBBED_MODES = ("empty", "null", "execle", "nginx", "empty-values", "execv", "execvp",
                  "execlp", "fexecve", "vfork")
# systemd-socket-activate: connections served in each mode. Plain mode is
# one process; --inetd --accept starts one preloaded image per connection.
ACTIVATE_PLAIN = 1000
ACTIVATE_INETD = 1000
# nginx's binary upgrade: its workers, and the load's clients.
NGINX_WORKERS = 4
LOAD_CLIENTS = 4
LOAD_MAX = 20000


def say(fmt, *args):
    print("    " + (fmt % args if args else fmt), flush=True)


def followed_preload(ctx):
    """What the shim puts in front of a followed image's LD_PRELOAD: its
    own path; a sanitized build's runtime, then its path."""
    rt = ctx.sanitizer_runtime()
    return "%s:%s" % (rt, ctx.lib) if rt else ctx.lib


# ---------------------------------------------------------------------------
# followexec: one exec, its child's output, its events.

def child_env(out):
    """{NAME: VALUE} of the lines `env NAME=VALUE` followchild printed."""
    env = {}
    for line in out.splitlines():
        if line.startswith("env "):
            k, _, v = line[4:].partition("=")
            env.setdefault(k, v)
    return env


def ask_hello(port, timeout=10.0):
    """One connection to followchild: the pid in its "hello PID"."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        data = lib.recv_all(s)
    m = re.fullmatch(rb"hello (\d+)\n", data)
    assert m, "followchild answered %r" % data
    return int(m.group(1))


def wait_stdout(ctx, proc, pattern, timeout=WAIT):
    """The first match of PATTERN in PROC's stdout, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        out, err = ctx.output(proc)
        m = re.search(pattern, out)
        if m:
            return m
        if proc.poll() is not None and not re.search(pattern, ctx.output(proc)[0]):
            raise AssertionError("%s exited with %s before printing %r; stderr: %s"
                                 % (proc.args[0], proc.returncode, pattern, err[-1500:]))
        if time.monotonic() > deadline:
            raise AssertionError("no %r from %s after %.0fs" % (pattern, proc.args[0], timeout))
        time.sleep(0.02)


def run_followexec(ctx, session, mode, child_argv, extra_env=None, serve=True):
    """followexec MODE CHILD_ARGV under the preload in SESSION (with the
    SETTINGS); connects once when SERVE. Returns (proc, pid answering or
    None, stdout, stderr)."""
    env = dict(SETTINGS)
    env.update(extra_env or {})
    p = ctx.spawn([ctx.prog("followexec"), mode] + list(child_argv), session=session,
                  extra_env=env, name="followexec-" + mode)
    port = int(wait_stdout(ctx, p, r"port (\d+)").group(1))
    answered = ask_hello(port) if serve else None
    try:
        rc = p.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError("followexec %s still running after %.0fs: %s"
                             % (mode, WAIT, ctx.output(p))) from None
    out, err = ctx.output(p)
    assert rc == 0, "followexec %s exited %d; stdout %r; stderr %r" % (mode, rc, out, err)
    return p, answered, out, err


def after_exec(evs, pid):
    """The events of PID after its last successful-so-far exec record (the
    new image's), and that record."""
    execs = [e for e in evs if e["type"] == "exec" and e["pid"] == pid and e["ret"] == 0]
    assert execs, "no exec record of pid %d in %d events" % (pid, len(evs))
    last = execs[-1]
    return [e for e in evs if e["seq"] > last["seq"] and e["pid"] == pid], last


def listener_inode(evs, port):
    """The inode of the one listener on PORT (nginx calls listen() on it
    more than once)."""
    ls = {e["inode"] for e in evs if e["type"] == "listen"
          and e["local"] == "127.0.0.1:%d" % port and e["ret"] == 0}
    assert len(ls) == 1, "listeners on port %d: %s" % (port, ls)
    return ls.pop()


def check_followed(ctx, session, out, child_pid, lib_first=True):
    """followchild (CHILD_PID) ran under the shim in SESSION: the settings
    reached it, its inherited listener, its accept and its UDP socket are
    in the session's events after its exec record."""
    env = child_env(out)
    pre = env.get("LD_PRELOAD", "")
    assert ctx.lib in pre.split(":") and (not lib_first or
                                          (pre + ":").startswith(followed_preload(ctx) + ":")), (
        "the child's LD_PRELOAD is %r" % env.get("LD_PRELOAD"))
    assert env.get("SOCKSHIM_SESSION") == session, env
    for k, v in SETTINGS.items():
        assert env.get(k) == v, "the child has %s=%r, not %r: %s" % (k, env.get(k), v, env)
    evs = ctx.events(session)
    port = int(re.search(r"port (\d+)", out).group(1))
    lino = listener_inode(evs, port)
    mine, rec = after_exec(evs, child_pid)
    kinds = [e["type"] for e in mine]
    inherit = [e for e in mine if e["type"] == "inherit" and e["inode"] == lino]
    accepts = [e for e in mine if e["type"] == "accept" and e["ret"] >= 0
               and e.get("listen_inode") == lino]
    udp = [e for e in mine if e["type"] == "socket" and e["socktype"] == "dgram"]
    assert inherit and len(accepts) == 1 and udp, (
        "pid %d after exec of %s: %s" % (child_pid, rec.get("path"), kinds))
    assert any(e["type"] == "close" and e["fd"] == udp[0]["fd"] for e in mine), kinds
    return mine


# ---------------------------------------------------------------------------
# Exec with the shim scrubbed, each way.

def test_follow_scrubbed_env(ctx):
    child = ctx.prog("followchild")
    figures = []
    for mode in SCRUBBED_MODES:
        session = ctx.session(mode)
        p, answered, out, err = run_followexec(ctx, session, mode, [child, "{fd}"])
        child_pid = int(re.search(r"child (\d+)", out).group(1))
        assert answered == child_pid, (mode, answered, child_pid)
        if mode == "vfork":
            assert child_pid != p.pid and "parent env ok" in out, out
        else:
            assert child_pid == p.pid, (mode, child_pid, p.pid)
        assert not lib.sockshim_lines(err), "%s: %s" % (mode, err)
        env = child_env(out)
        if mode == "nginx":
            assert env.get("TZ") == "UTC" and env.get("NGINX", "").endswith(";"), env
        mine = check_followed(ctx, session, out, child_pid)
        figures.append("%s %d" % (mode, len(mine)))
    say("followed (events of the new image): %s", ", ".join(figures))


def other_preload():
    """A library a program could preload of its own (harmless: libm)."""
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
              "/lib", "/usr/lib"):
        p = os.path.join(d, "libm.so.6")
        if os.path.exists(p):
            return p
    raise lib.Skip("no libm.so.6 to preload beside the shim")


def test_follow_keeps_program_choices(ctx):
    """The program's own LD_PRELOAD entries are kept (ours in front), and a
    SOCKSHIM_SESSION it sets is its choice."""
    child = ctx.prog("followchild")
    other = other_preload()
    session = ctx.session("preload")
    _, pid, out, err = run_followexec(ctx, session, "preload", [child, "{fd}"],
                                      {"FOLLOW_OTHER": other})
    env = child_env(out)
    assert env.get("LD_PRELOAD") == "%s:%s" % (followed_preload(ctx), other), env
    check_followed(ctx, session, out, pid)
    say("LD_PRELOAD=%s kept: the child has %s", other, env["LD_PRELOAD"])

    # A session of the program's choosing: the child records there.
    session = ctx.session("mine")
    theirs = ctx.session("theirs")
    _, pid, out, err = run_followexec(ctx, session, "session", [child, "{fd}"],
                                      {"FOLLOW_OTHER": theirs})
    env = child_env(out)
    assert env.get("SOCKSHIM_SESSION") == theirs, env
    assert env.get("LD_PRELOAD") == followed_preload(ctx), env
    mine, _ = after_exec(ctx.events(session), pid)
    assert not mine, "the child recorded in the parent's session: %s" % mine
    got = [e["type"] for e in ctx.events(theirs) if e["pid"] == pid]
    assert "accept" in got and "inherit" in got, got
    say("SOCKSHIM_SESSION=%s of the program's choosing: the child recorded %d events there",
        theirs, len(got))

    # Variables the environment carries already: passed as they are.
    session = ctx.session("keep")
    _, pid, out, err = run_followexec(ctx, session, "keep", [child, "{fd}"],
                                      {"SOCKSHIM_LOG": "warn"})
    check_followed(ctx, session, out, pid)


def test_follow_env_i_and_python(ctx):
    """`env -i PROG` from a preloaded program, and Python's os.execve with
    an empty environment."""
    child = ctx.prog("followchild")
    env_prog = srvlib.need("env", "coreutils")
    session = ctx.session("envi")
    _, pid, out, err = run_followexec(ctx, session, "keep", [env_prog, "-i", child, "{fd}"])
    mine = check_followed(ctx, session, out, pid)
    execs = [e["path"] for e in ctx.events(session) if e["type"] == "exec" and e["pid"] == pid]
    # Under make valgrind, the launcher's exec of its tool comes first.
    execs = [x for x in execs if "/valgrind" not in x]
    assert len(execs) >= 2 and os.path.basename(execs[0]) == "env", execs
    say("env -i: %d exec records (%s), %d events of the child", len(execs), execs, len(mine))

    session = ctx.session("python")
    code = ("import os, socket, sys\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)\n"
            "s.set_inheritable(True)\n"
            "print('port %d' % s.getsockname()[1], flush=True)\n"
            "os.execve(sys.argv[1], [sys.argv[1], str(s.fileno())], {})\n")
    env = dict(SETTINGS)
    p = ctx.spawn([srvlib.python3(), "-c", code, child], session=session, extra_env=env,
                  valgrind=False, name="python")
    port = int(wait_stdout(ctx, p, r"port (\d+)").group(1))
    answered = ask_hello(port)
    assert p.wait(timeout=WAIT) == 0, ctx.output(p)
    out, err = ctx.output(p)
    assert answered == p.pid and not lib.sockshim_lines(err), (answered, p.pid, err)
    mine = check_followed(ctx, session, out, p.pid)
    say("python os.execve(..., {}): %d events of the child", len(mine))


def test_follow_off(ctx):
    """SOCKSHIM_FOLLOW=0: nothing is put back; the child is not followed
    (its exec is recorded, nothing after it)."""
    child = ctx.prog("followchild")
    for mode in ("empty", "execv", "vfork"):
        session = ctx.session(mode)
        p, answered, out, err = run_followexec(ctx, session, mode, [child, "{fd}"],
                                               {"SOCKSHIM_FOLLOW": "0"})
        child_pid = int(re.search(r"child (\d+)", out).group(1))
        assert answered == child_pid
        env = child_env(out)
        assert "LD_PRELOAD" not in env and "SOCKSHIM_SESSION" not in env, (mode, env)
        evs = ctx.events(session)
        mine, rec = after_exec(evs, child_pid)
        # Its parent's reaper releases what the child held when it reaps
        # it (close records via exit): the parent's shim, not the child's.
        mine = [e for e in mine if not (e["type"] == "close" and e["via"] in ("exit", "death"))]
        assert not mine, "%s: the unfollowed child recorded %s" % (mode, mine)
        assert not lib.sockshim_lines(err), err
    say("SOCKSHIM_FOLLOW=0: empty, execv and vfork children ran without the shim")


def test_follow_exec_failures(ctx):
    """Failed execs: errno exactly as without the shim (ENOENT, EACCES for a
    directory and a FIFO, EFAULT for unmapped strings and arrays, EINVAL),
    the environment untouched, no fault on an envp ending at a page's end."""
    for preload in (False, True):
        # Not under valgrind, which cannot survive an exec that fails late
        # (the program hangs there, with or without the shim).
        r = ctx.run([ctx.prog("followexec"), "fail"], session=ctx.session(), preload=preload,
                    extra_env=SETTINGS, valgrind=False)
        assert r.returncode == 0 and "fail ok" in r.stdout, (preload, r.returncode, r.stdout,
                                                             r.stderr)
        assert not lib.sockshim_lines(r.stderr), r.stderr
    say("13 failing execs: the same errno with and without the shim")


def test_follow_secure_exec(ctx):
    """A set-user-ID image runs in secure execution, where the loader
    ignores LD_PRELOAD: nothing is added, and the shim says so."""
    if os.geteuid() != 0:
        raise lib.Skip("needs root to make a set-user-ID copy owned by another user")
    if ctx.sanitizer:
        # Nothing is added to its empty environment, as it should be: the
        # sanitized followchild runs with the runtime's own defaults, and
        # LeakSanitizer refuses to run set-user-ID.
        raise lib.Skip("the sanitized set-user-ID copy runs without sanitizer options "
                       "(LeakSanitizer stops it)")
    st = os.statvfs(ctx.tmp)
    if st.f_flag & os.ST_NOSUID:
        raise lib.Skip("%s is mounted nosuid" % ctx.tmp)
    suid = os.path.join(ctx.tmp, "followchild-suid")
    shutil.copy(ctx.prog("followchild"), suid)
    os.chown(suid, 65534, 65534)
    os.chmod(suid, 0o4755)
    session = ctx.session()
    p, answered, out, err = run_followexec(ctx, session, "empty", [suid, "{fd}"])
    env = child_env(out)
    assert answered == p.pid
    assert not env, "a secure-execution image got %s" % env
    lines = lib.sockshim_lines(err)
    assert len(lines) == 1 and "not following the exec of" in lines[0] and \
        "set-user-ID" in lines[0], err
    mine, rec = after_exec(ctx.events(session), p.pid)
    assert not mine, mine
    say("set-user-ID child: environment left empty; %s", lines[0])


def test_follow_static_image(ctx):
    """A static image has no loader: the shim says so, passes its variables
    on anyway, and what that image executes is followed again."""
    static = lib.static_prog(ctx, "followchild")
    child = ctx.prog("followchild")
    session = ctx.session()
    p, answered, out, err = run_followexec(ctx, session, "empty",
                                           [static, "{fd}", "--exec", child, "-1"])
    assert answered == p.pid
    env = child_env(out)
    assert env.get("LD_PRELOAD") == followed_preload(ctx), env
    assert env.get("SOCKSHIM_SESSION") == session, env
    lines = lib.sockshim_lines(err)
    assert len(lines) == 1 and "is statically linked" in lines[0], err
    evs = ctx.events(session)
    execs = [e for e in evs if e["type"] == "exec" and e["pid"] == p.pid]
    mine = [e for e in evs if e["seq"] > execs[-1]["seq"] and e["pid"] == p.pid]
    kinds = [e["type"] for e in mine]
    # The static image's accept is not recorded; the dynamic image it
    # executed (without an exec record: no shim saw that exec) is.
    assert "accept" not in kinds and "inherit" in kinds and "socket" in kinds, kinds
    say("static image: not recorded, said (%s); the image it executed recorded %s",
        lines[0][:60], kinds)


# ---------------------------------------------------------------------------
# systemd-socket-activate.

def activate_exe():
    return srvlib.need("systemd-socket-activate", "systemd")


def connection_entries(ctx, session, port):
    """The ledger's entries of connections accepted on PORT."""
    led = segment.raw_ledger(ctx, session)
    local = "127.0.0.1:%d" % port
    return [e for e in led.socks.values() if e["local"] == local and not e["listener"]], led


def check_ledger_released(ctx, session, port, what):
    """No ledger entry of a connection on PORT (all closed by now) keeps a
    reference; returns the listener's entry. Fails naming the entries."""
    conns, led = connection_entries(ctx, session, port)
    held = [(e["inode"], e["refs"], [(h["pid"], h["fd"], h["how"]) for h in e["holders"]])
            for e in conns if e["refs"] > 0]
    assert not held, "%s: %d of %d closed connections still referenced in the ledger: %s" % (
        what, len(held), len(conns), held[:10])
    return conns, led


def test_follow_socket_activate_plain(ctx):
    """systemd-socket-activate -l ADDR -- followchild 3 --serve N: the server
    it executes (environment rebuilt without LD_PRELOAD) is followed."""
    exe = activate_exe()
    port = lib.free_port()
    session = ctx.session()
    n = ACTIVATE_PLAIN
    run = srvlib.start_run(ctx, [exe, "-l", "127.0.0.1:%d" % port, "--",
                                 ctx.prog("followchild"), "3", "--serve", str(n)],
                           session, keep=True, name="activate")
    try:
        pids = set()
        deadline = time.monotonic() + WAIT
        while True:  # the port is there once the activator listens
            try:
                pids.add(ask_hello(port, timeout=5.0))
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline or run.poll() is not None:
                    raise
                time.sleep(0.05)
        t0 = time.monotonic()
        for _ in range(n - 1):
            pids.add(ask_hello(port))
        took = time.monotonic() - t0
        status = srvlib.wait_exit(run, WAIT, "systemd-socket-activate's server")
        out, err = ctx.output(run)
        assert status == 0 and "served %d" % n in out, (status, out[-500:], err[-1500:])
        assert len(pids) == 1, "answered by %s" % pids
        (server,) = pids
        env = child_env(out)
        assert ctx.lib in env.get("LD_PRELOAD", "").split(":") and \
            env.get("SOCKSHIM_SESSION") == session, env
        evs = ctx.events(session)
        lino = listener_inode(evs, port)
        accepts = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0
                   and e.get("listen_inode") == lino]
        by = {e["pid"] for e in accepts}
        ent = acclib.listener(ctx, session, port)
        stats_accepts = ent["accepts"] if ent else None
        conns, led = check_ledger_released(ctx, session, port, "plain")
        lent = led.socks.get(lino)
        say("plain: %d connections in %.2f s, server pid %d; events accepts %d (by %s), "
            "stats accepts %s; ledger: %d connections, none referenced; listener refs %s",
            n, took, server, len(accepts), sorted(by), stats_accepts, len(conns),
            lent and lent["refs"])
        assert len(accepts) == n and by == {server}, (len(accepts), by)
        assert stats_accepts == n, acclib.summary(ent)
        assert lent is not None and lent["refs"] == 0, lent
    finally:
        srvlib.reap(run, [])


def read_inetd(port, timeout=10.0):
    """One connection to followchild under --inetd: its pid and environment
    (it writes them to the connection, its standard output)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        data = lib.recv_all(s).decode("utf-8", "replace")
    m = re.match(r"child (\d+)\n", data)
    assert m, "followchild under --inetd answered %r" % data
    return int(m.group(1)), child_env(data)


def test_follow_socket_activate_inetd(ctx):
    """systemd-socket-activate --inetd --accept: a process per connection,
    forked by the activator and executed with a rebuilt environment: each
    is followed; every accept recorded; no reference left to a closed
    connection, and the listener's references are its live holders."""
    exe = activate_exe()
    port = lib.free_port()
    session = ctx.session()
    n = ACTIVATE_INETD
    run = srvlib.start_run(ctx, [exe, "-l", "127.0.0.1:%d" % port, "--inetd", "--accept", "--",
                                 ctx.prog("followchild"), "-1"], session, keep=True,
                           name="activate")
    activator = None
    try:
        srvlib.wait_events(ctx, session, lambda evs: listener_inode_or_none(evs, port),
                           "the activator's listener", proc=run)
        activator = run_child(run.pid)
        t0 = time.monotonic()
        children = []
        for i in range(n):
            pid, env = read_inetd(port)
            assert ctx.lib in env.get("LD_PRELOAD", "").split(":") and \
                env.get("SOCKSHIM_SESSION") == session, (i, env)
            children.append(pid)
        took = time.monotonic() - t0
        left = lib.wait_gone(children)
        assert not left, "children still running: %s" % left
        evs = ctx.events(session)
        lino = listener_inode(evs, port)
        accepts = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0
                   and e.get("listen_inode") == lino]
        followed = {e["pid"] for e in evs if e["type"] == "socket" and e["socktype"] == "dgram"}
        ent = acclib.listener(ctx, session, port)
        # The last child's exit is recorded a moment after its connection
        # ends: give the ledger that moment.
        deadline = time.monotonic() + WAIT
        while True:
            try:
                conns, led = check_ledger_released(ctx, session, port, "--inetd")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        lent = led.socks[lino]
        live = [(h["pid"], h["fd"]) for h in lent["holders"]]
        say("--inetd --accept: %d connections in %.2f s (%.1f ms each), %d children "
            "followed; events accepts %d, stats accepts %s; ledger: %d connections, none "
            "referenced; listener refs %d, holders %s (activator %s)", n, took,
            1000.0 * took / n, len(set(children) & followed), len(accepts),
            ent and ent["accepts"], len(conns), lent["refs"], live, activator)
        assert set(children) <= followed, "children not followed: %s" % sorted(
            set(children) - followed)[:10]
        assert len(accepts) == n, len(accepts)
        assert ent is not None and ent["accepts"] == n, acclib.summary(ent)
        assert lent["refs"] == len(live) and {p for p, _ in live} == {activator}, (
            lent["refs"], live, activator)
    finally:
        srvlib.reap(run, [activator] if activator else [])


def listener_inode_or_none(evs, port):
    return [e for e in evs if e["type"] == "listen" and e["local"] == "127.0.0.1:%d" % port]


def run_child(pid):
    """The one child of `sockshim run` (PID): the command it started."""
    kids = [p for p in lib.descendants(pid) if lib.ppid(p) == pid]
    assert len(kids) == 1, "sockshim run %d has children %s" % (pid, kids)
    return kids[0]


# ---------------------------------------------------------------------------
# nginx's binary upgrade.

def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (FileNotFoundError, ValueError):
        return None


def children_of(pid):
    return [p for p in lib.descendants(pid) if lib.ppid(p) == pid]


class Load:
    """LOAD_CLIENTS threads asking GET /load/I until stopped (at most
    LOAD_MAX requests in all): every request must be answered 200."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = 0
        self.pids = {}
        self.errors = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True)
                        for _ in range(LOAD_CLIENTS)]
        for t in self.threads:
            t.start()

    def client(self):
        while not self.stop.is_set():
            with self.lock:
                if self.sent >= LOAD_MAX or self.errors:
                    return
                self.sent += 1
                i = self.sent
            try:
                st, body = lib.http_get(self.port, "/load/%d" % i)
                m = re.fullmatch(rb"nginx /load/\d+ pid (\d+)\n", body)
                if st != 200 or not m:
                    raise AssertionError("GET /load/%d: %d %r" % (i, st, body))
            except (OSError, AssertionError) as e:
                with self.lock:
                    self.errors.append("%s: %s" % (type(e).__name__, e))
                return
            with self.lock:
                self.answered += 1
                pid = int(m.group(1))
                self.pids[pid] = self.pids.get(pid, 0) + 1
            time.sleep(0.002)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "load clients still running"


def nginx_upgrade(ctx, check):
    """nginx (daemon on, as the upgrade needs: a master whose parent is its
    starter ignores USR2) under `sockshim run --keep`; USR2 makes it execute
    a new master with only TZ and NGINX in its environment; WINCH retires
    the old workers, QUIT the old master; a load runs throughout. Then
    CHECK(ctx, session, port, facts) while the new master serves."""
    port = lib.free_port()
    argv = acclib.nginx_argv(ctx, port, workers=NGINX_WORKERS)
    conf = os.path.join(ctx.tmp, "nginx.conf")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("daemon off;", "daemon on;"))
    pidfile = os.path.join(ctx.tmp, "nginx.pid")
    session = ctx.session()
    run = srvlib.start_run(ctx, argv, session, keep=True, name="nginx")
    masters = []
    load = None
    try:
        assert srvlib.wait_exit(run, WAIT, "nginx's starter") == 0, ctx.output(run)
        old = lib.wait_for(lambda: read_pid(pidfile), "nginx.pid")
        masters.append(old)
        old_workers = lib.wait_for(lambda: len(children_of(old)) == NGINX_WORKERS and
                                     children_of(old), "the old master's workers")
        load = Load(port)
        lib.wait_for(lambda: load.answered >= 200 or load.errors, "load on the old workers")
        os.kill(old, signal.SIGUSR2)
        new = lib.wait_for(lambda: os.path.exists(pidfile + ".oldbin") and
                             (read_pid(pidfile) or old) != old and read_pid(pidfile),
                             "the new master's nginx.pid")
        masters.append(new)
        new_workers = lib.wait_for(lambda: len(children_of(new)) == NGINX_WORKERS and
                                     children_of(new), "the new master's workers")
        at_usr2 = load.answered
        os.kill(old, signal.SIGWINCH)
        # The new master is the old one's child too: wait for the workers.
        lib.wait_for(lambda: not lib.wait_gone(old_workers, timeout=0.1),
                     "the old workers to quit")
        at_winch = load.answered
        lib.wait_for(lambda: load.answered >= at_winch + 300 or load.errors,
                     "load on the new workers")
        os.kill(old, signal.SIGQUIT)
        lib.wait_for(lambda: not lib.alive(old), "the old master to quit")
        lib.wait_for(lambda: load.answered >= at_winch + 500 or load.errors, "more load")
        load.finish()
        assert not load.errors, "%d requests failed; first: %s" % (len(load.errors),
                                                                    load.errors[0])
        check(ctx, session, port, {"old": old, "new": new, "old_workers": old_workers,
                                   "new_workers": new_workers, "load": load,
                                   "at_usr2": at_usr2, "at_winch": at_winch})
    finally:
        if load:
            load.stop.set()
        for m in reversed(masters):
            kids = children_of(m) if lib.alive(m) else []
            if lib.alive(m):
                try:
                    os.kill(m, signal.SIGQUIT)
                except ProcessLookupError:
                    pass
            left = lib.wait_gone([m] + kids, timeout=10)
            for p in left:
                lib.stop_pid(p, grace=2.0)
        srvlib.reap(run, [])


def check_upgrade_accepts(ctx, session, port, f):
    load = f["load"]
    total = load.answered
    evs = ctx.events(session)
    lino = listener_inode(evs, port)
    accepts = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0
               and e.get("listen_inode") == lino]
    by = {}
    for e in accepts:
        by[e["pid"]] = by.get(e["pid"], 0) + 1
    new_execs = [e for e in evs if e["type"] == "exec" and e["pid"] == f["new"]]
    served_new = sum(c for p, c in load.pids.items() if p in f["new_workers"])
    say("binary upgrade: %d requests answered (%d before USR2, %d before WINCH); events "
        "accepts %d; old workers %s, new workers %s; accepts per pid %s; answers per pid %s",
        total, f["at_usr2"], f["at_winch"], len(accepts), f["old_workers"], f["new_workers"],
        by, load.pids)
    assert new_execs, "no exec record of the new master %d" % f["new"]
    assert len(accepts) == total, "events accepts %d != requests %d" % (len(accepts), total)
    assert served_new > 0 and by == load.pids, (by, load.pids)


def check_upgrade_holders(ctx, session, port, f):
    """holders --json == /proc for the new master and its workers, no STALE
    holder, every holder named by the ledger."""
    live = [f["new"]] + children_of(f["new"])
    truth = lib.proc_set(live)
    objs = ledgerlib.holders_json(ctx, session)
    got, stale, other = set(), [], []
    for o in objs:
        for h in o["holders"]:
            t = (h["pid"], h["fd"], o["inode"])
            if h["stale"]:
                stale.append((t, h.get("stale_reason")))
            elif h["source"] == "ledger+proc":
                got.add(t)
            else:
                other.append((t, h["source"]))
    led = segment.raw_ledger(ctx, session)
    lino = listener_inode(ctx.events(session), port)
    lent = led.socks.get(lino, {})
    evidence = ("listener refs %s, %d holders in its entry, holder_overflow %s; session "
                "holder_overflow %s" % (lent.get("refs"), len(lent.get("holders", ())),
                                        lent.get("holder_overflow"),
                                        led.header["holder_overflow"]))
    say("after the upgrade: %d holders by the ledger and /proc, /proc %d, stale %s, other "
        "sources %s; %s", len(got), len(truth), stale, other, evidence)
    assert got == truth and not stale and not other, (
        "holders --json != /proc after the upgrade (%s)\n  only in holders: %s\n"
        "  only in /proc: %s\n  stale: %s\n  other sources: %s"
        % (evidence, sorted(got - truth), sorted(truth - got), stale, other))


def test_follow_nginx_binary_upgrade(ctx):
    """Every request answered across the upgrade; `events` accepts ==
    requests, per worker as the clients saw them: the new master (started
    with TZ and NGINX only) and its workers recorded."""
    nginx_upgrade(ctx, check_upgrade_accepts)


def test_follow_nginx_upgrade_holders(ctx):
    """After the upgrade, the ledger is exact: `holders --json` == /proc
    for the new master and its workers, no STALE holder."""
    nginx_upgrade(ctx, check_upgrade_holders)
