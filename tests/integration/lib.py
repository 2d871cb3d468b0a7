"""Shared helpers of the integration tests: ports, processes under the
preload, sessions and their events (through `sockshim events --json`, or read
straight from the segment to cross-check), /proc and ss.

Loopback only. Every wait has a deadline; every loop is bounded. Whatever a
test starts or creates is registered with its Context and removed afterwards,
whether the test passed or not.
"""

import errno as errno_mod
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import segment

# How long one test may run; run.py enforces it.
TEST_TIMEOUT = 120.0
# A process asked to stop with SIGTERM gets this long before SIGKILL.
STOP_GRACE = 5.0

SHM_DIR = "/dev/shm"
SHM_PREFIX = "sockshim."
SESSION_MAX = 48  # SOCKSHIM_SESSION_MAX in include/sockshim/layout.h


def wait_for(fn, what, timeout=15.0, poll=0.05):
    """Call FN until it returns something true; returns that. Fails after
    TIMEOUT with WHAT and FN's last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("waiting for %s: not after %.0fs (last: %r)"
                                 % (what, timeout, last))
        time.sleep(poll)


def wait_for_file(path, proc, timeout, what):
    """Wait until PATH exists and is not empty (a server's port file),
    failing early if PROC exits. WHAT names the writer in errors."""
    deadline = time.monotonic() + timeout
    while not (os.path.exists(path) and os.path.getsize(path)):
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s before writing %s"
                                 % (what, proc.returncode, path))
        if time.monotonic() > deadline:
            raise AssertionError("%s did not write %s in %.0fs" % (what, path, timeout))
        time.sleep(0.05)


class Skip(Exception):
    """Raised by a test that cannot run here; the reason is printed."""


class TestTimeout(Exception):
    """Raised in the test by run.py's alarm when the test overran."""


# ---------------------------------------------------------------------------
# Sockets and ports.

def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def static_prog(ctx, name):
    """tests/progs/NAME.c built static into the test's directory (skips
    without libc.a)."""
    path = os.path.join(ctx.tmp, name + "-static")
    cc = os.environ.get("CC", "cc")
    libc_a = subprocess.run([cc, "-print-file-name=libc.a"], stdout=subprocess.PIPE,
                            timeout=30).stdout.decode().strip()
    if not os.path.isabs(libc_a):
        raise Skip("no libc.a to link a static program with (libc6-dev)")
    r = subprocess.run([cc, "-static", "-O1", "-D_GNU_SOURCE", "-o", path,
                        os.path.join(ctx.root, "tests/progs/%s.c" % name)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, "cc -static %s.c: %s" % (name, r.stdout.decode()[-1500:])
    return path


def wait_port(port, timeout=15.0, proc=None, host="127.0.0.1"):
    """Wait until HOST:PORT accepts a connection. Fails early if PROC dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("process %d exited with %s before port %d accepted"
                                 % (proc.pid, proc.returncode, port))
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("port %d did not accept within %.0fs" % (port, timeout))
        time.sleep(0.05)


def recv_all(s, limit=16 << 20):
    """Everything until the peer's FIN (at most LIMIT bytes)."""
    chunks, total = [], 0
    while total < limit:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
        total += len(b)
    return b"".join(chunks)


def http_get(port, path="/", timeout=10.0):
    """(status, body) of GET PATH on 127.0.0.1:PORT: HTTP/1.0 with
    Connection: close (one request, one connection), no proxies."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                   % path).encode())
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        raise AssertionError("GET %s: not an HTTP response: %r" % (path, data[:200]))
    return int(m.group(1)), body


# ---------------------------------------------------------------------------
# Processes, from /proc. One definition of each: a process in state Z
# (zombie: exited, not yet reaped) or X (dead) is not alive.

def _stat(pid, tid=None):
    """The fields of /proc/PID/stat (or of thread TID's) after the comm:
    [state, ppid, ...]; None when PID is gone."""
    path = "/proc/%d/stat" % pid if tid is None else "/proc/%d/task/%d/stat" % (pid, tid)
    try:
        with open(path) as f:
            st = f.read()
    except OSError:
        return None
    return st[st.rindex(")") + 2:].split()


def start_ticks(pid):
    """PID's start time (clock ticks after boot, /proc/PID/stat field 22):
    with the pid, the process for good; None once it is gone."""
    st = _stat(pid)
    return int(st[19]) if st else None


def proc_state(pid, tid=None):
    """PID's (or its thread TID's) state letter, None once it is gone."""
    st = _stat(pid, tid)
    return st[0] if st else None


def alive(pid):
    """True while PID runs: it exists and is neither a zombie (Z) nor dead (X)."""
    return proc_state(pid) not in (None, "Z", "X")


def ppid(pid):
    """PID's parent, or None once PID is gone (a worker that exits between
    listing the tree and reading its stat)."""
    st = _stat(pid)
    return int(st[1]) if st else None


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def descendants(pid, include_root=False):
    """The live processes below PID (by ppid, at any depth), sorted; PID
    itself too, with INCLUDE_ROOT, if it is alive."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st:
                kids.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo and len(out) < 100000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return sorted(p for p in out if (include_root or p != pid) and alive(p))


def wait_gone(pids, timeout=15.0, poll=0.05):
    """Wait until none of PIDS is alive; returns those still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(poll)
        left = [p for p in left if alive(p)]
    return left


def wait_state(pid, states, timeout=15.0):
    """Wait until PID's state is one of the letters of STATES."""
    deadline = time.monotonic() + timeout
    while proc_state(pid) not in states:
        if time.monotonic() > deadline:
            raise AssertionError("pid %d in state %s, not %s after %.0fs"
                                 % (pid, proc_state(pid), states, timeout))
        time.sleep(0.05)


def socket_inodes(pid):
    """{fd: inode} of PID's sockets, from /proc/PID/fd."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        ino = proc_fd_inode(pid, int(name))
        if ino is not None:
            out[int(name)] = ino
    return out


def proc_fd_inode(pid, fd):
    """The socket inode /proc/PID/fd/FD names, or None."""
    try:
        target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except OSError:
        return None
    m = re.fullmatch(r"socket:\[(\d+)\]", target)
    return int(m.group(1)) if m else None


def proc_set(pids):
    """{(pid, fd, inode)} of the sockets /proc/PID/fd shows for PIDS (those
    that still run; a zombie has no descriptors)."""
    out = set()
    for pid in pids:
        try:
            out |= {(pid, fd, ino) for fd, ino in socket_inodes(pid).items()}
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def stop(proc, grace=STOP_GRACE):
    """Stop PROC (a Popen): SIGTERM, then SIGKILL after GRACE seconds.
    Returns its exit status (negative: killed by that signal)."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    return proc.wait(timeout=grace)


def stop_tree(proc, grace=STOP_GRACE):
    """stop(PROC), and then what it started and left running (a forked
    worker its end orphans): its descendants, taken while it still runs,
    killed if still the same processes (their start times). Returns
    PROC's exit status."""
    left = []
    if proc.poll() is None:
        left = [(d, start_ticks(d)) for d in descendants(proc.pid)]
    status = stop(proc, grace)
    for d, ticks in left:
        if ticks is not None and start_ticks(d) == ticks:
            try:
                os.kill(d, signal.SIGKILL)
            except OSError:
                pass
    return status


def stop_pid(pid, grace=STOP_GRACE):
    """Stop a process we did not spawn as a Popen (a grandchild we know the
    pid of): SIGTERM, poll for its exit, SIGKILL after GRACE seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if not wait_gone([pid], grace, poll=0.02):
            return


# ---------------------------------------------------------------------------
# ss.

USER_RE = re.compile(r'"([^"]*)",pid=(\d+),fd=(\d+)')


def ss_tcp(*args):
    """`ss -tenpH ARGS` (a state, a filter): a list of dicts state, local,
    peer, inode, uid, users (the raw process column) and holders (sorted
    (name, pid, fd) of it). Without a `state` in ARGS, ss leaves out
    listeners."""
    res = subprocess.run(["ss", "-tenpH"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30, check=True)
    rows = []
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        row = {"state": f[0], "local": f[3], "peer": f[4], "inode": None, "uid": None,
               "users": ""}
        for k, pat in (("inode", r"\bino:(\d+)"), ("uid", r"\buid:(\d+)")):
            m = re.search(pat, line)
            if m:
                row[k] = int(m.group(1))
        m = re.search(r"users:\(\((.*?)\)\)", line)
        if m:
            row["users"] = m.group(1)
        row["holders"] = sorted((n, int(p), int(fd)) for n, p, fd in USER_RE.findall(row["users"]))
        rows.append(row)
    return rows


def host_time_wait():
    """The kernel's TIME_WAIT sockets now (this network namespace), and
    how many it keeps at most: past that it makes no more (it logs "time
    wait bucket table overflow") and a closed connection leaves none."""
    with open("/proc/net/sockstat") as f:
        tw = int(re.search(r"^TCP: .*\btw (\d+)", f.read(), re.M).group(1))
    with open("/proc/sys/net/ipv4/tcp_max_tw_buckets") as f:
        return tw, int(f.read())


def room_for_time_wait(n):
    """Wait (at most their 60 s lifetime and a little) until the kernel
    has room for N more TIME_WAIT sockets: a test before this one that made
    100,000 connections may have filled its table."""
    deadline = time.monotonic() + 75
    while True:
        tw, most = host_time_wait()
        if tw + n <= most:
            return
        assert time.monotonic() < deadline, (
            "the kernel keeps %d TIME_WAIT sockets already (at most %d): no room for %d "
            "more after 75 s" % (tw, most, n))
        time.sleep(0.5)


def ss_rows(local_port=None, peer_port=None, state=None):
    """The `ss -tenpH` rows with 127.0.0.1 ports LOCAL_PORT, PEER_PORT and
    state STATE (each when given)."""
    return [r for r in ss_tcp()
            if (local_port is None or r["local"] == "127.0.0.1:%d" % local_port)
            and (peer_port is None or r["peer"] == "127.0.0.1:%d" % peer_port)
            and (state is None or r["state"] == state)]


def sockshim_lines(text):
    """The lines of TEXT that start with `sockshim:` (the shim's warnings)."""
    return [l for l in text.splitlines() if l.startswith("sockshim:")]


def errno_name(n):
    return errno_mod.errorcode.get(n, str(n))


# ---------------------------------------------------------------------------
# The context each test gets.

class Context:
    """Paths, modes and the per-test bookkeeping: sessions and processes
    are removed/stopped by cleanup(), whatever the test's outcome."""

    def __init__(self, root, build, sanitizer=None, valgrind=False):
        self.root = os.path.abspath(root)
        self.build = os.path.abspath(build)
        self.lib = os.path.join(self.build, "libsockshim.so")
        self.tool = os.path.join(self.build, "sockshim")
        self.progs = os.path.join(self.build, "tests")
        # The interpreter itself, not a wrapper script (pyenv shims are bash
        # scripts: preloading them would test bash).
        self.python = os.path.realpath(sys.executable)
        self.sanitizer = sanitizer
        self.valgrind = valgrind
        self.uid = os.geteuid()
        self.test_name = "none"
        self.tmp = None
        self._sessions = []
        self._procs = []
        self._seq = 0
        self._runtime = None

    # -- per-test life -----------------------------------------------------

    def begin(self, test_name, tmp):
        self.test_name = test_name
        self.tmp = tmp
        self._sessions = []
        self._procs = []

    def cleanup(self):
        for p in self._procs:
            try:
                stop_tree(p, grace=2.0)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
            for f in getattr(p, "out_files", ()):
                f.close()
        self._procs = []
        for name in self._sessions:
            remove_session(self.uid, name)
        self._sessions = []

    # -- paths -------------------------------------------------------------

    def prog(self, name):
        """The path of test program NAME (tests/progs/NAME.c), built by make."""
        p = os.path.join(self.progs, name)
        if not os.access(p, os.X_OK):
            raise AssertionError("%s is not built (make %s)" % (p, os.path.relpath(p, self.root)))
        return p

    def session(self, tag=""):
        """A fresh session name for this test, removed by cleanup()."""
        self._seq += 1
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", self.test_name.replace("test_", "", 1))
        suffix = "%s-%d-%d" % (tag, os.getpid(), self._seq) if tag else "%d-%d" % (
            os.getpid(), self._seq)
        name = ("it-" + base)[:SESSION_MAX - len(suffix) - 1] + "-" + suffix
        remove_session(self.uid, name)
        self._sessions.append(name)
        return name

    def session_path(self, name):
        return session_path(self.uid, name)

    # -- environment ---------------------------------------------------------

    def sanitizer_runtime(self):
        """The sanitizer runtime the shim links (it must be preloaded first),
        or None."""
        if not self.sanitizer:
            return None
        if self._runtime is None:
            want = {"address": "libasan.so", "thread": "libtsan.so"}[self.sanitizer]
            out = subprocess.run(["ldd", self.lib], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=30).stdout.decode()
            m = re.search(r"(\S*%s\S*) => (\S+)" % re.escape(want), out)
            if not m:
                raise AssertionError("%s does not link %s" % (self.lib, want))
            self._runtime = m.group(2)
        return self._runtime

    def env(self, session=None, preload=True, extra=None):
        """The environment of a program under test: LD_PRELOAD (sanitizer
        runtime first when there is one), SOCKSHIM_SESSION, EXTRA on top.
        Inherited SOCKSHIM_* and LD_PRELOAD are dropped."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SOCKSHIM_") and k != "LD_PRELOAD"}
        if preload:
            pre = [self.lib]
            rt = self.sanitizer_runtime()
            if rt:
                pre.insert(0, rt)
            env["LD_PRELOAD"] = ":".join(pre)
        if session is not None:
            env["SOCKSHIM_SESSION"] = session
        if self.sanitizer == "address":
            # verify_asan_link_order=0: sockshim run puts the shim ahead of
            # the runtime in LD_PRELOAD for the programs it starts.
            env.setdefault("ASAN_OPTIONS",
                           "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0")
        if self.sanitizer == "thread":
            env.setdefault("TSAN_OPTIONS", "halt_on_error=1:report_signal_unsafe=0")
        if extra:
            env.update(extra)
        return env

    def wrap(self, argv, valgrind=None):
        """ARGV, under valgrind when the run asks for it (C programs only:
        pass valgrind=False for interpreters)."""
        if valgrind is None:
            valgrind = self.valgrind
        if not valgrind:
            return list(argv)
        # valgrind.supp: the errors test programs make on purpose. The
        # Makefile's VALGRIND_UNIT runs the unit tests with these options.
        return ["valgrind", "--quiet", "--error-exitcode=99", "--trace-children=no",
                "--child-silent-after-fork=yes",
                "--suppressions=" + os.path.join(self.root, "tests", "integration", "valgrind.supp")
                ] + list(argv)

    # -- running -----------------------------------------------------------

    def run(self, argv, session=None, preload=True, extra_env=None, timeout=60.0,
            valgrind=None, stdin=subprocess.DEVNULL, cwd=None):
        """Run ARGV to completion; CompletedProcess with text stdout/stderr."""
        res = subprocess.run(self.wrap(argv, valgrind), env=self.env(session, preload, extra_env),
                             stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=timeout, cwd=cwd or self.tmp)
        res.stdout = res.stdout.decode("utf-8", "replace")
        res.stderr = res.stderr.decode("utf-8", "replace")
        return res

    def spawn(self, argv, session=None, preload=True, extra_env=None, valgrind=None,
              cwd=None, name="proc"):
        """Start ARGV in the background with stdout/stderr in files of the
        test's directory (read them with output(proc)). Stopped by cleanup()."""
        # Append mode: the child shares the file offset with us, and
        # output() seeks back to read; O_APPEND keeps its writes at the end.
        out = open(os.path.join(self.tmp, "%s.%d.out" % (name, len(self._procs))), "a+b")
        err = open(os.path.join(self.tmp, "%s.%d.err" % (name, len(self._procs))), "a+b")
        p = subprocess.Popen(self.wrap(argv, valgrind), env=self.env(session, preload, extra_env),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             cwd=cwd or self.tmp, start_new_session=True)
        p.out_files = (out, err)
        self._procs.append(p)
        return p

    @staticmethod
    def output(proc):
        """(stdout, stderr) of a process started with spawn(), so far."""
        res = []
        for f in proc.out_files:
            f.flush()
            f.seek(0)
            res.append(f.read().decode("utf-8", "replace"))
        return tuple(res)

    # -- events ------------------------------------------------------------

    def events_cmd(self, session, args=()):
        """The session's events through `sockshim events --session S --json`
        (what users run): a list of dicts, `lost` lines included."""
        return json_lines(tool(self, ["events", "--session", session, "--json"] + list(args))
                          .stdout, "sockshim events --json")

    def raw(self, session):
        """The session's segment read directly (RawRing)."""
        return segment.RawRing(self.root, self.session_path(session))

    def cross_check(self, session):
        """The command and the raw reader agree on every event of SESSION:
        same tickets, same values for every key both produce. Returns the
        command's events."""
        cmd = [e for e in self.events_cmd(session) if e.get("type") != "lost"]
        ring = self.raw(session)
        raw = ring.events
        if len(cmd) != len(raw):
            raise AssertionError("sockshim events printed %d events, the segment holds %d"
                                 % (len(cmd), len(raw)))
        for c, r in zip(cmd, raw):
            diff = {k: (c.get(k), v) for k, v in r.items() if c.get(k) != v}
            if diff:
                raise AssertionError("event %d: command vs segment differ: %s" % (r["seq"], diff))
        return cmd

    def events(self, session, args=()):
        """The session's events through the command, without `lost`
        markers. Fails the test if events were lost, or if a child's record
        precedes its fork record."""
        evs = self.events_cmd(session, args)
        lost = [e for e in evs if e.get("type") == "lost"]
        if lost:
            raise AssertionError("session %s lost events: %s" % (session, lost))
        check_fork_order(evs)
        return evs


def tool(ctx, args, timeout=60, check=True):
    """Run `sockshim ARGS` (not preloaded): CompletedProcess with text.
    With CHECK, fails the test unless it exits 0."""
    r = subprocess.run([ctx.tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=ctx.env(preload=False))
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError("sockshim %s exited %d: %s" % (" ".join(args), r.returncode,
                                                           r.stderr.strip()[-2000:]))
    return r


def json_lines(text, what):
    """The JSON objects of TEXT, one a line (blank lines skipped)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("%s: line %d is not JSON (%s): %r"
                                 % (what, n, e, line[:300])) from None
    return out


def check_fork_order(evs):
    """Every event stream: a child's fork record comes before any record of
    the child's own (pid == child_pid), however the two processes ran."""
    first = {}
    for e in evs:
        first.setdefault(e["pid"], e)
    for e in evs:
        if e["type"] != "fork":
            continue
        mine = first.get(e["child_pid"])
        if mine is not None and mine["seq"] < e["seq"]:
            raise AssertionError("pid %d's %s record (seq %d) precedes its fork record (seq %d)"
                                 % (e["child_pid"], mine["type"], mine["seq"], e["seq"]))


def session_path(uid, name):
    return os.path.join(SHM_DIR, "%s%d.%s" % (SHM_PREFIX, uid, name))


def remove_session(uid, name):
    """Remove a session's segment and any temporary file of its creation."""
    path = session_path(uid, name)
    prefix = os.path.basename(path) + ".tmp."
    for p in [path] + [os.path.join(SHM_DIR, f) for f in _listdir(SHM_DIR)
                       if f.startswith(prefix)]:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _listdir(d):
    try:
        return os.listdir(d)
    except OSError:
        return []


def which(name):
    return shutil.which(name)


def count(events, **match):
    """How many EVENTS have every key=value of MATCH."""
    return sum(1 for e in events if all(e.get(k) == v for k, v in match.items()))


def select(events, **match):
    return [e for e in events if all(e.get(k) == v for k, v in match.items())]
