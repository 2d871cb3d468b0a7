#!/usr/bin/env python3
"""Seed corpus for the fuzz harnesses, made from a real session: runs the
bundled prefork_server under `sockshim run` (small ring and ledger, accept
serialize, a leaky helper), drives a few loopback connections at it, and
while it serves copies the segment, /proc/PID/{stat,maps,fd} of its
processes, /proc/net/sockstat{,6} and a raw sock_diag dump; once it has
stopped, the segment again. seedcut (built from layout.h) cuts the segment
copies into seeds per harness; the rest is written here in each harness's
input format (see the comment at the top of tests/fuzz/fuzz_*.c).

    seeds.py --build BUILD --seedcut PATH --out DIR

Loopback only; every wait is bounded; whatever it starts is stopped by its
process group id, and the session is removed, whether it went well or not.
"""

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SESSION_PREFIX = "fuzzseed"
START_TIMEOUT = 10.0
STOP_GRACE = 5.0
CONNECTIONS = 12

# Netlink and inet_diag constants (linux/netlink.h, linux/sock_diag.h,
# linux/inet_diag.h).
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_DONE = 3
NLMSG_ERROR = 2
INET_DIAG_INFO = 2
ALL_STATES = 0xFFF

# The selectors at the head of the harnesses' inputs.
PROC_LINK, PROC_STAT, PROC_MAPS = 0, 1, 2
DIAG_NETLINK, DIAG_SOCKSTAT = 0, 1


def log(msg):
    print("seeds: " + msg, flush=True)


class Seeds:
    """Writes seeds into OUT/TARGET/NAME."""

    def __init__(self, out):
        self.out = out
        self.count = {}

    def put(self, target, name, data):
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.count[target] = self.count.get(target, 0) + 1


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def group_pids(pgid):
    """The live processes of process group PGID, from /proc/PID/stat."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read("/proc/%s/stat" % name)
        if not stat:
            continue
        # Fields after the name (which ends at the last ')'): state ppid pgrp.
        rest = stat[stat.rfind(b")") + 2:].split()
        if len(rest) > 2 and int(rest[2]) == pgid:
            pids.append(int(name))
    return sorted(pids)


def wait_port(portfile, proc):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        data = read(portfile)
        if data and data.strip():
            return int(data)
        if proc.poll() is not None:
            raise RuntimeError("the server exited with %s before listening" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("the server did not write %s in %.0fs" % (portfile, START_TIMEOUT))


def talk(port, keep_open=False):
    """One request; the socket, still open, when KEEP_OPEN."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"hello\n")
    s.recv(128)
    if keep_open:
        return s
    s.shutdown(socket.SHUT_WR)
    s.close()
    return None


def diag_dump(family, seq):
    """The raw answer batches (one per recv) of a sock_diag TCP dump."""
    sock_id = struct.pack("!HH16s16sI", 0, 0, b"", b"", 0) + struct.pack("=II", 0xFFFFFFFF,
                                                                       0xFFFFFFFF)
    req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 1 << (INET_DIAG_INFO - 1), 0,
                      ALL_STATES) + sock_id
    hdr = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                      NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    batches = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.sendto(hdr + req, (0, 0))
        for _ in range(1000):  # a dump of this host: far fewer batches
            data = nl.recv(65536)
            batches.append(data)
            off, done = 0, False
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                    done = True
                    break
                off += (length + 3) & ~3
            if done:
                break
    return batches


def capture_proc(seeds, pids):
    """/proc texts of PIDS, in fuzz_proc's format."""
    for pid in pids:
        stat = read("/proc/%d/stat" % pid)
        if stat:
            seeds.put("proc", "stat-%d" % pid, bytes([PROC_STAT]) + stat)
        maps = read("/proc/%d/maps" % pid)
        if maps:
            lines = maps.splitlines(keepends=True)
            picked = [l for l in lines if b"sockshim" in l] + lines[:2]
            for i, line in enumerate(picked):
                seeds.put("proc", "maps-%d-%d" % (pid, i), bytes([PROC_MAPS]) + line)
        try:
            fds = sorted(os.listdir("/proc/%d/fd" % pid), key=int)
        except OSError:
            fds = []
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            seeds.put("proc", "link-%d-%s" % (pid, fd),
                      bytes([PROC_LINK]) + os.fsencode(link))


def capture_diag(seeds):
    for name in ("sockstat", "sockstat6"):
        text = read("/proc/net/" + name)
        if text:
            seeds.put("sockdiag", name, bytes([DIAG_SOCKSTAT]) + struct.pack("<I", 0) + text)
    for seq, family in ((1, socket.AF_INET), (2, socket.AF_INET6)):
        try:
            batches = diag_dump(family, seq)
        except OSError as e:
            log("no sock_diag dump of family %d: %s" % (family, e))
            continue
        for i, b in enumerate(batches[:8]):
            seeds.put("sockdiag", "diag-%d-%d" % (family, i),
                      bytes([DIAG_NETLINK]) + struct.pack("<I", seq) + b)


def config_seeds(seeds, session):
    """fuzz_config: the settings this session ran with, and bad ones."""
    cases = {
        "run": [session, "1024", "256", "warn", "serialize"],
        "defaults": ["", "", "", "", ""],
        "bad": ["no/slash", "1000", "0x100", "loud", "sometimes"],
        "escapes": ["\x1b[31mred\n", "65536\t", "\xff\xfe", "debug", "off"],
        "long": ["s" * 60, "4194304", "1048576", "quiet", "observe"],
    }
    for name, values in cases.items():
        data = struct.pack("<H", 400) + b"".join(
            v.encode("utf-8", "surrogateescape") + b"\0" for v in values)
        seeds.put("config", name, data)


def stop_group(proc, pgid):
    """SIGTERM to sockshim run (it forwards it), then SIGKILL to whatever
    of its process group is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + STOP_GRACE
    while group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_pids(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=STOP_GRACE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seedcut", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    tool = os.path.join(args.build, "sockshim")
    server = os.path.join(args.build, "examples", "prefork_server")
    for f in (tool, server, args.seedcut):
        if not os.access(f, os.X_OK):
            sys.exit("seeds: %s is missing; build it first" % f)
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    seeds = Seeds(args.out)
    session = "%s-%d" % (SESSION_PREFIX, os.getpid())
    segment = "/dev/shm/sockshim.%d.%s" % (os.geteuid(), session)
    tmp = tempfile.mkdtemp(prefix="sockshim-seeds.")
    portfile = os.path.join(tmp, "port")
    proc = None
    held = []
    # What sockshim run and the server say, shown only if something fails.
    run_log = open(os.path.join(tmp, "run.log"), "w+")
    ok = False
    try:
        proc = subprocess.Popen(
            [tool, "run", "--keep", "--session", session, "--ring-events", "1024",
             "--max-sockets", "256", "--accept", "serialize", "--",
             server, "-w", "3", "-l", "-f", portfile],
            stdin=subprocess.DEVNULL, stdout=run_log, stderr=run_log, start_new_session=True)
        port = wait_port(portfile, proc)
        for _ in range(CONNECTIONS):
            talk(port)
        held.append(talk(port, keep_open=True))
        time.sleep(0.2)  # the workers read the EOFs and close
        shutil.copyfile(segment, os.path.join(tmp, "live"))
        capture_proc(seeds, group_pids(proc.pid))
        capture_diag(seeds)
        for s in held:
            s.close()
        held = []
        stop_group(proc, proc.pid)
        shutil.copyfile(segment, os.path.join(tmp, "final"))
        for tag in ("live", "final"):
            subprocess.run([args.seedcut, os.path.join(tmp, tag), args.out, tag], check=True,
                           timeout=60)
        config_seeds(seeds, session)
        ok = True
    finally:
        for s in held:
            s.close()
        if proc is not None:
            stop_group(proc, proc.pid)
        if not ok:
            run_log.seek(0)
            sys.stderr.write(run_log.read())
        run_log.close()
        subprocess.run([tool, "clean", "--session", session, "--force"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    for target in sorted(os.listdir(args.out)):
        log("%-10s %3d seeds" % (target, len(os.listdir(os.path.join(args.out, target)))))


if __name__ == "__main__":
    main()
