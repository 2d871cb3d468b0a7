"""make install puts the command, the library and the man page where
PREFIX/DESTDIR say, and the installed command finds the installed library;
make demo runs to the end and shows accepts, the herd's figures and the
client sockshim timewait names."""

import os
import re
import subprocess

import lib


def test_install_destdir(ctx):
    if ctx.sanitizer or ctx.valgrind:
        raise lib.Skip("installs the normal build only")
    dest = os.path.join(ctx.tmp, "dest")
    out = subprocess.run(["make", "-s", "-C", ctx.root, "install", "PREFIX=/opt/ss",
                          "DESTDIR=" + dest], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=300)
    assert out.returncode == 0, out.stdout.decode()
    tool = os.path.join(dest, "opt/ss/bin/sockshim")
    shim = os.path.join(dest, "opt/ss/lib/sockshim/libsockshim.so")
    man = os.path.join(dest, "opt/ss/share/man/man1/sockshim.1")
    for path, mode in ((tool, 0o755), (shim, 0o644), (man, 0o644)):
        assert os.path.isfile(path), "%s not installed" % path
        assert os.stat(path).st_mode & 0o777 == mode, "%s mode %o" % (path, os.stat(path).st_mode)
    # The man page renders and documents every SOCKSHIM_* variable.
    text = subprocess.run(["man", "-l", "-P", "cat", man], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60,
                          env=dict(os.environ, MANWIDTH="100")).stdout.decode()
    for word in ("SOCKSHIM_SESSION", "SOCKSHIM_RING_EVENTS", "SOCKSHIM_LOG", "events",
                 "sessions", "clean", "run"):
        assert word in text, "man page lacks %s" % word
    # Moved away from the build tree, the command runs a program under the
    # library it was installed with (found next to it as ../lib/sockshim).
    session = ctx.session()
    env = ctx.env(preload=False)
    run = subprocess.run([tool, "run", "--session", session, "--keep", "--",
                          ctx.python, "-c", "import socket; socket.socket().close()"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    events = ctx.events(session)
    assert lib.count(events, type="socket") >= 1, events
    assert lib.count(events, type="close") >= 1, events


def test_make_demo(ctx):
    if ctx.sanitizer or ctx.valgrind:
        raise lib.Skip("the demo runs the normal build")
    out = subprocess.run(["make", "-s", "-C", ctx.root, "demo"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120)
    text = out.stdout.decode()
    assert out.returncode == 0, text
    # Five answered connections, and five accepts with their closes shown.
    assert text.count("hello from worker") == 5, text
    table = text.split("sockshim events --session", 1)[1]
    assert table.count(" accept ") >= 5, text
    assert table.count(" peer_eof ") >= 5, text
    # The herd of workers waiting in poll: counted in observe, next to the
    # server's own count and CPU; then the short-connection client named by
    # timewait. (How many spurious wakeups varies with the load: test_herd.)
    if "== --accept observe" in text:
        for mode in ("observe", "serialize"):
            section = text.split("== --accept %s" % mode, 1)[1]
            assert "spurious/accept" in section, section
            assert "prefork_server: 4 workers (poll): 200 accepts" in section, section
        assert re.search(r"== the herd: spurious wakeups per accept: observe [0-9.]+, "
                         r"serialize [0-9.]+; workers' CPU per accept", text), text
    tw = text.split("sockshim timewait --session", 1)[1]
    assert re.search(r"\n +\d+  client  127\.0\.0\.1:\* ", tw), tw
    assert re.search(r"created by: demo_client \d+", tw), tw
    assert "born by connect" in tw and "examples/demo_client.c:" in tw, tw
    assert "remedy: this client closes first" in tw, tw
