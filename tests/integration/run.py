#!/usr/bin/env python3
"""Runs the integration tests: every test_* function of every
tests/integration/test_*.py module, each with a fresh Context and a time
limit, one line per test (PASS/FAIL/SKIP), then the totals alone on the last
line. Exit status 1 if any test failed. Standard library only.

    python3 tests/integration/run.py --build build [--sanitizer address|thread]
                                     [--valgrind] [-k PATTERN]
"""

import argparse
import fnmatch
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import lib  # noqa: E402


def discover():
    """[(name, function)] in file order, modules sorted by name."""
    tests, seen = [], {}
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        spec = importlib.util.spec_from_file_location(modname, os.path.join(HERE, fname))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        funcs = [(getattr(f, "__code__").co_firstlineno, n, f) for n, f in vars(mod).items()
                 if n.startswith("test_") and callable(f) and hasattr(f, "__code__")
                 and f.__module__ == modname]
        for _, n, f in sorted(funcs):
            if n in seen:
                raise SystemExit("run.py: %s is defined in both %s and %s" % (n, seen[n], fname))
            seen[n] = fname
            tests.append((n, f))
    return tests


def selected(name, patterns):
    if not patterns:
        return True
    return any(p in name or fnmatch.fnmatchcase(name, p) for p in patterns)


def on_alarm(signum, frame):
    raise lib.TestTimeout("timed out after %.0fs" % lib.TEST_TIMEOUT)


def reason_of(exc):
    """The first line of an exception for the FAIL line, the rest as detail."""
    if isinstance(exc, lib.TestTimeout):
        text = str(exc)
    elif isinstance(exc, subprocess.TimeoutExpired):
        cmd = exc.cmd if isinstance(exc.cmd, str) else " ".join(map(str, exc.cmd))
        return "timed out after %ss: %s" % (exc.timeout, cmd), []
    elif isinstance(exc, AssertionError):
        text = str(exc) or "assertion failed"
    else:
        text = "%s: %s" % (type(exc).__name__, exc)
    lines = text.splitlines() or [""]
    detail = lines[1:]
    if not isinstance(exc, (AssertionError, lib.TestTimeout, lib.Skip)):
        detail += traceback.format_exception(type(exc), exc, exc.__traceback__)
    elif isinstance(exc, AssertionError) and not str(exc):
        tb = traceback.extract_tb(exc.__traceback__)
        if tb:
            detail.append("at %s:%d: %s" % (os.path.basename(tb[-1].filename), tb[-1].lineno,
                                           tb[-1].line))
    return lines[0], detail


def run_one(ctx, name, func, keep):
    tmp = tempfile.mkdtemp(prefix="sockshim-it.%s." % name)
    ctx.begin(name, tmp)
    start = time.monotonic()
    status, reason, detail = "PASS", "", []
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, lib.TEST_TIMEOUT)
    try:
        try:
            func(ctx)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except lib.Skip as e:
        status, reason = "SKIP", str(e)
    except (Exception, lib.TestTimeout) as e:  # noqa: BLE001 - a test's failure
        status = "FAIL"
        reason, detail = reason_of(e)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        try:
            ctx.cleanup()
        except Exception as e:  # noqa: BLE001
            if status == "PASS":
                status, reason = "FAIL", "cleanup: %s" % e
    elapsed = time.monotonic() - start
    if status == "PASS":
        print("PASS %s (%.1fs)" % (name, elapsed), flush=True)
    else:
        print("%s %s: %s" % (status, name, reason), flush=True)
        for line in detail:
            for sub in line.rstrip("\n").splitlines():
                print("    " + sub, flush=True)
    if status == "FAIL" and keep:
        print("    (files kept in %s)" % tmp, flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return status


# The signals the tests send to the servers they start (through sockshim
# run, which leaves a signal ignored when it started with it ignored). A
# runner started in the background (`make tsan &` from a script, nohup)
# inherits them ignored and would hand that on: the servers would never
# stop. The runner keeps ignoring them; what it starts gets the defaults,
# as from a terminal (exec resets a caught signal, not an ignored one).
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)


def ignored_but_caught(signum, frame):
    pass


def default_stop_signals_for_children():
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, ignored_but_caught)


def main():
    ap = argparse.ArgumentParser(description="sockshim integration tests")
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--sanitizer", choices=["address", "thread"],
                    help="the build directory holds a sanitized build")
    ap.add_argument("--valgrind", action="store_true", help="run the C test programs under valgrind")
    ap.add_argument("-k", action="append", default=[], metavar="PATTERN",
                    help="run only tests whose name contains PATTERN (or matches the glob)")
    ap.add_argument("--keep", action="store_true", help="keep the files of failed tests")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    args = ap.parse_args()

    os.chdir(ROOT)
    default_stop_signals_for_children()
    build = args.build if os.path.isabs(args.build) else os.path.join(ROOT, args.build)
    if args.valgrind and not lib.which("valgrind"):
        print("run.py: --valgrind: valgrind is not installed", file=sys.stderr)
        return 2
    ctx = lib.Context(ROOT, build, args.sanitizer, args.valgrind)
    if not os.path.exists(ctx.lib):
        print("run.py: %s not found; build it first (make)" % ctx.lib, file=sys.stderr)
        return 2
    tests = [(n, f) for n, f in discover() if selected(n, args.k)]
    if args.list:
        for n, _ in tests:
            print(n)
        return 0
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for name, func in tests:
        counts[run_one(ctx, name, func, args.keep)] += 1
    print("%d passed, %d failed, %d skipped" % (counts["PASS"], counts["FAIL"], counts["SKIP"]),
          flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
