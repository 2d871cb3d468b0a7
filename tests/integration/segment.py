"""The segment of a session, read straight from /dev/shm: the event ring
(RawRing), the reference ledger (RawLedger) and the listener table
(raw_listeners), to cross-check what the `sockshim` command prints.

Offsets, sizes and constants come from include/sockshim/layout.h itself: a
small C program compiled against it prints them (layout()), so the readers
follow the one source of truth. Fields are named "TAG.field" after the
struct (H header, R record, S ledger entry, K its key in the ledger's
index, HD holder, ST step, PH pooled holder, L listener, W worker), sizes
SIZEOF_TAG, constants by their C name.
Nothing read is trusted: counts, geometry and enums are checked.
"""

import json
import os
import socket
import struct
import subprocess
import tempfile

_PROBE = r"""
#include <stddef.h>
#include <stdio.h>
#include <sys/syscall.h>
#include "sockshim/layout.h"
#define H struct sockshim_header
#define R struct sockshim_record
#define S struct sockshim_sock
#define K struct sockshim_ledger_key
#define HD struct sockshim_holder
#define ST struct sockshim_step
#define PH struct sockshim_pooled_holder
#define L struct sockshim_listener
#define W struct sockshim_worker
#define P struct sockshim_proc
#define F(T, f, fmt) printf("\"%s.%s\": [%zu, \"%s\"],\n", #T, #f, offsetof(T, f), fmt)
#define B(T, f) printf("\"%s.%s\": [%zu, \"%zus\"],\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))
#define Z(T) printf("\"SIZEOF_%s\": %zu,\n", #T, sizeof(T))
#define C(name) printf("\"%s\": %lld,\n", #name, (long long)(name))
#define U(name) printf("\"%s\": %llu,\n", #name, (unsigned long long)(name))
#ifndef SYS_select
#define SYS_select -1
#endif
#ifndef SYS_poll
#define SYS_poll -1
#endif
#ifndef SYS_epoll_wait
#define SYS_epoll_wait -1
#endif
int main(void)
{
	printf("{\n");
	F(H, magic, "Q"); F(H, layout_version, "I"); F(H, header_size, "I");
	F(H, segment_size, "Q"); F(H, ring_offset, "Q"); F(H, ring_capacity, "I");
	F(H, record_size, "I"); F(H, creator_pid, "i"); F(H, creator_uid, "I");
	F(H, ring_head, "Q");
	F(H, ledger_offset, "Q"); F(H, ledger_capacity, "I"); F(H, ledger_entry_size, "I");
	F(H, created_monotonic_ns, "q"); F(H, created_realtime_ns, "q");
	F(H, fd_overflow, "Q"); F(H, attaches, "Q"); F(H, ledger_full, "Q");
	F(H, holder_overflow, "Q"); F(H, ledger_reclaimed, "Q"); F(H, claims_stalled, "Q");
	F(H, pool_offset, "Q"); F(H, pool_capacity, "I");
	F(H, listeners_offset, "Q"); F(H, listeners_capacity, "I");
	F(H, listener_entry_size, "I"); F(H, listeners_full, "Q");
	F(H, procs_offset, "Q"); F(H, procs_capacity, "I"); F(H, proc_entry_size, "I");
	F(H, keys_offset, "Q");
	F(P, state, "I"); F(P, pid, "i"); F(P, noshim, "I"); F(P, execs, "I");

	F(R, stamp, "Q"); F(R, ts_ns, "Q"); F(R, pid, "i"); F(R, tid, "i"); F(R, fd, "i");
	F(R, type, "H"); F(R, family, "H"); F(R, ret, "i"); F(R, err, "i"); F(R, inode, "Q");
	F(R, local_ip, "16s"); F(R, peer_ip, "16s"); F(R, local_port, "H");
	F(R, peer_port, "H"); F(R, socktype, "H"); F(R, flags, "H");
	F(R, detail.accept.listen_fd, "i"); F(R, detail.accept.listen_inode, "Q");
	F(R, detail.dup.newfd, "i"); F(R, detail.dup.cloexec, "i");
	F(R, detail.shutdown.how, "i"); F(R, detail.fork.child_pid, "i");
	F(R, detail.close.via, "i"); F(R, detail.socket.pair_fd, "i"); B(R, detail.exec_path);

	F(K, inode, "Q"); F(K, released_ns, "Q");
	F(S, born_ns, "Q"); F(S, born_pid, "i"); F(S, born_fd, "i");
	F(S, born, "H"); F(S, family, "H"); F(S, socktype, "H"); F(S, flags, "H");
	F(S, local_ip, "16s"); F(S, peer_ip, "16s"); F(S, local_port, "H"); F(S, peer_port, "H");
	F(S, refs, "i"); F(S, eof_ns, "Q"); F(S, eof_pid, "i");
	F(S, eof_fd, "i"); F(S, last_read_ns, "Q"); F(S, callsite, "Q");
	F(S, callsite_offset, "Q"); B(S, callsite_module);
	F(S, steps_next, "I"); F(S, steps_base, "I"); F(S, noeffect_closes, "I");
	F(S, holder_overflow, "I"); F(S, pooled, "I"); F(S, holders_used, "I");
	F(S, shut_ns, "Q"); F(S, shut_pid, "i"); F(S, shut_fd, "i"); F(S, shut_how, "h");
	F(S, holders, "x"); F(S, steps, "x");
	F(HD, state, "I"); F(HD, pid, "i"); F(HD, fd, "i"); F(HD, how, "H");
	F(HD, since_ns, "Q"); F(HD, from_pid, "i"); F(HD, from_fd, "i");
	F(ST, seq, "I"); F(ST, op, "H"); F(ST, via, "H"); F(ST, ts_ns, "Q"); F(ST, pid, "i");
	F(ST, fd, "i"); F(ST, arg, "i"); B(ST, comm);
	F(PH, ref, "I"); F(PH, h, "x");

	F(L, inode, "Q"); F(L, family, "H"); F(L, mode, "H"); F(L, local_port, "H");
	F(L, local_ip, "16s"); F(L, backlog, "i"); F(L, lock, "I"); F(L, waiters_unrowed, "I"); F(L, waiting, "Q");
	F(L, bypass_word, "I"); F(L, bypass_reason, "H"); F(L, unlock_errors, "Q");
	F(L, lock_bypassed, "Q"); F(L, token_taken, "Q");
	F(L, max_waiters, "I"); F(L, holder_pid, "i"); F(L, holder_tid, "i");
	F(L, held_since_ns, "Q"); F(L, poller, "Q"); F(L, accept_calls, "Q"); F(L, accepts, "Q");
	F(L, spurious, "Q"); F(L, empty, "Q"); F(L, eintr, "Q"); F(L, econnaborted, "Q");
	F(L, emfile, "Q"); F(L, wakeups, "Q"); F(L, lock_acquisitions, "Q");
	F(L, lock_contended, "Q"); F(L, owner_died, "Q"); F(L, worker_overflow, "Q");
	F(L, token_waits, "Q"); F(L, token_waiting, "Q"); F(L, token_offered_to, "Q");
	F(L, token_offered_ns, "Q"); F(L, token_handoffs, "Q");
	F(L, wait_hist, "Q"); F(L, hold_hist, "Q"); F(L, workers, "Q"); F(L, retired, "Q");
	F(W, key, "Q"); F(W, calls, "Q"); F(W, accepts, "Q"); F(W, spurious, "Q");
	F(W, empty, "Q"); F(W, eintr, "Q"); F(W, lock_wait_ns, "Q"); F(W, last_ns, "Q");

	Z(H); Z(R); Z(S); Z(K); Z(HD); Z(ST); Z(PH); Z(L); Z(W); Z(P);
	C(SOCKSHIM_PROC_LIVE);
	U(SOCKSHIM_MAGIC); C(SOCKSHIM_LAYOUT_VERSION); U(SOCKSHIM_INODE_MAX); U(SOCKSHIM_HASH_MUL);
	U(sockshim_stamp_published(7));
	C(SOCKSHIM_FLAG_PEER_KNOWN); C(SOCKSHIM_FLAG_LOCAL_KNOWN); C(SOCKSHIM_FLAG_LISTENER);
	C(SOCKSHIM_EV_COUNT); C(SOCKSHIM_CLOSE_VIA_COUNT);
	C(SOCKSHIM_HOLDERS); C(SOCKSHIM_STEPS); C(SOCKSHIM_HOLDER_LIVE);
	C(SOCKSHIM_BORN_COUNT); C(SOCKSHIM_HOW_COUNT); C(SOCKSHIM_STEP_COUNT);
	C(SOCKSHIM_BORN_INHERITED); C(SOCKSHIM_HOW_INHERITED); C(SOCKSHIM_STEP_EXIT);
	C(SOCKSHIM_LEDGER_DEFAULT);
	C(SOCKSHIM_LISTENERS); C(SOCKSHIM_WORKERS); C(SOCKSHIM_HIST_BUCKETS);
	C(SOCKSHIM_ACCEPT_OBSERVE); C(SOCKSHIM_ACCEPT_SERIALIZE); C(SOCKSHIM_ACCEPT_OFF);
	U(SOCKSHIM_WORKER_RECYCLING);
	C(SYS_futex); C(SYS_futex_waitv); C(SYS_accept); C(SYS_accept4); C(SYS_ppoll);
	printf("\"SYS_waits\": [%d, %d, %d, %d, %d, %d]}\n", SYS_select, SYS_pselect6, SYS_poll,
	       SYS_ppoll, SYS_epoll_wait, SYS_epoll_pwait);
	return 0;
}
"""

# The enums' names, in layout.h's order; layout() checks their counts.
EVENT_NAMES = [None, "socket", "bind", "listen", "accept", "connect", "shutdown",
               "close", "peer_eof", "dup", "fork", "exec", "exit", "inherit"]
VIA_NAMES = ["close", "close_range", "dup2", "exec", "exit", "death", "gone"]
HOW_NAMES = {0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}
BORN = ["unknown", "socket", "accept", "connect", "socketpair", "scm_rights", "inherited"]
HOW = ["none", "created", "dup", "fork", "exec", "scm", "inherited"]
STEP = ["none", "born", "dup", "fork", "exec", "scm", "close", "shutdown", "eof", "exit",
        "epipe"]
MODE_NAMES = {0: "observe", 1: "serialize", 2: "off"}
# Arrays of the listener indexed by enum sockshim_bypass.
BYPASS_REASONS = ("stopped", "stalled", "invalid")
FAMILY_NAMES = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}
SOCKTYPE_NAMES = {1: "stream", 2: "dgram", 3: "raw", 4: "rdm", 5: "seqpacket", 6: "dccp",
                  10: "packet"}

_layouts = {}


def layout(root):
    """The layout of include/sockshim/layout.h under ROOT: {"TAG.field":
    (offset, struct format)}, SIZEOF_TAG and constants. Compiled and run
    once per ROOT."""
    if root in _layouts:
        return _layouts[root]
    with tempfile.TemporaryDirectory(prefix="sockshim-probe.") as d:
        src, exe = os.path.join(d, "probe.c"), os.path.join(d, "probe")
        with open(src, "w") as f:
            f.write(_PROBE)
        res = subprocess.run([os.environ.get("CC", "cc"), "-std=gnu11", "-I",
                              os.path.join(root, "include"), "-o", exe, src],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        if res.returncode:
            raise AssertionError("cannot compile the layout probe: %s" % res.stdout.decode())
        lay = json.loads(subprocess.run([exe], stdout=subprocess.PIPE, timeout=30,
                                        check=True).stdout)
    # What these readers assume about the layout, checked rather than trusted.
    if (lay["sockshim_stamp_published(7)"] != 16
            or lay["SOCKSHIM_EV_COUNT"] != len(EVENT_NAMES)
            or lay["SOCKSHIM_CLOSE_VIA_COUNT"] != len(VIA_NAMES)
            or (lay["SOCKSHIM_BORN_COUNT"], lay["SOCKSHIM_HOW_COUNT"],
                lay["SOCKSHIM_STEP_COUNT"]) != (len(BORN), len(HOW), len(STEP))
            or lay["SOCKSHIM_BORN_INHERITED"] != 6 or lay["SOCKSHIM_HOW_INHERITED"] != 6
            or lay["SOCKSHIM_STEP_EXIT"] != 9
            or MODE_NAMES != {lay["SOCKSHIM_ACCEPT_OBSERVE"]: "observe",
                              lay["SOCKSHIM_ACCEPT_SERIALIZE"]: "serialize",
                              lay["SOCKSHIM_ACCEPT_OFF"]: "off"}):
        raise AssertionError("layout.h changed in a way segment.py does not know: %s" % lay)
    _layouts[root] = lay
    return lay


def get(lay, name, buf, base=0):
    """Field NAME ("TAG.field") of the struct at offset BASE of BUF."""
    off, fmt = lay[name]
    return struct.unpack_from("<" + fmt, buf, base + off)[0]


def _array(lay, name, buf, base, count):
    return list(struct.unpack_from("<%dQ" % count, buf, base + lay[name][0]))


def in_use(lay, inode):
    """An entry keyed by INODE (ledger, listener table) is in use: not free
    (0) and not being filled in (the claiming bit, its claimer and the
    inode: above SOCKSHIM_INODE_MAX), as sockshim_inode_in_use says."""
    return 0 < inode <= lay["SOCKSHIM_INODE_MAX"]


def _cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def fmt_addr(family, ip, port):
    """"a.b.c.d:port" or "[v6]:port", None for other families."""
    if family == socket.AF_INET:
        return "%s:%d" % (socket.inet_ntop(socket.AF_INET, ip[:4]), port)
    if family == socket.AF_INET6:
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, ip), port)
    return None


def _name(names, v):
    return names.get(v, "unknown(%d)" % v) if v else None


def _read(lay, path):
    """The bytes of the segment at PATH, once its magic and version match."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < lay["SIZEOF_H"]:
        raise AssertionError("%s: %d bytes, smaller than a header" % (path, len(data)))
    if get(lay, "H.magic", data) != lay["SOCKSHIM_MAGIC"] or \
            get(lay, "H.layout_version", data) != lay["SOCKSHIM_LAYOUT_VERSION"]:
        raise AssertionError("%s: not a layout-%d sockshim segment"
                             % (path, lay["SOCKSHIM_LAYOUT_VERSION"]))
    return data


# ---------------------------------------------------------------------------
# The ring.

def decode_record(lay, buf, off, seq):
    """The record at OFF in BUF as the dict `sockshim events --json` prints
    (the keys the tests use)."""
    g = {k: get(lay, "R." + k, buf, off) for k in (
        "ts_ns", "pid", "tid", "fd", "type", "family", "ret", "err", "inode", "local_ip",
        "peer_ip", "local_port", "peer_port", "socktype", "flags")}
    typ, family, flags = g["type"], g["family"], g["flags"]
    ev = {
        "type": EVENT_NAMES[typ] if 0 < typ < len(EVENT_NAMES) else "unknown(%d)" % typ,
        "seq": seq, "ts": g["ts_ns"], "pid": g["pid"], "tid": g["tid"], "fd": g["fd"],
        "inode": g["inode"],
        "family": _name(FAMILY_NAMES, family), "socktype": _name(SOCKTYPE_NAMES, g["socktype"]),
        "local": fmt_addr(family, g["local_ip"], g["local_port"])
        if flags & lay["SOCKSHIM_FLAG_LOCAL_KNOWN"] else None,
        "peer": fmt_addr(family, g["peer_ip"], g["peer_port"])
        if flags & lay["SOCKSHIM_FLAG_PEER_KNOWN"] else None,
        "listener": bool(flags & lay["SOCKSHIM_FLAG_LISTENER"]), "ret": g["ret"],
        "errno": g["err"],
    }

    def d(name):
        return get(lay, "R.detail." + name, buf, off)

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
        ev["path"] = _cstr(d("exec_path"))
    return ev


class RawRing:
    """What the segment at PATH holds: header fields, and the published
    records in ticket order. `lost` counts tickets that were overwritten or
    never published. ROOT is the source tree whose layout.h describes it."""

    def __init__(self, root, path):
        lay = layout(root)
        data = _read(lay, path)
        hs, rs = lay["SIZEOF_H"], lay["SIZEOF_R"]
        h = {k: get(lay, "H." + k, data) for k in (
            "header_size", "segment_size", "ring_offset", "ring_capacity", "record_size",
            "creator_pid", "creator_uid", "ring_head")}
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
            if get(lay, "R.stamp", data, off) != 2 * ticket + 2:
                self.lost += 1
                continue
            self.events.append(decode_record(lay, data, off, ticket))


# ---------------------------------------------------------------------------
# The ledger.

def _holder(lay, data, hb):
    """The live holder at offset HB, as a dict, or None."""
    if get(lay, "HD.state", data, hb) != lay["SOCKSHIM_HOLDER_LIVE"]:
        return None
    hd = {k: get(lay, "HD." + k, data, hb) for k in ("pid", "fd", "how", "since_ns",
                                                      "from_pid", "from_fd")}
    hd["how"] = HOW[hd["how"]] if hd["how"] < len(HOW) else "bad(%d)" % hd["how"]
    return hd


def _step(lay, data, sb):
    """The step at offset SB, as a dict, or None when the slot is unused."""
    st = {k: get(lay, "ST." + k, data, sb) for k in ("seq", "op", "via", "ts_ns", "pid",
                                                      "fd", "arg", "comm")}
    if not st["seq"]:
        return None
    st["op"] = STEP[st["op"]] if st["op"] < len(STEP) else "bad(%d)" % st["op"]
    st["comm"] = _cstr(st["comm"])
    return st


class RawLedger:
    """The ledger of the segment at PATH: header counters and, per inode in
    use, a dict with its fields, `holders` (live ones: pid, fd, how,
    from_pid, from_fd, since_ns; `pooled` for those in the shared pool) and
    `steps` (oldest first)."""

    def __init__(self, root, path):
        lay = layout(root)
        data = _read(lay, path)
        h = {k.split(".", 1)[1]: get(lay, k, data) for k in lay if k.startswith("H.")}
        cap, esz, off = h["ledger_capacity"], h["ledger_entry_size"], h["ledger_offset"]
        koff, ksz = h["keys_offset"], lay["SIZEOF_K"]
        end = min(len(data), h["segment_size"])
        if esz != lay["SIZEOF_S"] or not cap or cap & (cap - 1) or off % 64 \
                or off + cap * esz > end or koff % 64 or koff + cap * ksz > end:
            raise AssertionError("%s: ledger geometry cannot be right: %s" % (path, h))
        self.header = h
        self.capacity = cap
        self.socks = {}
        fields = [k for k in lay if k.startswith("S.") and k not in ("S.holders", "S.steps")]
        for i in range(cap):
            base, kbase = off + i * esz, koff + i * ksz
            inode = get(lay, "K.inode", data, kbase)
            if not in_use(lay, inode):
                continue
            e = {k.split(".", 1)[1]: get(lay, k, data, base) for k in fields}
            e["inode"] = inode
            e["released_ns"] = get(lay, "K.released_ns", data, kbase)
            e["slot"] = i
            e["born_name"] = BORN[e["born"]] if e["born"] < len(BORN) else "bad(%d)" % e["born"]
            e["callsite_module"] = _cstr(e["callsite_module"])
            e["local"] = fmt_addr(e["family"], e["local_ip"], e["local_port"]) \
                if e["flags"] & lay["SOCKSHIM_FLAG_LOCAL_KNOWN"] else None
            e["peer"] = fmt_addr(e["family"], e["peer_ip"], e["peer_port"]) \
                if e["flags"] & lay["SOCKSHIM_FLAG_PEER_KNOWN"] else None
            e["listener"] = bool(e["flags"] & lay["SOCKSHIM_FLAG_LISTENER"])
            hb, sb = base + lay["S.holders"][0], base + lay["S.steps"][0]
            e["holders"] = [hd for hd in (_holder(lay, data, hb + j * lay["SIZEOF_HD"])
                                          for j in range(lay["SOCKSHIM_HOLDERS"])) if hd]
            # This socket's steps: indices [steps_base, steps_next) (the
            # entry's history goes on over its sockets), seq counted from
            # its first; steps_next counted from it too.
            nsteps, first = lay["SOCKSHIM_STEPS"], e["steps_base"]
            written = (e["steps_next"] - first) & 0xFFFFFFFF
            steps = []
            for j in range(nsteps):
                st = _step(lay, data, sb + j * lay["SIZEOF_ST"])
                if st and (st["seq"] - 1) % nsteps == j \
                        and (st["seq"] - 1 - first) & 0xFFFFFFFF < written:
                    st["seq"] = (st["seq"] - first) & 0xFFFFFFFF
                    steps.append(st)
            e["steps"] = sorted(steps, key=lambda s: s["seq"])
            e["steps_next"] = written
            self.socks[inode] = e
        # The holders in the shared pool, after the entries' own.
        by_slot = {e["slot"]: e for e in self.socks.values()}
        poff, pcap, psz = h["pool_offset"], h["pool_capacity"], lay["SIZEOF_PH"]
        if pcap != cap or poff + pcap * psz > end:
            raise AssertionError("%s: holder pool geometry cannot be right: %s" % (path, h))
        for i in range(pcap):
            b = poff + i * psz
            ref = get(lay, "PH.ref", data, b)
            hd = _holder(lay, data, b + lay["PH.h"][0])
            if hd and 1 <= ref <= cap and ref - 1 in by_slot:
                hd["pooled"] = True
                by_slot[ref - 1]["holders"].append(hd)

    def holder_set(self):
        """{(pid, fd, inode)} of every live holder."""
        return {(hd["pid"], hd["fd"], ino) for ino, e in self.socks.items() for hd in e["holders"]}


def raw_ledger(ctx, session):
    return RawLedger(ctx.root, ctx.session_path(session))


def raw_procs(ctx, session):
    """{pid: {"noshim": N, "execs": N}} of the live entries of SESSION's
    process table."""
    lay = layout(ctx.root)
    data = _read(lay, ctx.session_path(session))
    off, cap, esz = (get(lay, "H." + k, data) for k in ("procs_offset", "procs_capacity",
                                                        "proc_entry_size"))
    if esz != lay["SIZEOF_P"] or off + cap * esz > len(data):
        raise AssertionError("process table geometry cannot be right: %s" % ((off, cap, esz),))
    out = {}
    for i in range(cap):
        b = off + i * esz
        if get(lay, "P.state", data, b) == lay["SOCKSHIM_PROC_LIVE"]:
            out[get(lay, "P.pid", data, b)] = {k: get(lay, "P." + k, data, b)
                                               for k in ("noshim", "execs")}
    return out


# ---------------------------------------------------------------------------
# The listener table.

LISTENER_COUNTERS = ("accept_calls", "accepts", "spurious", "empty", "eintr", "econnaborted",
                     "emfile", "wakeups", "lock_acquisitions", "lock_contended", "owner_died",
                     "worker_overflow", "waiters_unrowed", "waiting", "max_waiters",
                     "holder_pid", "holder_tid",
                     "held_since_ns", "poller", "lock", "backlog", "bypass_word",
                     "bypass_reason", "unlock_errors", "token_waits", "token_waiting",
                     "token_offered_to", "token_offered_ns", "token_handoffs")
WORKER_COUNTERS = ("calls", "accepts", "spurious", "empty", "eintr", "lock_wait_ns", "last_ns")


def raw_listeners(ctx, session):
    """Every used entry of SESSION's listener table: a list of dicts with
    `index`, `local` ("127.0.0.1:P"), `inode`, `family`, `mode` (a name),
    the counters under their layout.h names, `wait_hist`, `hold_hist`,
    `lock_bypassed` and `token_taken` (by reason), `workers` (dicts pid, tid,
    `waiting` and the worker counters), `waiters` (rows waiting and waiters
    without a row) and `retired` (their sum and `count`)."""
    lay = layout(ctx.root)
    data = _read(lay, ctx.session_path(session))
    off = get(lay, "H.listeners_offset", data)
    cap = get(lay, "H.listeners_capacity", data)
    size = get(lay, "H.listener_entry_size", data)
    if not off or cap != lay["SOCKSHIM_LISTENERS"] or size != lay["SIZEOF_L"] or \
            off + cap * size > len(data):
        raise AssertionError("session %s: listener table at %d, %d x %d bytes, segment %d"
                             % (session, off, cap, size, len(data)))
    out = []
    for i in range(cap):
        base = off + i * size
        inode = get(lay, "L.inode", data, base)
        if not in_use(lay, inode):
            continue
        e = {"index": i, "inode": inode, "family": get(lay, "L.family", data, base)}
        mode = get(lay, "L.mode", data, base)
        e["mode"] = MODE_NAMES.get(mode, "unknown(%d)" % mode)
        e["local"] = fmt_addr(socket.AF_INET, get(lay, "L.local_ip", data, base),
                              get(lay, "L.local_port", data, base)) \
            if e["family"] == socket.AF_INET else None
        for k in LISTENER_COUNTERS:
            e[k] = get(lay, "L." + k, data, base)
        for k in ("wait_hist", "hold_hist"):
            e[k] = _array(lay, "L." + k, data, base, lay["SOCKSHIM_HIST_BUCKETS"])
        for k in ("lock_bypassed", "token_taken"):
            e[k] = dict(zip(BYPASS_REASONS, _array(lay, "L." + k, data, base,
                                                   len(BYPASS_REASONS))))
        e["workers"] = []
        wbase = base + lay["L.workers"][0]
        for j in range(lay["SOCKSHIM_WORKERS"]):
            b = wbase + j * lay["SIZEOF_W"]
            key = get(lay, "W.key", data, b)
            if not key or key == lay["SOCKSHIM_WORKER_RECYCLING"]:
                continue
            w = {"pid": key >> 32, "tid": key & 0xffffffff,
                 "waiting": bool(e["waiting"] >> j & 1),
                 "token_waiting": bool(e["token_waiting"] >> j & 1)}
            w.update((k, get(lay, "W." + k, data, b)) for k in WORKER_COUNTERS)
            e["workers"].append(w)
        # Waiting now: the rows marked waiting, and the waiters without a
        # row (the readers take out rows whose thread has ended).
        e["waiters"] = e["waiters_unrowed"] + sum(w["waiting"] for w in e["workers"])
        rb = base + lay["L.retired"][0]
        e["retired"] = {k: get(lay, "W." + k, data, rb) for k in WORKER_COUNTERS}
        e["retired"]["count"] = get(lay, "W.key", data, rb)
        out.append(e)
    return out
