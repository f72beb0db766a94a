"""Starts private Apache instances with the built module for the tests.

Each instance gets its own directory under build/test-instances/, free
loopback ports and a generated config (scripts/instance.sh); it is stopped
when the test is done, also on failure.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INSTANCE = os.path.join(ROOT, "scripts", "instance.sh")
BASE = os.path.join(ROOT, "build", "test-instances")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Every instance started and not yet stopped, so the runner can stop them
# even when a test is interrupted (see run.py).
RUNNING = set()


def stop_all():
    for a in list(RUNNING):
        a.stop()


class Apache:
    """A private Apache: `with Apache(extra_conf="...") as a: a.port`."""

    def __init__(self, extra_conf="", mpm="event", children=2, threads=25, ssl=False,
                 max_workers=None, env=None):
        os.makedirs(BASE, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="apache-", dir=BASE)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.ssl_port = free_port() if ssl else None
        self.env = dict(os.environ, PORT=str(self.port), MPM=mpm, CHILDREN=str(children),
                        THREADS=str(threads), QUIET="1")
        if max_workers:
            self.env["MAXWORKERS"] = str(max_workers)
        if ssl:
            self.env["SSL_PORT"] = str(self.ssl_port)
        if env:
            self.env.update(env)
        if extra_conf:
            path = os.path.join(self.dir, "extra.conf")
            with open(path, "w") as f:
                f.write(extra_conf)
            self.env["EXTRA_CONF"] = path

    def _run(self, cmd, check=True):
        return subprocess.run([INSTANCE, cmd, self.dir], env=self.env, check=check,
                              capture_output=True, text=True, timeout=60)

    def start(self):
        r = self._run("start", check=False)
        RUNNING.add(self)
        if r.returncode != 0:
            raise RuntimeError("apache did not start: " + r.stdout + r.stderr)
        return self

    def stop(self):
        self._run("stop", check=False)
        RUNNING.discard(self)

    def graceful(self):
        self._run("graceful")

    def graceful_stop(self):
        self._run("graceful-stop", check=False)

    def pid(self):
        with open(os.path.join(self.dir, "httpd.pid")) as f:
            return int(f.read().strip())

    def child_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.pid())], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "logs", "error.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "logs", "access.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.error_log():
                return True
            time.sleep(0.05)
        return False

    def configtest(self):
        """Writes the config and runs apache2 -t; returns (ok, output)."""
        conf = self._run("conf").stdout.strip()
        r = subprocess.run(["apache2", "-t", "-f", conf], capture_output=True, text=True, timeout=30)
        return r.returncode == 0, r.stdout + r.stderr

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def configtest(extra_conf):
    """apache2 -t of a config with extra_conf, in an instance directory
    removed afterwards; returns (ok, output)."""
    a = Apache(extra_conf=extra_conf)
    try:
        return a.configtest()
    finally:
        shutil.rmtree(a.dir, ignore_errors=True)


def shared_apache(module_globals, **kw):
    """The one-Apache-per-test-module fixture. At a test module's top level:

        apache = None  # set by setup_module
        setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA)

    setup_module starts Apache(**kw) and stores it as the module global
    `apache`; teardown_module stops it, if it was started."""

    def setup_module():
        module_globals["apache"] = Apache(**kw).start()

    def teardown_module():
        a = module_globals.get("apache")
        if a:
            a.stop()

    return setup_module, teardown_module


# Error-log lines of a child that died: a signal, a segfault, or Apache's
# AH00052 "child pid ... exit signal".
CRASH_MARKERS = ("exit signal", "Segmentation", "AH00052")


def no_child_crash(a, markers=CRASH_MARKERS):
    """Fails when the error log of Apache `a` shows one of `markers`."""
    log = a.error_log()
    for marker in markers:
        assert marker not in log, f"a child crashed ({marker}):\n{log[-3000:]}"
