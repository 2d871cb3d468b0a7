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
import struct
import subprocess
import sys
import tempfile
import time

# How long one test may run; run.py enforces it.
TEST_TIMEOUT = 120.0
# A process asked to stop with SIGTERM gets this long before SIGKILL.
STOP_GRACE = 5.0

SHM_DIR = "/dev/shm"
SHM_PREFIX = "sockshim."
SESSION_MAX = 48  # SOCKSHIM_SESSION_MAX in include/sockshim/layout.h


def layout_probe(root, source, what):
    """Compile C SOURCE against ROOT's include/ and run it: it prints a JSON
    object (offsets and constants of layout.h). WHAT names it in errors."""
    with tempfile.TemporaryDirectory(prefix="sockshim-probe.") as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w") as f:
            f.write(source)
        res = subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-I",
                              os.path.join(root, "include"), "-o", exe, src],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if res.returncode:
            raise AssertionError("cannot compile the %s: %s" % (what, res.stdout.decode()))
        out = subprocess.run([exe], stdout=subprocess.PIPE, timeout=30, check=True).stdout
    return json.loads(out)



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
# The segment, read directly. Offsets, sizes and constants come from
# include/sockshim/layout.h itself: a small C program compiled against it
# prints them, so this reader follows the one source of truth.

HEADER_SIZE = 384  # fixed by a _Static_assert in layout.h
RECORD_SIZE = 128  # likewise

EVENT_NAMES = [None, "socket", "bind", "listen", "accept", "connect", "shutdown",
               "close", "peer_eof", "dup", "fork", "exec", "exit", "inherit"]
VIA_NAMES = ["close", "close_range", "dup2", "exec", "exit", "death"]
HOW_NAMES = {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}

_PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include "sockshim/layout.h"
#define R struct sockshim_record
#define H struct sockshim_header
#define F(T, f, fmt) printf("\"%s\": [%zu, \"%s\"],\n", #f, offsetof(T, f), fmt)
int main(void)
{
	printf("{\n");
	F(R, stamp, "Q"); F(R, ts_ns, "Q"); F(R, pid, "i"); F(R, tid, "i"); F(R, fd, "i");
	F(R, type, "H"); F(R, family, "H"); F(R, ret, "i"); F(R, err, "i"); F(R, inode, "Q");
	F(R, local_ip, "16s"); F(R, peer_ip, "16s"); F(R, local_port, "H");
	F(R, peer_port, "H"); F(R, socktype, "H"); F(R, flags, "H");
	F(R, detail.accept.listen_fd, "i"); F(R, detail.accept.listen_inode, "Q");
	F(R, detail.dup.newfd, "i"); F(R, detail.dup.cloexec, "i");
	F(R, detail.shutdown.how, "i"); F(R, detail.fork.child_pid, "i");
	F(R, detail.close.via, "i"); F(R, detail.socket.pair_fd, "i");
	printf("\"detail.exec_path\": [%zu, \"%zus\"],\n", offsetof(R, detail.exec_path),
	       sizeof(((R *)0)->detail.exec_path));
	F(H, magic, "Q"); F(H, layout_version, "I"); F(H, header_size, "I");
	F(H, segment_size, "Q"); F(H, ring_offset, "Q"); F(H, ring_capacity, "I");
	F(H, record_size, "I"); F(H, creator_pid, "i"); F(H, creator_uid, "I");
	F(H, ring_head, "Q");
	printf("\"SIZEOF_RECORD\": %zu, \"SIZEOF_HEADER\": %zu, \"MAGIC\": %llu, \"VERSION\": %u,\n",
	       sizeof(R), sizeof(H), (unsigned long long)SOCKSHIM_MAGIC, SOCKSHIM_LAYOUT_VERSION);
	printf("\"published_7\": %llu, \"ev_count\": %d, \"ev_inherit\": %d,\n",
	       (unsigned long long)sockshim_stamp_published(7), SOCKSHIM_EV_COUNT,
	       SOCKSHIM_EV_INHERIT);
	printf("\"flag_peer\": %u, \"flag_local\": %u, \"flag_listener\": %u, \"via_count\": %d}\n",
	       SOCKSHIM_FLAG_PEER_KNOWN, SOCKSHIM_FLAG_LOCAL_KNOWN, SOCKSHIM_FLAG_LISTENER,
	       SOCKSHIM_CLOSE_VIA_COUNT);
	return 0;
}
"""

_layouts = {}


def layout(root):
    """The layout of include/sockshim/layout.h under ROOT: {field: (offset,
    struct format)} plus sizes and constants. Compiled and run once."""
    if root in _layouts:
        return _layouts[root]
    lay = layout_probe(root, _PROBE, "layout probe")
    # What this reader assumes about the layout, checked rather than trusted.
    if lay["published_7"] != 16 or lay["ev_count"] != len(EVENT_NAMES) or \
            lay["via_count"] != len(VIA_NAMES):
        raise AssertionError("layout.h changed in a way lib.py does not know: %s" % lay)
    _layouts[root] = lay
    return lay


def _get(lay, name, buf, base=0):
    off, fmt = lay[name]
    return struct.unpack_from("<" + fmt, buf, base + off)[0]


def _fmt_addr(family, ip, port):
    if family == socket.AF_INET:
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, ip[:4]), port)
    if family == socket.AF_INET6:
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, ip), port)
    return None


FAMILY_NAMES = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}
SOCKTYPE_NAMES = {1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp",
                  10: "packet"}


def _name(names, v):
    if not v:
        return None
    return names.get(v, "unknown(%d)" % v)


def decode_record(lay, buf, off, seq):
    """The record at OFF in BUF as the dict `sockshim events --json` prints
    (the keys the tests use)."""
    g = {k: _get(lay, k, buf, off) for k in (
        "ts_ns", "pid", "tid", "fd", "type", "family", "ret", "err", "inode", "local_ip",
        "peer_ip", "local_port", "peer_port", "socktype", "flags")}
    typ, family, flags = g["type"], g["family"], g["flags"]
    ev = {
        "type": EVENT_NAMES[typ] if 0 < typ < len(EVENT_NAMES) else "unknown(%d)" % typ,
        "seq": seq, "ts": g["ts_ns"], "pid": g["pid"], "tid": g["tid"], "fd": g["fd"],
        "inode": g["inode"],
        "family": _name(FAMILY_NAMES, family), "socktype": _name(SOCKTYPE_NAMES, g["socktype"]),
        "local": _fmt_addr(family, g["local_ip"], g["local_port"])
        if flags & lay["flag_local"] else None,
        "peer": _fmt_addr(family, g["peer_ip"], g["peer_port"])
        if flags & lay["flag_peer"] else None,
        "listener": bool(flags & lay["flag_listener"]), "ret": g["ret"], "errno": g["err"],
    }

    def d(name):
        return _get(lay, "detail." + name, buf, off)

    t = ev["type"]
    if t == "socket":
        if d("socket.pair_fd") >= 0:
            ev["pair_fd"] = d("socket.pair_fd")
    elif t == "accept":
        ev["listen_fd"], ev["listen_inode"] = d("accept.listen_fd"), d("accept.listen_inode")
    elif t == "dup":
        ev["newfd"], ev["cloexec"] = d("dup.newfd"), bool(d("dup.cloexec"))
    elif t == "shutdown":
        ev["how"] = HOW_NAMES.get(d("shutdown.how"), "unknown(%d)" % d("shutdown.how"))
    elif t == "close":
        via = d("close.via")
        ev["via"] = VIA_NAMES[via] if 0 <= via < len(VIA_NAMES) else "unknown(%d)" % via
    elif t == "fork":
        ev["child_pid"] = d("fork.child_pid")
    elif t == "exec":
        ev["path"] = d("exec_path").split(b"\0", 1)[0].decode("utf-8", "replace")
    return ev


class RawRing:
    """What the segment at PATH holds: header fields, and the published
    records in ticket order. `lost` counts tickets that were overwritten or
    never published. ROOT is the source tree whose layout.h describes it."""

    def __init__(self, root, path):
        lay = layout(root)
        with open(path, "rb") as f:
            data = f.read()
        hs, rs = lay["SIZEOF_HEADER"], lay["SIZEOF_RECORD"]
        if len(data) < hs:
            raise AssertionError("%s: %d bytes, smaller than a header" % (path, len(data)))
        h = {k: _get(lay, k, data) for k in ("magic", "layout_version", "header_size",
                                             "segment_size", "ring_offset", "ring_capacity",
                                             "record_size", "creator_pid", "creator_uid",
                                             "ring_head")}
        if h["magic"] != lay["MAGIC"] or h["layout_version"] != lay["VERSION"]:
            raise AssertionError("%s: not a layout-%d sockshim segment" % (path, lay["VERSION"]))
        cap = h["ring_capacity"]
        if (h["header_size"] != hs or h["record_size"] != rs or h["ring_offset"] != hs
                or not cap or cap & (cap - 1) or h["segment_size"] < hs + cap * rs
                or h["segment_size"] > len(data)):
            raise AssertionError("%s: corrupt header %s" % (path, h))
        self.capacity = cap
        self.head = h["ring_head"]
        self.creator_pid, self.creator_uid = h["creator_pid"], h["creator_uid"]
        self.events = []
        first = max(0, self.head - cap)
        self.lost = first
        for ticket in range(first, self.head):
            off = hs + (ticket & (cap - 1)) * rs
            if _get(lay, "stamp", data, off) != 2 * ticket + 2:
                self.lost += 1
                continue
            self.events.append(decode_record(lay, data, off, ticket))


# ---------------------------------------------------------------------------
# Sockets and ports.

def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def http_get(port, path="/", timeout=10.0):
    """(status, body) of a GET on 127.0.0.1:PORT, HTTP/1.0, no proxies."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        chunks, total = [], 0
        while total < 16 << 20:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
            total += len(b)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        raise AssertionError("not an HTTP response: %r" % data[:200])
    return int(m.group(1)), body


# ---------------------------------------------------------------------------
# /proc and ss.

def socket_inodes(pid):
    """{fd: inode} of PID's sockets, from /proc/PID/fd."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:
            continue  # closed meanwhile
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            out[int(name)] = int(m.group(1))
    return out


def ss_tcp():
    """`ss -tenpH`: a list of dicts state, local, peer, inode, users (the
    raw process column), uid."""
    res = subprocess.run(["ss", "-tenpH"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30, check=True)
    rows = []
    for line in res.stdout.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        row = {"state": f[0], "local": f[3], "peer": f[4], "inode": None,
               "uid": None, "users": ""}
        m = re.search(r"\bino:(\d+)", line)
        if m:
            row["inode"] = int(m.group(1))
        m = re.search(r"\buid:(\d+)", line)
        if m:
            row["uid"] = int(m.group(1))
        m = re.search(r"users:\(\((.*?)\)\)", line)
        if m:
            row["users"] = m.group(1)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# Processes.

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


def stop_pid(pid, grace=STOP_GRACE):
    """Stop a process we did not spawn as a Popen (a grandchild we know the
    pid of): SIGTERM, poll for its exit, SIGKILL after GRACE seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.02)


def alive(pid):
    """True while PID runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


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

    def __init__(self, root, build, sanitizer=None, valgrind=False, events_mode="command"):
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
        self.events_mode = events_mode  # "command", "raw" or "auto"
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
                stop(p, grace=2.0)
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
        return ["valgrind", "--quiet", "--error-exitcode=99", "--trace-children=no",
                "--child-silent-after-fork=yes"] + list(argv)

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

    def tool_ready(self):
        """True when build/sockshim exists and knows `events`."""
        if not os.access(self.tool, os.X_OK):
            return False
        r = subprocess.run([self.tool, "events", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, env=self.env(preload=False))
        return r.returncode == 0

    def events_cmd(self, session, args=()):
        """The session's events through `sockshim events --session S --json`
        (what users run): a list of dicts, `lost` lines included."""
        r = subprocess.run([self.tool, "events", "--session", session, "--json"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=self.env(preload=False))
        if r.returncode != 0:
            raise AssertionError("sockshim events --session %s failed (%d): %s"
                                 % (session, r.returncode, r.stderr.decode().strip()))
        evs = []
        for n, line in enumerate(r.stdout.decode("utf-8").splitlines(), 1):
            try:
                evs.append(json.loads(line))
            except ValueError as e:
                raise AssertionError("sockshim events: line %d is not JSON (%s): %r"
                                     % (n, e, line[:200]))
        return evs

    def raw(self, session):
        """The session's segment read directly (RawRing)."""
        return RawRing(self.root, self.session_path(session))

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
        """The session's events, without `lost` markers. Through the command
        unless the run says --events raw (or auto and the command is not
        ready). Fails the test if events were lost, or if a child's record
        precedes its fork record."""
        mode = self.events_mode
        if mode == "auto":
            mode = "command" if self.tool_ready() else "raw"
        if mode == "raw":
            if args:
                raise AssertionError("raw events reader takes no filter arguments")
            ring = self.raw(session)
            if ring.lost:
                raise AssertionError("session %s lost %d events" % (session, ring.lost))
            check_fork_order(ring.events)
            return ring.events
        evs = self.events_cmd(session, args)
        lost = [e for e in evs if e.get("type") == "lost"]
        if lost:
            raise AssertionError("session %s lost events: %s" % (session, lost))
        check_fork_order(evs)
        return evs


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
