"""A private redis-server for the tests that put a bus on Redis: a free
loopback port, its own data directory, and stopped (with the directory
removed, when it made one) at the end, also when the test fails.

    with RedisServer() as r:                 # started; stopped on the way out
        conf = f"WSBridgeBus {r.url}\n"
        r.stop(signal.SIGKILL); r.start()    # an outage, same port and dir

persist=True runs it appendonly with fsync always, so a restart, even
kill -9, keeps the bus (docs/redis.md); persist=False keeps nothing on disk,
so a restart loses everything. The test runner (run.py) stops a server still
running when a test module is cut short (harness.RUNNING)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness


def ping(port):
    """True when a Redis on the loopback port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, persist=False, data_dir=None, prefix="wsb-redis-"):
        """data_dir: where Redis keeps its files (kept afterwards); without
        it a temporary directory, removed by close()."""
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (scripts/install-deps.sh installs it)")
        self.persist = persist
        self.own_dir = data_dir is None
        self.dir = tempfile.mkdtemp(prefix=prefix) if self.own_dir else data_dir
        os.makedirs(self.dir, exist_ok=True)
        self.port = harness.free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = None

    @property
    def running(self):
        return self.proc is not None

    def start(self, timeout=10):
        """Starts redis-server and waits until it answers PING."""
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist \
            else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *durability, "--dir", self.dir, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.RUNNING.add(self)
        deadline = time.time() + timeout
        while not ping(self.port):
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM):
        """Stops it with sig (SIGKILL: a crash), SIGKILL if it is still there after 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        harness.RUNNING.discard(self)

    def close(self):
        """Stops it and removes the data directory if it made it."""
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
