"""A private redis-server for the chaos run: its own port and data dir,
appendonly with fsync always (docs/redis.md), so a restart, even kill -9,
keeps the bus."""
import os
import shutil
import signal
import socket
import subprocess
import time

import harness


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis:
    def __init__(self, data_dir):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (scripts/install-deps.sh installs it)")
        self.dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        self.port = harness.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not ping(self.port):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
