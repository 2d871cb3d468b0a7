"""Helpers of test_ledger.py and test_closewait.py: the session's reference
ledger read straight from the segment (offsets from include/sockshim/layout.h
through a compiled probe, as lib.layout does for the ring), the truth read
from /proc/PID/fd, `sockshim holders` / `sockshim closewait` through the
command, and small bounded waits.

The raw reader is a cross-check of the command, and the comparison's
fallback while `holders` does not exist yet. It trusts nothing it reads:
every count and enum is checked against the layout.
"""

import json
import os
import re
import socket
import struct
import subprocess
import time

import lib

# How long the tests wait for a state they expect.
WAIT = 15.0
POLL = 0.05

_PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include "sockshim/layout.h"
#define S struct sockshim_sock
#define HD struct sockshim_holder
#define ST struct sockshim_step
#define H struct sockshim_header
#define PH struct sockshim_pooled_holder
#define F(T, f, fmt) printf("\"%s.%s\": [%zu, \"%s\"],\n", #T, #f, offsetof(T, f), fmt)
#define C(name) printf("\"%s\": %lld,\n", #name, (long long)(name))
#define U(name) printf("\"%s\": %llu,\n", #name, (unsigned long long)(name))
int main(void)
{
	printf("{\n");
	F(H, ledger_offset, "Q"); F(H, ledger_capacity, "I"); F(H, ledger_entry_size, "I");
	F(H, created_monotonic_ns, "q"); F(H, created_realtime_ns, "q");
	F(H, fd_overflow, "Q"); F(H, attaches, "Q"); F(H, ledger_full, "Q");
	F(H, holder_overflow, "Q"); F(H, ledger_reclaimed, "Q");
	F(H, magic, "Q"); F(H, layout_version, "I"); F(H, segment_size, "Q");
	F(H, ring_capacity, "I"); F(H, pool_offset, "Q"); F(H, pool_capacity, "I");
	F(PH, ref, "I"); F(PH, h, "x");
	F(S, inode, "Q"); F(S, born_ns, "Q"); F(S, born_pid, "i"); F(S, born_fd, "i");
	F(S, born, "H"); F(S, family, "H"); F(S, socktype, "H"); F(S, flags, "H");
	F(S, local_ip, "16s"); F(S, peer_ip, "16s"); F(S, local_port, "H"); F(S, peer_port, "H");
	F(S, refs, "i"); F(S, released_ns, "Q"); F(S, eof_ns, "Q"); F(S, eof_pid, "i");
	F(S, eof_fd, "i"); F(S, last_read_ns, "Q"); F(S, callsite, "Q");
	F(S, callsite_offset, "Q");
	printf("\"S.callsite_module\": [%zu, \"%zus\"],\n", offsetof(S, callsite_module),
	       sizeof(((S *)0)->callsite_module));
	F(S, steps_next, "I"); F(S, noeffect_closes, "I"); F(S, holder_overflow, "I");
	F(S, pooled, "I");
	F(S, holders, "x"); F(S, steps, "x");
	F(HD, state, "I"); F(HD, pid, "i"); F(HD, fd, "i"); F(HD, how, "H");
	F(HD, since_ns, "Q"); F(HD, from_pid, "i"); F(HD, from_fd, "i");
	F(ST, seq, "I"); F(ST, op, "H"); F(ST, via, "H"); F(ST, ts_ns, "Q"); F(ST, pid, "i");
	F(ST, fd, "i"); F(ST, arg, "i");
	printf("\"ST.comm\": [%zu, \"%zus\"],\n", offsetof(ST, comm), sizeof(((ST *)0)->comm));
	C(SOCKSHIM_HOLDERS); C(SOCKSHIM_STEPS); C(SOCKSHIM_HOLDER_LIVE);
	C(SOCKSHIM_BORN_COUNT); C(SOCKSHIM_HOW_COUNT); C(SOCKSHIM_STEP_COUNT);
	C(SOCKSHIM_FLAG_LISTENER); C(SOCKSHIM_FLAG_LOCAL_KNOWN); C(SOCKSHIM_FLAG_PEER_KNOWN);
	U(SOCKSHIM_INODE_CLAIMING);
	C(SOCKSHIM_LEDGER_DEFAULT); C(SOCKSHIM_MAGIC); C(SOCKSHIM_LAYOUT_VERSION);
	C(SOCKSHIM_BORN_INHERITED); C(SOCKSHIM_HOW_INHERITED); C(SOCKSHIM_STEP_EXIT);
	printf("\"SIZEOF_SOCK\": %zu, \"SIZEOF_HOLDER\": %zu, \"SIZEOF_STEP\": %zu,\n",
	       sizeof(S), sizeof(HD), sizeof(ST));
	printf("\"SIZEOF_POOLED\": %zu}\n", sizeof(PH));
	return 0;
}
"""

# The enums' names, in layout.h's order; the probe checks their counts.
BORN = ["unknown", "socket", "accept", "connect", "socketpair", "scm_rights", "inherited"]
HOW = ["none", "created", "dup", "fork", "exec", "scm", "inherited"]
STEP = ["none", "born", "dup", "fork", "exec", "scm", "close", "shutdown", "eof", "exit"]

_layouts = {}


def layout(root):
    if root in _layouts:
        return _layouts[root]
    lay = lib.layout_probe(root, _PROBE, "ledger layout probe")
    if (lay["SOCKSHIM_BORN_COUNT"], lay["SOCKSHIM_HOW_COUNT"], lay["SOCKSHIM_STEP_COUNT"]) != (
            len(BORN), len(HOW), len(STEP)) or lay["SOCKSHIM_BORN_INHERITED"] != 6 or \
            lay["SOCKSHIM_HOW_INHERITED"] != 6 or lay["SOCKSHIM_STEP_EXIT"] != 9:
        raise AssertionError("layout.h's ledger enums changed; update ledgerlib.py: %s" % lay)
    _layouts[root] = lay
    return lay


def _g(lay, name, buf, base=0):
    off, fmt = lay[name]
    return struct.unpack_from("<" + fmt, buf, base + off)[0]


def _addr(family, ip, port):
    if family == socket.AF_INET:
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, ip[:4]), port)
    if family == socket.AF_INET6:
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, ip), port)
    return None


def _holder(lay, data, hb):
    """The live holder at offset HB, as a dict, or None."""
    if _g(lay, "HD.state", data, hb) != lay["SOCKSHIM_HOLDER_LIVE"]:
        return None
    how = _g(lay, "HD.how", data, hb)
    return {"pid": _g(lay, "HD.pid", data, hb), "fd": _g(lay, "HD.fd", data, hb),
            "how": HOW[how] if how < len(HOW) else "bad(%d)" % how,
            "since_ns": _g(lay, "HD.since_ns", data, hb),
            "from_pid": _g(lay, "HD.from_pid", data, hb),
            "from_fd": _g(lay, "HD.from_fd", data, hb)}


class RawLedger:
    """The ledger of the segment at PATH: header counters and, per inode in
    use, a dict with its fields, `holders` (live ones: pid, fd, how,
    from_pid, from_fd, since_ns) and `steps` (oldest first)."""

    def __init__(self, root, path):
        lay = layout(root)
        with open(path, "rb") as f:
            data = f.read()
        h = {k.split(".", 1)[1]: _g(lay, k, data) for k in lay if k.startswith("H.")}
        if h["magic"] != lay["SOCKSHIM_MAGIC"] & (2 ** 64 - 1) or \
                h["layout_version"] != lay["SOCKSHIM_LAYOUT_VERSION"]:
            raise AssertionError("%s: not a layout-%d segment" % (
                path, lay["SOCKSHIM_LAYOUT_VERSION"]))
        cap, esz, off = h["ledger_capacity"], h["ledger_entry_size"], h["ledger_offset"]
        if (esz != lay["SIZEOF_SOCK"] or not cap or cap & (cap - 1) or off % 64
                or off + cap * esz > min(len(data), h["segment_size"])):
            raise AssertionError("%s: ledger geometry cannot be right: %s" % (path, h))
        self.header = h
        self.capacity = cap
        self.socks = {}
        hsz, ssz = lay["SIZEOF_HOLDER"], lay["SIZEOF_STEP"]
        hoff, soff = lay["S.holders"][0], lay["S.steps"][0]
        for i in range(cap):
            base = off + i * esz
            inode = _g(lay, "S.inode", data, base)
            if not inode or inode & lay["SOCKSHIM_INODE_CLAIMING"]:  # still being filled in
                continue
            e = {k.split(".", 1)[1]: _g(lay, k, data, base) for k in lay
                 if k.startswith("S.") and k not in ("S.holders", "S.steps")}
            e["slot"] = i
            e["born_name"] = BORN[e["born"]] if e["born"] < len(BORN) else "bad(%d)" % e["born"]
            e["callsite_module"] = e["callsite_module"].split(b"\0", 1)[0].decode(
                "utf-8", "replace")
            e["local"] = _addr(e["family"], e["local_ip"], e["local_port"]) \
                if e["flags"] & lay["SOCKSHIM_FLAG_LOCAL_KNOWN"] else None
            e["peer"] = _addr(e["family"], e["peer_ip"], e["peer_port"]) \
                if e["flags"] & lay["SOCKSHIM_FLAG_PEER_KNOWN"] else None
            e["listener"] = bool(e["flags"] & lay["SOCKSHIM_FLAG_LISTENER"])
            holders = []
            for j in range(lay["SOCKSHIM_HOLDERS"]):
                hd = _holder(lay, data, base + hoff + j * hsz)
                if hd:
                    holders.append(hd)
            e["holders"] = holders
            steps = []
            for j in range(lay["SOCKSHIM_STEPS"]):
                sb = base + soff + j * ssz
                seq = _g(lay, "ST.seq", data, sb)
                if not seq:
                    continue
                op = _g(lay, "ST.op", data, sb)
                steps.append({"seq": seq, "op": STEP[op] if op < len(STEP) else "bad(%d)" % op,
                              "via": _g(lay, "ST.via", data, sb),
                              "ts_ns": _g(lay, "ST.ts_ns", data, sb),
                              "pid": _g(lay, "ST.pid", data, sb), "fd": _g(lay, "ST.fd", data, sb),
                              "arg": _g(lay, "ST.arg", data, sb),
                              "comm": _g(lay, "ST.comm", data, sb).split(b"\0", 1)[0].decode(
                                  "utf-8", "replace")})
            e["steps"] = sorted(steps, key=lambda s: s["seq"])
            self.socks[inode] = e
        # The holders in the shared pool, after the entries' own.
        by_slot = {e["slot"]: e for e in self.socks.values()}
        poff, pcap, psz = h["pool_offset"], h["pool_capacity"], lay["SIZEOF_POOLED"]
        if pcap != cap or poff + pcap * psz > min(len(data), h["segment_size"]):
            raise AssertionError("%s: holder pool geometry cannot be right: %s" % (path, h))
        for i in range(pcap):
            b = poff + i * psz
            ref = _g(lay, "PH.ref", data, b)
            hd = _holder(lay, data, b + lay["PH.h"][0])
            if hd and 1 <= ref <= cap and ref - 1 in by_slot:
                hd["pooled"] = True
                by_slot[ref - 1]["holders"].append(hd)

    def holder_set(self):
        """{(pid, fd, inode)} of every live holder."""
        return {(hd["pid"], hd["fd"], ino) for ino, e in self.socks.items() for hd in e["holders"]}


def raw_ledger(ctx, session):
    return RawLedger(ctx.root, ctx.session_path(session))


# ---------------------------------------------------------------------------
# The truth.

def proc_set(pids):
    """{(pid, fd, inode)} of the sockets /proc/PID/fd shows for PIDS (those
    that still run; a zombie has no descriptors)."""
    out = set()
    for pid in pids:
        try:
            for fd, ino in lib.socket_inodes(pid).items():
                out.add((pid, fd, ino))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def descendants(root_pid):
    """ROOT_PID and every process below it (by ppid), those running now."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        if rest[0] in "ZX":
            continue
        kids.setdefault(int(rest[1]), []).append(int(name))
    out, todo = [], [root_pid]
    while todo and len(out) < 100000:
        p = todo.pop()
        if lib.alive(p):
            out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    return st[st.rindex(")") + 2]


def wait_state(pid, states, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while proc_state(pid) not in states:
        if time.monotonic() > deadline:
            raise AssertionError("pid %d in state %s, not %s after %.0fs"
                                 % (pid, proc_state(pid), states, timeout))
        time.sleep(POLL)


# ---------------------------------------------------------------------------
# The command.

def subcommand_ready(ctx, name):
    """True when build/sockshim knows subcommand NAME."""
    if not os.access(ctx.tool, os.X_OK):
        return False
    r = subprocess.run([ctx.tool, name, "--help"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, env=ctx.env(preload=False))
    return r.returncode == 0


def tool(ctx, args, timeout=60, check=True):
    """Run `sockshim ARGS` (not preloaded): CompletedProcess with text."""
    r = subprocess.run([ctx.tool] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=ctx.env(preload=False))
    r.stdout = r.stdout.decode("utf-8", "replace")
    r.stderr = r.stderr.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError("sockshim %s exited %d: %s" % (" ".join(args), r.returncode,
                                                           r.stderr.strip()[-2000:]))
    return r


def json_lines(text, what):
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("%s: line %d is not JSON (%s): %r" % (what, n, e, line[:300]))
    return out


def holders_json(ctx, session, args=()):
    r = tool(ctx, ["holders", "--session", session, "--json"] + list(args))
    return json_lines(r.stdout, "sockshim holders --json")


def closewait_json(ctx, session, args=()):
    r = tool(ctx, ["closewait", "--session", session, "--json"] + list(args))
    return json_lines(r.stdout, "sockshim closewait --json")


def wait_for(fn, what, timeout=WAIT):
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
        time.sleep(POLL)


def ss_row(local_port=None, peer_port=None, state=None):
    """The `ss -tenpH` rows matching 127.0.0.1 ports and STATE."""
    rows = []
    for r in lib.ss_tcp():
        if local_port is not None and r["local"] != "127.0.0.1:%d" % local_port:
            continue
        if peer_port is not None and r["peer"] != "127.0.0.1:%d" % peer_port:
            continue
        if state is not None and r["state"] != state:
            continue
        rows.append(r)
    return rows


USER_RE = re.compile(r'"([^"]*)",pid=(\d+),fd=(\d+)')


def ss_users(row):
    return sorted((n, int(p), int(f)) for n, p, f in USER_RE.findall(row["users"]))


# ---------------------------------------------------------------------------
# tests/progs/refexact.c: a tree of processes ("actors") driven by command.

class Actors:
    """Actor 0 is refexact started under the preload in session SESSION;
    cmd(ID, LINE) sends one command to actor ID and returns the words of its
    `ok` answer. Every read is bounded. close() kills the whole tree (one
    process group)."""

    REPLY_WAIT = 20.0

    def __init__(self, ctx, session, extra_env=None, name="refexact"):
        self.ctx = ctx
        self.dir = os.path.join(ctx.tmp, "actors")
        os.mkdir(self.dir)
        self.fds = {}
        self.bufs = {}
        self.pids = {}
        self.dead = set()  # actor ids whose process is gone
        self._fifos(0)
        self.proc = ctx.spawn([ctx.prog("refexact"), self.dir, "0"], session=session,
                              extra_env=extra_env, name=name)
        self.pgid = self.proc.pid
        self.pids[0] = self._ready(0)
        assert self.pids[0] == self.proc.pid, (self.pids, self.proc.pid)

    def _fifos(self, aid):
        for kind in ("cmd", "rep"):
            p = os.path.join(self.dir, "%d.%s" % (aid, kind))
            os.mkfifo(p, 0o600)
            self.fds[(aid, kind)] = os.open(p, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.bufs[aid] = b""

    def _line(self, aid, what):
        import select
        deadline = time.monotonic() + self.REPLY_WAIT
        fd = self.fds[(aid, "rep")]
        while b"\n" not in self.bufs[aid]:
            left = deadline - time.monotonic()
            if left <= 0:
                out, err = self.ctx.output(self.proc)
                raise AssertionError("actor %d: no answer to %r within %.0fs; stderr: %s"
                                     % (aid, what, self.REPLY_WAIT, err[-1500:]))
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                try:
                    self.bufs[aid] += os.read(fd, 4096)
                except BlockingIOError:
                    pass
        line, _, rest = self.bufs[aid].partition(b"\n")
        self.bufs[aid] = rest
        return line.decode()

    def _ready(self, aid):
        line = self._line(aid, "start")
        m = re.fullmatch(r"ready (\d+)", line)
        assert m, "actor %d: expected 'ready PID', got %r" % (aid, line)
        return int(m.group(1))

    def cmd(self, aid, line):
        os.write(self.fds[(aid, "cmd")], (line + "\n").encode())
        ans = self._line(aid, line)
        assert ans.startswith("ok"), "actor %d: %r answered %r" % (aid, line, ans)
        return [int(w) for w in ans.split()[1:]]

    def fork(self, parent, child):
        self._fifos(child)
        (pid,) = self.cmd(parent, "fork %d" % child)
        got = self._ready(child)
        assert got == pid, "actor %d says pid %d, its parent said %d" % (child, got, pid)
        self.pids[child] = pid
        return pid

    def exec(self, aid):
        """Re-exec actor AID; returns once the new image is ready."""
        os.write(self.fds[(aid, "cmd")], b"exec\n")
        got = self._ready(aid)
        assert got == self.pids[aid], "exec changed the pid: %d -> %d" % (self.pids[aid], got)

    def kill9(self, aid):
        import signal
        pid = self.pids[aid]
        os.kill(pid, signal.SIGKILL)
        self._gone(aid)

    def exit(self, aid, how="exit"):
        self.cmd(aid, how)
        self._gone(aid)

    def _gone(self, aid):
        pid = self.pids[aid]
        wait_for(lambda: not lib.alive(pid), "actor %d (pid %d) to end" % (aid, pid))
        if aid == 0:
            self.proc.wait(timeout=WAIT)
        self.dead.add(aid)

    def live_pids(self):
        return {p for a, p in self.pids.items() if a not in self.dead}

    def close(self):
        import signal
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}
