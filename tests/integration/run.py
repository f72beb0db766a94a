"""Runs the integration tests: every test_* function of every test_*.py here
(or the modules named on the command line), each in order, with a time limit.
Prints one line per test and `N passed, N failed` last."""
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test took longer than its time limit")


def on_term(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    try:
        return run_all(argv)
    finally:
        # Nothing is left running, whatever happened to the tests.
        import harness
        harness.stop_all()


def run_all(argv):
    names = argv or sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("test_") and f.endswith(".py"))
    only = os.environ.get("TEST_FILTER")
    passed = failed = 0
    signal.signal(signal.SIGALRM, on_alarm)
    for name in names:
        mod = importlib.import_module(name)
        tests = [(n, f) for n, f in vars(mod).items() if n.startswith("test_") and callable(f)]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        setup = getattr(mod, "setup_module", None)
        teardown = getattr(mod, "teardown_module", None)
        try:
            if setup:
                setup()
        except Exception:
            traceback.print_exc()
            print(f"FAIL {name}: setup_module failed, {len(tests)} tests not run")
            failed += len(tests)
            continue
        try:
            for tname, fn in tests:
                if only and only not in f"{name}.{tname}":
                    continue
                limit = getattr(fn, "time_limit", 60)
                t0 = time.time()
                signal.alarm(limit)
                try:
                    fn()
                    signal.alarm(0)
                    passed += 1
                    print(f"ok   {name}.{tname} ({time.time() - t0:.2f}s)", flush=True)
                except BaseException as e:  # noqa: B902 - report everything, keep going
                    signal.alarm(0)
                    failed += 1
                    print(f"FAIL {name}.{tname}: {type(e).__name__}: {e}", flush=True)
                    traceback.print_exc()
                    if isinstance(e, (KeyboardInterrupt, SystemExit)):
                        raise
        finally:
            if teardown:
                try:
                    teardown()
                except Exception:
                    traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def time_limit(seconds):
    def deco(fn):
        fn.time_limit = seconds
        return fn
    return deco


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
