"""Helpers of test_accept.py: the session's listener table (read straight
from the segment by segment.raw_listeners, and through `sockshim stats
--json`, the two cross-checked), the acceptpool test server and its client,
which syscall a worker sleeps in, and configurations of real servers
(gunicorn, nginx, apache2 prefork, uWSGI) in a temp dir.

Loopback only; every wait has a deadline; every loop is bounded.
"""

import os
import re
import socket
import threading
import time

import lib
import segment
import srvlib

# How long a server gets to reach a state a test waits for.
WAIT = 15.0
POLL = 0.02

def stats_command(ctx, session):
    """`sockshim stats --session S --json`: one dict per listener."""
    return lib.json_lines(lib.tool(ctx, ["stats", "--session", session, "--json"]).stdout,
                          "sockshim stats --json")


# The command's JSON keys for the segment's counters.
CMD_KEYS = {"accepts": "accepts", "spurious_wakeups": "spurious", "empty_accepts": "empty",
            "accept_calls": "accept_calls", "eintr": "eintr", "econnaborted": "econnaborted",
            "emfile_enfile": "emfile", "poll_wakeups": "wakeups",
            "lock_acquisitions": "lock_acquisitions", "lock_contended": "lock_contended",
            "lock_owner_died": "owner_died", "waiters": "waiters", "max_waiters": "max_waiters",
            "poll_token_handoffs": "token_handoffs"}
CMD_WORKER = {"calls": "calls", "accepts": "accepts", "spurious_wakeups": "spurious",
              "empty_accepts": "empty", "eintr": "eintr"}


def thread_ended(pid, tid):
    """As `sockshim stats` judges a worker row: its thread's /proc entry
    is gone, or the thread is dead (Z or X)."""
    return lib.proc_state(pid, tid) in (None, "Z", "X")


def cross_check(raw, cmd):
    """The command's view of a listener (CMD) equals the segment's (RAW),
    read while nothing moved, the rows of ended threads retired as the
    command retires them. Returns a list of differences."""
    raw = dict(raw)
    retired = dict(raw["retired"])
    live = []
    for w in raw["workers"]:
        if not thread_ended(w["pid"], w["tid"]):
            live.append(w)
            continue
        retired["count"] += 1
        raw["waiters"] -= w["waiting"]  # killed while waiting: waits no more
        for k in ("calls", "accepts", "spurious", "empty", "eintr"):
            retired[k] += w[k]
    raw["workers"], raw["retired"] = live, retired
    if raw["holder_pid"] and thread_ended(raw["holder_pid"], raw["holder_tid"]):
        raw["holder_pid"] = raw["holder_tid"] = 0  # ended holding it: holds nothing
    bad = []
    for k in ("local", "inode", "mode"):
        if cmd.get(k) != raw[k]:
            bad.append("%s: command %r, segment %r" % (k, cmd.get(k), raw[k]))
    for ck, rk in CMD_KEYS.items():
        if cmd.get(ck) != raw[rk]:
            bad.append("%s: command %r, segment %s %r" % (ck, cmd.get(ck), rk, raw[rk]))
    h = cmd.get("holder")
    got = (h.get("pid"), h.get("tid")) if isinstance(h, dict) else (0, 0)
    if got != (raw["holder_pid"], raw["holder_tid"]):
        bad.append("holder: command %r, segment pid %d tid %d"
                   % (h, raw["holder_pid"], raw["holder_tid"]))
    want = {k: raw["retired"][k] for k in ("count", "calls", "accepts", "spurious", "empty",
                                           "eintr")}
    if cmd.get("retired_workers") != want:
        bad.append("retired_workers: command %r, segment %r" % (cmd.get("retired_workers"), want))
    cw = {(w.get("pid"), w.get("tid")): w for w in cmd.get("workers", [])}
    rw = {(w["pid"], w["tid"]): w for w in raw["workers"]}
    if set(cw) != set(rw):
        bad.append("workers: command %s, segment %s" % (sorted(cw), sorted(rw)))
    for key in set(cw) & set(rw):
        for ck, rk in CMD_WORKER.items():
            if cw[key].get(ck) != rw[key][rk]:
                bad.append("worker %s %s: command %r, segment %r"
                           % (key, ck, cw[key].get(ck), rw[key][rk]))
    return bad


def listener(ctx, session, port, cross=True):
    """The listener on 127.0.0.1:PORT in SESSION's table (segment view),
    or None. With CROSS: read twice from the segment around one run of
    `sockshim stats`; if the segment did not move meanwhile, the command
    must agree with it exactly."""
    want = "127.0.0.1:%d" % port

    def find(entries):
        hits = [e for e in entries if e.get("local") == want]
        if len(hits) > 1:
            raise AssertionError("%d listener entries for %s: %s" % (len(hits), want, hits))
        return hits[0] if hits else None

    before = find(segment.raw_listeners(ctx, session))
    if not cross or before is None:
        return before
    for _ in range(20):
        cmd = find(stats_command(ctx, session))
        after = find(segment.raw_listeners(ctx, session))
        if _stable(before, after):
            if cmd is None:
                raise AssertionError("sockshim stats shows no listener %s; the segment has %s"
                                     % (want, before))
            bad = cross_check(after, cmd)
            if bad:
                raise AssertionError("sockshim stats --json disagrees with the segment on %s:"
                                     "\n  %s" % (want, "\n  ".join(bad)))
            after["command"] = cmd
            return after
        before = after
        time.sleep(0.05)
    return after  # never quiet (a busy server): the segment's view


def _stable(a, b):
    if a is None or b is None:
        return a is b
    keys = [k for k in segment.LISTENER_COUNTERS if k not in ("held_since_ns",)]
    if any(a[k] != b[k] for k in keys):
        return False
    wa = [(w["pid"], w["tid"], w["calls"], w["accepts"], w["spurious"], w["empty"], w["eintr"])
          for w in a["workers"]]
    wb = [(w["pid"], w["tid"], w["calls"], w["accepts"], w["spurious"], w["empty"], w["eintr"])
          for w in b["workers"]]
    return wa == wb and a["retired"] == b["retired"]


def wait_listener(ctx, session, port, ready, what, timeout=WAIT, procs=(), cross=False):
    """Read the listener on PORT until READY(entry) holds; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if os.path.exists(ctx.session_path(session)):
            last = listener(ctx, session, port, cross=cross)
            if last is not None and ready(last):
                return last
        for p in procs:
            if p.poll() is not None:
                raise AssertionError("waiting for %s: pid %d exited with %s; stderr: %s"
                                     % (what, p.pid, p.returncode,
                                        ctx.output(p)[1].strip()[-1500:]))
        if time.monotonic() > deadline:
            raise AssertionError("waiting for %s: not there after %.0fs; listener: %s"
                                 % (what, timeout, summary(last)))
        time.sleep(POLL)


def summary(e):
    """The counters of listener entry E on one line, for messages."""
    if e is None:
        return "none"
    keys = ("mode", "accept_calls", "accepts", "spurious", "empty", "wakeups", "eintr",
            "lock_acquisitions", "lock_contended", "owner_died", "waiters", "max_waiters",
            "holder_pid")
    return " ".join("%s=%s" % (k, e[k]) for k in keys)


def per_pid(entry):
    """{pid: accepts} summed over the threads of each process."""
    out = {}
    for w in entry["workers"]:
        out[w["pid"]] = out.get(w["pid"], 0) + w["accepts"]
    return out


# ---------------------------------------------------------------------------
# acceptpool (tests/progs/acceptpool.c).

class Pool:
    """An acceptpool process under the preload: its Popen, port, and what
    it printed."""

    def __init__(self, ctx, proc, port, n):
        self.ctx, self.proc, self.port, self.n = ctx, proc, port, n

    def lines(self, kind):
        """Its stdout lines starting with KIND, split into fields."""
        out = self.ctx.output(self.proc)[0]
        return [l.split() for l in out.splitlines() if l.startswith(kind + " ")]

    def workers(self):
        """[(pid, tid)] of the workers that started."""
        return [(int(f[1]), int(f[2])) for f in self.lines("start")]

    def totals(self):
        """{(pid, tid): (accepts, eintr)} from the workers' last lines."""
        return {(int(f[1]), int(f[2])): (int(f[4]), int(f[6])) for f in self.lines("worker")}

    def reaped(self):
        """{pid: (how, value, t_ns)} from the parent's reaped lines."""
        return {int(f[1]): (f[2], int(f[3]), int(f[4])) for f in self.lines("reaped")}

    def exits(self):
        """{pid: t_ns} of workers that left on EINTR after SIGTERM."""
        return {int(f[1]): int(f[3]) for f in self.lines("exit")}


def start_pool(ctx, session, mode, model, n=8, slow_ms=0, accept4=False, name="acceptpool",
               recycle=0):
    """acceptpool -m MODEL -n N under LD_PRELOAD with SOCKSHIM_ACCEPT=MODE;
    returns a Pool once every worker has started."""
    portfile = os.path.join(ctx.tmp, "%s.%d.port" % (name, len(ctx._procs)))
    argv = [ctx.prog("acceptpool"), "-m", model, "-n", str(n), "-p", portfile]
    if slow_ms:
        argv += ["-s", str(slow_ms)]
    if accept4:
        argv.append("-4")
    if recycle:
        argv += ["-r", str(recycle)]
    proc = ctx.spawn(argv, session=session, extra_env={"SOCKSHIM_ACCEPT": mode}, name=name)
    deadline = time.monotonic() + WAIT
    port = None
    while True:
        if proc.poll() is not None:
            raise AssertionError("acceptpool exited with %s: %s"
                                 % (proc.returncode, ctx.output(proc)[1].strip()[-1500:]))
        if port is None and os.path.exists(portfile):
            with open(portfile) as f:
                port = int(f.read())
        if port is not None:
            pool = Pool(ctx, proc, port, n)
            if len(pool.workers()) >= n:
                return pool
        if time.monotonic() > deadline:
            raise AssertionError("acceptpool: %s workers started after %.0fs (port %s): %s"
                                 % (0 if port is None else len(Pool(ctx, proc, port, n)
                                                               .workers()),
                                    WAIT, port, ctx.output(proc)))
        time.sleep(POLL)


def ask(port, timeout):
    """One connection to the pool: its answer (pid, tid, seq)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        data = b""
        while len(data) < 128:
            b = s.recv(128)
            if not b:
                break
            data += b
    m = re.fullmatch(rb"(\d+) (\d+) (\d+)\n", data)
    if not m:
        raise AssertionError("acceptpool answered %r" % data)
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def hammer(port, n, clients=8, timeout=10.0):
    """N connections to the pool from CLIENTS threads; the answers, in no
    particular order. Any failure fails the whole run."""
    answers, errors = [], []
    lock = threading.Lock()
    left = [n]

    def client():
        while True:
            with lock:
                if left[0] <= 0 or errors:
                    return
                left[0] -= 1
            try:
                a = ask(port, timeout)
            except (OSError, AssertionError) as e:
                with lock:
                    errors.append("%s: %s" % (type(e).__name__, e))
                return
            with lock:
                answers.append(a)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + max(60.0, n / 100.0)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        raise AssertionError("clients still running after %.0fs (%d answers)"
                             % (max(60.0, n / 100.0), len(answers)))
    if errors:
        raise AssertionError("%d of %d connections failed; first: %s"
                             % (len(errors), n, errors[0]))
    return answers


def check_answers(answers, n):
    """N answers, all distinct, and per worker exactly the sequence 1..k:
    no connection answered twice, none lost. Returns {(pid, tid): k}."""
    if len(answers) != n:
        raise AssertionError("%d answers for %d connections" % (len(answers), n))
    if len(set(answers)) != n:
        raise AssertionError("%d distinct answers for %d connections" % (len(set(answers)), n))
    seqs = {}
    for pid, tid, seq in answers:
        seqs.setdefault((pid, tid), []).append(seq)
    for key, s in seqs.items():
        if sorted(s) != list(range(1, len(s) + 1)):
            raise AssertionError("worker %s answered sequence numbers %s..., not 1..%d"
                                 % (key, sorted(s)[:10], len(s)))
    return {k: len(s) for k, s in seqs.items()}


# ---------------------------------------------------------------------------
# /proc.

def syscall_of(pid):
    """The number of the syscall PID (a thread id works too) sleeps in,
    from /proc/PID/syscall; None when running or unreadable."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            first = f.read().split()
    except OSError:
        return None
    if not first or first[0] in ("running", "-1"):
        return None
    try:
        return int(first[0])
    except ValueError:
        return None


def wait_syscall(pid, numbers, what, timeout=WAIT):
    """Wait until PID sleeps in one of the syscalls NUMBERS."""
    deadline = time.monotonic() + timeout
    while True:
        n = syscall_of(pid)
        if n in numbers:
            return n
        if time.monotonic() > deadline:
            raise AssertionError("pid %d: not in %s after %.0fs (syscall %s)"
                                 % (pid, what, timeout, n))
        time.sleep(POLL)


def lock_waits(lay):
    """The system calls a waiter for the accept lock sleeps in: futex_waitv
    (the lock word and its count of handlers run), plain futex before Linux
    5.16."""
    return {lay["SYS_futex"], lay["SYS_futex_waitv"]}


def holder_waits(lay):
    """The system calls the accept lock's holder waits for a connection in:
    accept, or, when it took the lock after sleeping for it, the ppoll that
    lets the program's signals in before the accept."""
    return {lay["SYS_accept"], lay["SYS_accept4"], lay["SYS_ppoll"]}


def wait_idle(ctx, pids, what, timeout=WAIT):
    """Wait until every process of PIDS sleeps where a worker waits for a
    connection: accept, the accept lock's futex, poll/select/epoll. A
    server signalled before its workers got there is another test (uWSGI
    2.0 hangs on SIGTERM during its workers' start-up, shim or not)."""
    lay = segment.layout(ctx.root)
    waits = {lay["SYS_accept"], lay["SYS_accept4"]} | lock_waits(lay) | {
        n for n in lay["SYS_waits"] if n >= 0}
    deadline = time.monotonic() + timeout
    while True:
        busy = {p: syscall_of(p) for p in pids if syscall_of(p) not in waits}
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: processes not waiting for connections after %.0fs "
                                 "(pid: syscall) %s" % (what, timeout, busy))
        time.sleep(POLL)


def voluntary_switches(pids):
    """Voluntary context switches of every thread of PIDS so far: each is
    one sleep, so one wakeup. The kernel counts the wakeups of a herd that
    poll/select swallow (a woken waiter that finds the listener empty again
    sleeps without returning), which the shim cannot see."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            total += int(line.split()[1])
            except OSError:
                pass
    return total


def wait_http(port, proc, path="/ready", timeout=WAIT, status=200):
    """Retry GET PATH until it answers STATUS (refused connections are
    never accepted, so they cost the statistics nothing). Fails early if
    PROC died."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if proc.poll() is not None:
            raise AssertionError("server exited with %s before answering on port %d"
                                 % (proc.returncode, port))
        try:
            st, body = lib.http_get(port, path, timeout=timeout)
            if st == status:
                return body
            last = "status %d" % st
        except (OSError, AssertionError) as e:
            last = str(e)
        if time.monotonic() > deadline:
            raise AssertionError("port %d: GET %s did not answer %d within %.0fs: %s"
                                 % (port, path, status, timeout, last))
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Real servers, each in ctx.tmp, listening on 127.0.0.1:PORT.

WSGI_APP = '''\
import os


def app(environ, start_response):
    body = ("hello %s pid %d\\n" % (environ["PATH_INFO"], os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = app
'''

APP_BODY_RE = re.compile(rb"hello (\S+) pid (\d+)\n")


def write_wsgi_app(ctx):
    d = os.path.join(ctx.tmp, "app")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "app.py"), "w") as f:
        f.write(WSGI_APP)
    return d


def gunicorn_argv(ctx, port, workers=4):
    exe = srvlib.need("gunicorn", "gunicorn")
    d = write_wsgi_app(ctx)
    # Debian's gunicorn is a Python script: sockshim run preloads the shim
    # into its interpreter. sync workers: select, then non-blocking accept.
    return [exe, "--workers", str(workers), "--worker-class", "sync", "--bind",
            "127.0.0.1:%d" % port, "--chdir", d, "--graceful-timeout", "5",
            "--access-logfile", "-", "--log-level", "info", "app:app"]


def uwsgi_argv(ctx, port, processes=4):
    exe = srvlib.need("uwsgi", "uwsgi uwsgi-plugin-python3")
    if not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        raise lib.Skip("the uWSGI python3 plugin is not installed "
                       "(apt-get install -y uwsgi-plugin-python3)")
    d = write_wsgi_app(ctx)
    return [exe, "--plugin", "python3", "--http-socket", "127.0.0.1:%d" % port, "--master",
            "--processes", str(processes), "--chdir", d, "--wsgi-file",
            os.path.join(d, "app.py"), "--die-on-term", "--need-app", "--disable-logging"]


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    log_format perpid '$pid $status $request_uri';
    access_log {tmp}/nginx-access.log perpid;
{temp_paths}
    keepalive_timeout 0;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "nginx $uri pid $pid\\n"; }}
    }}
}}
"""


def nginx_argv(ctx, port, workers=4):
    exe = srvlib.need("nginx", "nginx-light")
    conf = os.path.join(ctx.tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=ctx.tmp, port=port, workers=workers,
                                  temp_paths=srvlib.nginx_temp_paths(srvlib.nginx_configure(exe),
                                                                     ctx.tmp)))
    # -e: the error log before the configuration is read (1.19.5+).
    return [exe, "-p", ctx.tmp, "-c", conf, "-e", os.path.join(ctx.tmp, "nginx-error.log")]


APACHE_CONF = """\
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/apache.pid"
Mutex file:{root} default
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
{user}
ErrorLog "{root}/apache-error.log"
LogLevel info
LogFormat "%P %>s %U" perpid
CustomLog "{root}/apache-access.log" perpid
DocumentRoot "{root}/htdocs"
<Directory "{root}/htdocs">
    Require all granted
</Directory>
KeepAlive Off
# A fixed pool: no spare-server maintenance (it kills children with a
# dummy connection of its own) while the test counts.
StartServers {workers}
MinSpareServers {workers}
MaxSpareServers {workers}
ServerLimit {workers}
MaxRequestWorkers {workers}
MaxConnectionsPerChild 0
GracefulShutdownTimeout 5
"""


def apache_argv(ctx, port, workers=4):
    exe = srvlib.need("apache2", "apache2")
    for m in ("mod_mpm_prefork.so", "mod_authz_core.so"):
        if not os.path.exists("/usr/lib/apache2/modules/" + m):
            raise lib.Skip("apache2: %s is missing (apt-get install -y apache2)" % m)
    root = ctx.tmp
    htdocs = os.path.join(root, "htdocs")
    os.makedirs(htdocs, exist_ok=True)
    for i in range(4):
        with open(os.path.join(htdocs, "f%d.txt" % i), "w") as f:
            f.write("apache f%d\n" % i)
    user = ""
    if os.geteuid() == 0:
        # Apache will not run its children as root: they become www-data
        # (or nobody), who must reach the document root.
        import pwd
        for name in ("www-data", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            user = "User %s\nGroup #%d" % (name, pwd.getpwnam(name).pw_gid)
            break
        os.chmod(root, 0o755)
    conf = os.path.join(root, "apache2.conf")
    with open(conf, "w") as f:
        f.write(APACHE_CONF.format(root=root, port=port, user=user, workers=workers))
    # -X would run one process without children: -DFOREGROUND keeps the
    # prefork pool and stays in the foreground under sockshim run.
    return [exe, "-d", root, "-f", conf, "-DFOREGROUND"]


def lock_without_waitv(ctx):
    """((mode, lockwait's leading arguments)) of a serialized run on a
    kernel without futex_waitv (a seccomp filter: tests/progs/
    deny_futex_waitv.h); none under valgrind, which implements neither
    futex_waitv nor seccomp: every run there takes that path."""
    return () if ctx.valgrind else (("serialize", ["--no-futex-waitv"]),)
