"""The host never pays for our failures: with no usable session (read-only
/dev/shm, a segment that belongs to someone else, has the wrong mode or is
not a segment at all) or a bad setting, a real server under the shim serves
normally, does not crash, and stderr carries exactly one `sockshim:` line.
And the shared object exports the wrapped libc names, nothing else."""

import os
import re
import subprocess

import lib
import segment

REQUESTS = 20
BODY = b"sockshim fail-open test\n" * 50

# The wrapped libc names: the shim's whole exported interface.
EXPORTED = {
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown",
    "setsockopt",  # SO_LINGER {on, 0}: the close resets (shim/calls_socket.c)
    "close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64",
    "read", "readv", "recv", "recvfrom", "recvmsg", "__read_chk", "__recv_chk",
    "__recvfrom_chk",
    "write", "writev", "send", "sendto", "sendmsg",  # EPIPE: shim/calls_write.c
    "execve", "execv", "execvp", "execvpe", "execl", "execlp", "execle", "fexecve",
    "poll", "__poll_chk", "ppoll", "__ppoll_chk", "select", "pselect",  # shim/calls_poll.c
    "epoll_ctl", "epoll_wait", "epoll_pwait",  # shim/calls_epoll.c
    "_exit", "_Exit",  # shim/calls_exit.c
    "fork",  # shim/fork.c: logs the fork in the parent, with the child's pid
    "vfork",  # shim/vfork.c: an assembly trampoline, x86-64 only
    # shim/calls_signal.c: SIGBUS stays ours while a segment is mapped
    "sigaction", "signal", "bsd_signal", "sysv_signal", "sigprocmask", "pthread_sigmask",
    # shim/calls_wait.c: the reaper releases what a dead child held
    "wait", "waitpid", "wait3", "wait4", "waitid",
    # shim/calls_syscall.c: the numbers of the calls above, through libc's syscall()
    "syscall",
}
if os.uname().machine != "x86_64":
    EXPORTED.discard("vfork")


def serve_and_check(ctx, argv_prefix=(), session=None, preload=True, extra_env=None):
    """Start `python3 -m http.server` (under ARGV_PREFIX), fetch a file
    REQUESTS times, stop it. Returns (stderr, port). Fails unless every
    request got the file and the server was alive until we stopped it."""
    with open(os.path.join(ctx.tmp, "hello.txt"), "wb") as f:
        f.write(BODY)
    port = lib.free_port()
    argv = list(argv_prefix) + [ctx.python, "-m", "http.server", "--bind", "127.0.0.1",
                                "--directory", ctx.tmp, str(port)]
    proc = ctx.spawn(argv, session=session, preload=preload, extra_env=extra_env,
                     valgrind=False, name="http")
    try:
        lib.wait_port(port, timeout=20, proc=proc)
        for i in range(REQUESTS):
            status, body = lib.http_get(port, "/hello.txt")
            assert status == 200 and body == BODY, \
                "request %d: status %d, %d bytes" % (i, status, len(body))
        assert proc.poll() is None, "server exited with %s" % proc.returncode
    finally:
        status = lib.stop(proc)
    out, err = ctx.output(proc)
    # SIGTERM is how we stopped it; anything else (SIGSEGV, abort) is a crash.
    assert status == -15, "server ended with status %s, not by our SIGTERM\n%s" % (
        status, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    return err, port


def one_warning(err, *words):
    lines = lib.sockshim_lines(err)
    assert len(lines) == 1, "expected one sockshim: line on stderr, got %d: %s" % (
        len(lines), lines)
    for w in words:
        assert w in lines[0], "warning %r does not mention %r" % (lines[0], w)
    return lines[0]


def test_failopen_readonly_shm(ctx):
    probe = subprocess.run(["unshare", "-m", "sh", "-c",
                            "mount -t tmpfs -o ro tmpfs /dev/shm"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if probe.returncode != 0:
        raise lib.Skip("cannot mount a read-only /dev/shm in a mount namespace: %s"
                       % probe.stderr.decode().strip())
    s = ctx.session()
    env = ctx.env(session=s)
    # Preload only the server: unshare, sh and mount run without the shim.
    prefix = ["unshare", "-m", "sh", "-c",
              'mount -t tmpfs -o ro tmpfs /dev/shm && LD_PRELOAD="$SHIM_PRELOAD" '
              '&& export LD_PRELOAD && exec "$@"', "sh"]
    err, _ = serve_and_check(ctx, prefix, session=s, preload=False,
                             extra_env={"SHIM_PRELOAD": env["LD_PRELOAD"]})
    one_warning(err, s, "Read-only file system")
    assert not os.path.exists(ctx.session_path(s)), "the session appeared outside the namespace"


def test_failopen_bad_ring_events(ctx):
    s = ctx.session()
    err, port = serve_and_check(ctx, session=s, extra_env={"SOCKSHIM_RING_EVENTS": "garbage"})
    one_warning(err, "SOCKSHIM_RING_EVENTS", "garbage")
    # The session works, with the default ring.
    ring = ctx.raw(s)
    assert ring.capacity == 1 << 16, "ring of %d records, expected the default 65536" % (
        ring.capacity)
    evs = ctx.events(s)
    accepts = [e for e in evs if e["type"] == "accept" and e["ret"] >= 0
               and e["local"] == "127.0.0.1:%d" % port]
    # wait_port's probe and our requests.
    assert len(accepts) == REQUESTS + 1, "%d accept events, expected %d" % (
        len(accepts), REQUESTS + 1)
    assert lib.count(evs, type="listen", local="127.0.0.1:%d" % port, ret=0) == 1


def make_session(ctx):
    """A session created the ordinary way: a program run once under the shim."""
    s = ctx.session()
    res = ctx.run(["/bin/true"], session=s, valgrind=False)
    assert res.returncode == 0 and not lib.sockshim_lines(res.stderr), res.stderr
    path = ctx.session_path(s)
    assert os.path.exists(path), "running /bin/true under the shim did not create %s" % path
    return s, path


def refused(ctx, s, path, *words):
    """Serve with session S, which the shim must refuse: one warning naming
    the session and WORDS, and not a byte of the segment changed."""
    with open(path, "rb") as f:
        before = f.read()
    err, _ = serve_and_check(ctx, session=s)
    one_warning(err, *(('"%s"' % s,) + words))
    with open(path, "rb") as f:
        assert f.read() == before, "the shim wrote into a segment it should have refused"


def test_failopen_foreign_owner(ctx):
    if os.geteuid() != 0:
        raise lib.Skip("chown to another user needs root")
    s, path = make_session(ctx)
    os.chown(path, 65534, 65534)
    refused(ctx, s, path, path, "belongs to uid 65534")


def test_failopen_wrong_mode(ctx):
    s, path = make_session(ctx)
    os.chmod(path, 0o644)
    refused(ctx, s, path, "0644")


def test_failopen_not_a_segment(ctx):
    s = ctx.session()
    path = ctx.session_path(s)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        lay = segment.layout(ctx.root)
        os.write(fd, b"\xff" * (lay["SIZEOF_H"] + 64 * lay["SIZEOF_R"]))
    finally:
        os.close(fd)
    refused(ctx, s, path, "not a sockshim segment")


def test_exports_only_wrapped_names(ctx):
    res = subprocess.run(["nm", "-D", "--defined-only", ctx.lib], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    names = set()
    for line in res.stdout.decode().splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TtWwiDdBbRrVvu":
            names.add(re.sub(r"@.*", "", f[2]))
    if ctx.sanitizer:
        # Instrumentation adds its own (e.g. __odr_asan_gen_*, __asan_*).
        names = {n for n in names if not re.match(r"__(odr_)?(asan|tsan|sanitizer)", n)}
    missing, extra = EXPORTED - names, names - EXPORTED
    assert not missing and not extra, "exports differ: missing %s, unexpected %s" % (
        sorted(missing), sorted(extra))
    # And each is a function.
    funcs = {re.sub(r"@.*", "", l.split()[2]) for l in res.stdout.decode().splitlines()
             if len(l.split()) == 3 and l.split()[1] in "Ti"}
    assert EXPORTED <= funcs, "not functions: %s" % sorted(EXPORTED - funcs)
