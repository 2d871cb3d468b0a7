"""`sockshim run` fails open, as the shim does: with /dev/shm read-only,
full or missing (a private mount namespace each) it runs the command
without the shim, keeps its exit status and warns exactly once; --strict
refuses (125) without starting it; a broken installation refuses always.
And an invalid session name is mapped, by the shim and by the command
alike, to one safe name: a preloaded server records there, `sockshim
events --session <the same invalid name>` reads it, no warning carries a
raw control character, and the "default" session is not touched."""

import json
import os
import re
import signal
import subprocess

import lib
import segment
import srvlib
from test_failopen import BODY, REQUESTS, one_warning

# What each broken /dev/shm looks like inside `unshare -m`, and the reason
# the kernel gives for not creating a file there.
SHM_BROKEN = {
    "readonly": ("mount -t tmpfs -o ro tmpfs /dev/shm", "Read-only file system"),
    # Room for nothing of a segment (the default ring alone is 8 MiB).
    "full": ("mount -t tmpfs -o size=64k tmpfs /dev/shm", "No space left on device"),
    # A /dev of its own, with the devices programs need and no shm: a
    # tmpfs prepared at $SHIM_TEST_DEV, then moved over /dev.
    "missing": ('d="$SHIM_TEST_DEV" && mount -t tmpfs tmpfs "$d" && '
                'for n in null zero random urandom; do : > "$d/$n" && '
                'mount --bind "/dev/$n" "$d/$n" || exit 1; done && '
                'mount --move "$d" /dev && test ! -e /dev/shm',
                "No such file or directory"),
}


def _ns_env(ctx):
    """The environment of `unshare ... sockshim run`: no preload (the
    command sets it), and where the "missing" set-up prepares its /dev."""
    dev = os.path.join(ctx.tmp, "dev")
    os.makedirs(dev, exist_ok=True)
    env = dict(srvlib.run_env(ctx))
    env["SHIM_TEST_DEV"] = dev
    return env


def _ns_prefix(ctx, kind):
    """argv that runs the rest inside a mount namespace whose /dev/shm is
    broken as KIND says; Skip where such a namespace cannot be made."""
    setup = SHM_BROKEN[kind][0]
    probe = subprocess.run(["unshare", "-m", "sh", "-c", setup], env=ctx.env(
        preload=False, extra=_ns_env(ctx)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=30)
    if probe.returncode != 0:
        raise lib.Skip("cannot make a %s /dev/shm in a mount namespace (needs root): %s"
                       % (kind, probe.stderr.decode().strip()))
    return ["unshare", "-m", "sh", "-c", setup + ' && exec "$@"', "sh"]


def _run_argv(ctx, session, cmd, *opts):
    return [ctx.tool, "run", "--session", session] + list(opts) + ["--"] + list(cmd)


def _check_unrecorded_warning(line, ctx, session, reason):
    for word in ('"%s"' % session, ctx.session_path(session), reason, "without the shim",
                 "unrecorded", "--strict"):
        assert word in line, "warning %r does not mention %r" % (line, word)


def _exit_status_kept(ctx, kind):
    """A command that exits 3 runs, unpreloaded, and run exits 3."""
    s = ctx.session()
    cmd = ["sh", "-c", 'echo "ran preload=[$LD_PRELOAD] session=[$SOCKSHIM_SESSION]"; exit 3']
    res = ctx.run(_ns_prefix(ctx, kind) + _run_argv(ctx, s, cmd), preload=False,
                  extra_env=_ns_env(ctx), valgrind=False)
    assert res.returncode == 3, "sockshim run exited %d, not the command's 3; stderr: %s" % (
        res.returncode, res.stderr)
    ran = [l for l in res.stdout.splitlines() if l.startswith("ran ")]
    assert len(ran) == 1, "the command did not run once: %r" % res.stdout
    assert "libsockshim" not in ran[0] and "session=[]" in ran[0], (
        "the command ran with the shim or a session: %s" % ran[0])
    _check_unrecorded_warning(one_warning(res.stderr), ctx, s, SHM_BROKEN[kind][1])
    assert not os.path.exists(ctx.session_path(s)), "the session appeared outside"


def _server_serves(ctx, kind):
    """A real server under `sockshim run` serves every request, is stopped
    by a SIGTERM that run forwards, and run exits with its status."""
    s = ctx.session()
    with open(os.path.join(ctx.tmp, "hello.txt"), "wb") as f:
        f.write(BODY)
    port = lib.free_port()
    server = [ctx.python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", ctx.tmp,
              str(port)]
    proc = ctx.spawn(_ns_prefix(ctx, kind) + _run_argv(ctx, s, server), preload=False,
                     extra_env=_ns_env(ctx), valgrind=False, name="run-http")
    try:
        lib.wait_port(port, timeout=20, proc=proc)
        for i in range(REQUESTS):
            status, body = lib.http_get(port, "/hello.txt")
            assert status == 200 and body == BODY, "request %d: status %d, %d bytes" % (
                i, status, len(body))
        assert proc.poll() is None, "sockshim run exited with %s" % proc.returncode
        srvlib.signal_run(proc, signal.SIGTERM)
        status = srvlib.wait_exit(proc)
    finally:
        lib.stop(proc)
    err = ctx.output(proc)[1]
    assert status == srvlib.SIGTERM_STATUS, (
        "sockshim run exited %s, not %d (the server killed by the forwarded SIGTERM): %s"
        % (status, srvlib.SIGTERM_STATUS, err[-2000:]))
    assert "Traceback" not in err, err[-2000:]
    _check_unrecorded_warning(one_warning(err), ctx, s, SHM_BROKEN[kind][1])
    assert not os.path.exists(ctx.session_path(s)), "the session appeared outside"


def test_run_failopen_readonly_shm(ctx):
    _exit_status_kept(ctx, "readonly")
    _server_serves(ctx, "readonly")


def test_run_failopen_full_shm(ctx):
    _exit_status_kept(ctx, "full")
    _server_serves(ctx, "full")


def test_run_failopen_missing_shm(ctx):
    _exit_status_kept(ctx, "missing")
    _server_serves(ctx, "missing")


def test_run_failopen_bad_segment_in_use(ctx):
    """A segment in the way that cannot be joined (in use, wrong mode) is
    a recording problem too: the command runs unrecorded, the segment is
    left as it was; --strict refuses."""
    s = ctx.session()
    holder = ctx.spawn(["sleep", "60"], session=s, valgrind=False, name="holder")
    path = ctx.session_path(s)
    lib.wait_for_file(path, holder, 10, "a preloaded sleep")
    os.chmod(path, 0o644)
    with open(path, "rb") as f:
        before = f.read()
    cmd = ["sh", "-c", 'echo "ran preload=[$LD_PRELOAD]"; exit 3']
    # No sanitizer runtime for sh: the shim is not loaded (that is the
    # point), and TSan's runtime alone crashes an uninstrumented shell.
    res = ctx.run(_run_argv(ctx, s, cmd), preload=False, valgrind=False)
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert "ran " in res.stdout and "libsockshim" not in res.stdout, res.stdout
    line = one_warning(res.stderr, '"%s"' % s, path, "in use by 1 process (pid %d)" % holder.pid,
                       "0644", "without the shim", "unrecorded")
    assert "sockshim clean --session %s" % s in line, line
    res = ctx.run(_run_argv(ctx, s, cmd, "--strict"), preload=False, valgrind=False)
    assert res.returncode == 125 and "ran " not in res.stdout, (res.returncode, res.stdout)
    one_warning(res.stderr, '"%s"' % s, "0644", "--strict")
    with open(path, "rb") as f:
        assert f.read() == before, "the segment in the way was changed"
    assert lib.stop(holder) == -signal.SIGTERM


def test_run_strict_refuses(ctx):
    """--strict: no session, no command (exit 125, one line saying so);
    with a usable session --strict changes nothing."""
    s = ctx.session()
    mark = os.path.join(ctx.tmp, "started")
    cmd = ["sh", "-c", 'touch "$0"; exit 3', mark]
    res = ctx.run(_ns_prefix(ctx, "readonly") + _run_argv(ctx, s, cmd, "--strict"),
                  preload=False, extra_env=_ns_env(ctx), valgrind=False)
    assert res.returncode == 125, "sockshim run --strict exited %d, not 125: %s" % (
        res.returncode, res.stderr)
    assert not os.path.exists(mark), "--strict started the command"
    one_warning(res.stderr, '"%s"' % s, ctx.session_path(s), "Read-only file system",
                "not starting sh (--strict)")

    res = ctx.run(_run_argv(ctx, s, cmd, "--strict"), preload=False, valgrind=False)
    assert res.returncode == 3 and os.path.exists(mark), (res.returncode, res.stderr)
    assert not lib.sockshim_lines(res.stderr), res.stderr
    assert not os.path.exists(ctx.session_path(s)), "run left its session behind"


def test_run_broken_install_refuses(ctx):
    """No libsockshim.so is a broken installation, not a recording
    problem: refused (125) without starting the command, --strict or not."""
    s = ctx.session()
    mark = os.path.join(ctx.tmp, "started")
    cmd = ["sh", "-c", 'touch "$0"; exit 3', mark]
    lib_env = dict(srvlib.run_env(ctx), SOCKSHIM_LIB=os.path.join(ctx.tmp, "no\x1b.so"))
    res = ctx.run(_run_argv(ctx, s, cmd), preload=False, extra_env=lib_env, valgrind=False)
    assert res.returncode == 125, "sockshim run exited %d, not 125: %s" % (
        res.returncode, res.stderr)
    assert not os.path.exists(mark), "the command started without the shim to preload"
    line = one_warning(res.stderr, "SOCKSHIM_LIB", "no\\x1b.so")
    assert "\x1b" not in res.stderr, "the value was echoed raw: %r" % line
    assert not os.path.exists(ctx.session_path(s))


# ---------------------------------------------------------------------------
# Invalid session names.

VALID_CHARS = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def mapped_name(raw):
    """The rule of man sockshim(1), written again here: valid names stay;
    else the valid characters (each run of others, and a leading '.', one
    '_'), at most 38, at least "_", then "-x" and FNV-1a-64 folded to 32
    bits of every byte."""
    if 0 < len(raw) <= lib.SESSION_MAX and set(raw) <= VALID_CHARS and raw[:1] != b".":
        return raw.decode()
    kept = ""
    for c in raw:
        if len(kept) >= lib.SESSION_MAX - 10:
            break
        if c in VALID_CHARS and not (not kept and c == ord(".")):
            kept += chr(c)
        elif not kept.endswith("_"):
            kept += "_"
    h = 0xcbf29ce484222325
    for c in raw:
        h = ((h ^ c) * 0x100000001b3) & (2 ** 64 - 1)
    return "%s-x%08x" % (kept or "_", (h ^ (h >> 32)) & 0xffffffff)


def escaped(raw):
    """RAW as a warning shows it: \\xHH for a control byte or backslash."""
    return "".join(ch if 0x20 <= ord(ch) < 0x7f and ch != "\\" else "\\x%02x" % ord(ch)
                   for ch in raw)


def _no_raw_controls(text, what):
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f]
    assert not bad, "%s holds raw control characters %r: %r" % (what, bad, text[-2000:])


def _mapping_line(err, raw, mapped, what):
    """The one sockshim: line of ERR says RAW (escaped) is mapped to MAPPED."""
    _no_raw_controls(err, what)
    return one_warning(err, '"%s"' % escaped(raw), 'using "%s"' % mapped)


class _DefaultUntouched:
    """The "default" session is not created, or if it exists, gets no
    event of PORT."""

    def __init__(self, ctx, port):
        self.ctx, self.port = ctx, port
        self.path = ctx.session_path("default")
        self.existed = os.path.exists(self.path)

    def check(self):
        if not self.existed:
            assert not os.path.exists(self.path), "the default session was created"
            return
        mine = [e for e in segment.RawRing(self.ctx.root, self.path).events
                if e["local"] == "127.0.0.1:%d" % self.port]
        assert not mine, "the default session got %d events of our server" % len(mine)


def _events(ctx, args, extra_env=None):
    r = subprocess.run([ctx.tool, "events", "--json"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60,
                       env=ctx.env(preload=False, extra=extra_env))
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "sockshim events %s failed (%d): %s" % (args, r.returncode, err)
    return [json.loads(l) for l in r.stdout.decode().splitlines()], err


def _served_events(evs, port):
    local = "127.0.0.1:%d" % port
    return (lib.count(evs, type="listen", local=local, ret=0),
            len([e for e in evs if e["type"] == "accept" and e["ret"] >= 0
                 and e["local"] == local]))


def _preloaded_invalid_session(ctx, raw):
    mapped = mapped_name(raw.encode())
    assert mapped != "default" and re.fullmatch(r"[A-Za-z0-9_.-]{1,48}", mapped), mapped
    lib.remove_session(ctx.uid, mapped)
    with open(os.path.join(ctx.tmp, "hello.txt"), "wb") as f:
        f.write(BODY)
    port = lib.free_port()
    default = _DefaultUntouched(ctx, port)
    proc = ctx.spawn([ctx.python, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                      ctx.tmp, str(port)], extra_env={"SOCKSHIM_SESSION": raw},
                     valgrind=False, name="http")
    try:
        lib.wait_port(port, timeout=20, proc=proc)
        for i in range(REQUESTS):
            status, body = lib.http_get(port, "/hello.txt")
            assert status == 200 and body == BODY, (i, status, len(body))
        status = lib.stop(proc)
        assert status == -signal.SIGTERM, "server ended with %s" % status
        err = ctx.output(proc)[1]
        line = _mapping_line(err, raw, mapped, "the server's stderr")
        assert "SOCKSHIM_SESSION=" in line, line
        assert os.path.exists(ctx.session_path(mapped)), "no segment %s" % mapped

        # The command maps the same name the same way, from --session...
        evs, err = _events(ctx, ["--session", raw])
        _mapping_line(err, raw, mapped, "sockshim events' stderr")
        # wait_port's probe and our requests.
        assert _served_events(evs, port) == (1, REQUESTS + 1), _served_events(evs, port)
        # ... and from $SOCKSHIM_SESSION.
        evs2, err = _events(ctx, [], extra_env={"SOCKSHIM_SESSION": raw})
        line = _mapping_line(err, raw, mapped, "sockshim events' stderr")
        assert "(from $SOCKSHIM_SESSION)" in line, line
        assert len(evs2) == len(evs), (len(evs2), len(evs))
        default.check()
    finally:
        lib.stop(proc)
        lib.remove_session(ctx.uid, mapped)


def test_session_invalid_name_space(ctx):
    _preloaded_invalid_session(ctx, "it map %d" % os.getpid())


def test_session_invalid_name_controls(ctx):
    _preloaded_invalid_session(ctx, "it\nmap\x1b[31m%d\x7f" % os.getpid())


def test_session_invalid_name_run(ctx):
    """Through `sockshim run --session <invalid>`: one warning in all (the
    command's; the server's shim gets the mapped, valid name), the events
    read with the same invalid name, and clean maps it too."""
    raw = "it run\n%d\x1b]0;title\x07" % os.getpid()
    mapped = mapped_name(raw.encode())
    lib.remove_session(ctx.uid, mapped)
    port = lib.free_port()
    default = _DefaultUntouched(ctx, port)
    server = [ctx.python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", ctx.tmp,
              str(port)]
    proc = ctx.spawn([ctx.tool, "run", "--keep", "--session", raw, "--"] + server,
                     preload=False, extra_env=srvlib.run_env(ctx), valgrind=False, name="run")
    try:
        lib.wait_port(port, timeout=20, proc=proc)
        for i in range(REQUESTS):
            assert lib.http_get(port, "/")[0] == 200, i
        srvlib.signal_run(proc, signal.SIGTERM)
        assert srvlib.wait_exit(proc) == srvlib.SIGTERM_STATUS
        err = ctx.output(proc)[1]
        _no_raw_controls(err, "sockshim run's stderr")
        lines = lib.sockshim_lines(err)
        # The mapping, then "kept session" (--keep).
        assert len(lines) == 2 and 'using "%s"' % mapped in lines[0] \
            and 'kept session "%s"' % mapped in lines[1], lines
        evs, err = _events(ctx, ["--session", raw])
        _mapping_line(err, raw, mapped, "sockshim events' stderr")
        assert _served_events(evs, port) == (1, REQUESTS + 1), _served_events(evs, port)
        default.check()
        r = subprocess.run([ctx.tool, "clean", "--session", raw], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=ctx.env(preload=False))
        assert r.returncode == 0 and not os.path.exists(ctx.session_path(mapped)), (
            r.returncode, r.stdout, r.stderr)
        _mapping_line(r.stderr.decode(), raw, mapped, "sockshim clean's stderr")
    finally:
        lib.stop(proc)
        lib.remove_session(ctx.uid, mapped)
