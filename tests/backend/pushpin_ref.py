#!/usr/bin/python3
"""The reference: the real Pushpin (Debian package) in front of a backend.

`Pushpin(backend_port)` starts zurl and the pushpin runner (condure,
pushpin-proxy, pushpin-handler) with a private config under a temporary
directory: every port is a free one on 127.0.0.1, every ZeroMQ socket is an
ipc file in that directory, and the one route sends WebSockets to the backend
as WebSocket-over-HTTP (GRIP on). zurl gets its own config because the
packaged one refuses 127.* targets. `PhpBackend` runs tests/backend/
echo_backend.php under `php -S`, logging every request it gets.

    with PhpBackend() as be, Pushpin(be.port) as pp:
        ws://127.0.0.1:{pp.http_port}/path   and   pp.publish({...})

`python3 tests/backend/pushpin_ref.py` runs a short demo and prints what the
backend received.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO_BACKEND = os.path.join(HERE, "echo_backend.php")
PACKAGED_INTERNAL_CONF = "/usr/lib/pushpin/internal.conf"
START_TIMEOUT_S = 20
ZMQ_SETTLE_S = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline, proc=None):
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("port %d did not open in time" % port)


def stop_process(proc, timeout=10):
    """Ends a process group this module started (and only that one)."""
    if proc is None:
        return
    # The whole group: php -S leaves its workers running when only the
    # leader is told to stop. Orphaned workers are reaped by init.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        proc.wait(timeout=5)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class PhpBackend:
    """echo_backend.php (or another script) under `php -S 127.0.0.1:port`."""

    def __init__(self, script=ECHO_BACKEND, log_path=None):
        self.script = script
        self.port = free_port()
        self._tmp = None
        if log_path is None:
            self._tmp = tempfile.mkdtemp(prefix="wsb-backend-")
            log_path = os.path.join(self._tmp, "requests.jsonl")
        self.log_path = log_path
        self.proc = None

    def start(self):
        env = dict(os.environ, WSB_BACKEND_LOG=self.log_path)
        # Several workers so a sleeping request does not block the next one.
        env["PHP_CLI_SERVER_WORKERS"] = "4"
        self.proc = subprocess.Popen(
            ["php", "-S", "127.0.0.1:%d" % self.port, self.script],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_port(self.port, time.time() + START_TIMEOUT_S, self.proc)
        return self

    def stop(self):
        stop_process(self.proc)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def requests(self):
        """Every logged request: dicts with method, uri, headers, body (bytes)."""
        out = []
        if not os.path.exists(self.log_path):
            return out
        with open(self.log_path) as f:
            for line in f:
                r = json.loads(line)
                r["body"] = base64.b64decode(r.pop("body_b64"))
                out.append(r)
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Pushpin:
    """zurl + the pushpin runner on free loopback ports, routed to a backend."""

    def __init__(self, backend_port, backend_host="127.0.0.1", sig_key="reference-key",
                 sig_iss="pushpin", route_params="over_http", log_level=2, zurl_timeout_s=600,
                 client_buffer_size=8192, client_maxconn=1000):
        self.backend = "%s:%d" % (backend_host, backend_port)
        self.sig_key = sig_key
        self.sig_iss = sig_iss
        self.route_params = route_params
        self.log_level = log_level
        self.zurl_timeout_s = zurl_timeout_s
        # condure's per-connection buffer. With Pushpin's default 8192 a
        # client message that does not fit is held back for good (a 100 KB
        # one was never delivered): a comparison with large messages sets it
        # larger. Pushpin's own cap stays: a client message of 200,000 bytes
        # or more makes it drop the client's TCP connection.
        self.client_buffer_size = client_buffer_size
        self.client_maxconn = client_maxconn
        self.dir = tempfile.mkdtemp(prefix="pushpin-ref-")
        self.rundir = os.path.join(self.dir, "run")
        self.logdir = os.path.join(self.dir, "log")
        self.http_port = free_port()
        self.publish_port = free_port()
        self.zurl = None
        self.runner = None

    def _ipc(self, name):
        return "ipc://%s/%s" % (self.rundir, name)

    def _write_configs(self):
        os.makedirs(self.rundir)
        os.makedirs(self.logdir)
        # The packaged internal.conf points zurl at /var/run/zurl; ours at rundir.
        with open(PACKAGED_INTERNAL_CONF) as f:
            internal = f.read().replace("ipc:///var/run/zurl/zurl-", "ipc://{rundir}/{ipc_prefix}zurl-")
        with open(os.path.join(self.dir, "internal.conf"), "w") as f:
            f.write(internal)
        with open(os.path.join(self.dir, "zurl.conf"), "w") as f:
            f.write("[General]\ninstance_id=ref-zurl\n"
                    "in_spec=%s\nin_stream_spec=%s\nout_spec=%s\n"
                    "defpolicy=allow\nallow=\ndeny=\n"
                    "max_open_requests=100\nbuffer_size=200000\ntimeout=%d\n"
                    % (self._ipc("ref-zurl-in"), self._ipc("ref-zurl-in-stream"),
                       self._ipc("ref-zurl-out"), self.zurl_timeout_s))
        with open(os.path.join(self.dir, "routes"), "w") as f:
            f.write("* %s,%s\n" % (self.backend, self.route_params))
        conf = """[global]
include=%(dir)s/internal.conf
rundir=%(rundir)s
ipc_prefix=ref-
port_offset=0
stats_connection_ttl=120

[runner]
services=condure,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:%(http_port)d
logdir=%(logdir)s
log_level=%(log_level)d
client_buffer_size=%(client_buffer_size)d
client_maxconn=%(client_maxconn)d
condure_bin=condure
zurl_bin=zurl

[proxy]
routesfile=routes
debug=true
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
orig_headers_need_mark=
accept_pushpin_route=false
log_from=false
log_user_agent=false
sig_iss=%(sig_iss)s
sig_key=%(sig_key)s
upstream_key=
updates_check=off

[handler]
push_in_spec=%(push_in)s
push_in_sub_specs=%(push_in_sub)s
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=%(publish_port)d
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=%(stats)s
command_spec=%(command)s
message_rate=2500
message_hwm=25000
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
""" % dict(dir=self.dir, rundir=self.rundir, http_port=self.http_port, logdir=self.logdir,
           log_level=self.log_level, client_buffer_size=self.client_buffer_size,
           client_maxconn=self.client_maxconn, sig_iss=self.sig_iss, sig_key=self.sig_key,
           publish_port=self.publish_port, push_in=self._ipc("ref-push-in"),
           push_in_sub=self._ipc("ref-push-in-sub"), stats=self._ipc("ref-stats"),
           command=self._ipc("ref-command"))
        with open(os.path.join(self.dir, "pushpin.conf"), "w") as f:
            f.write(conf)

    def start(self):
        self._write_configs()
        self.zurl = subprocess.Popen(
            ["zurl", "--config=%s" % os.path.join(self.dir, "zurl.conf"),
             "--logfile=%s" % os.path.join(self.logdir, "zurl.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.runner = subprocess.Popen(
            ["pushpin", "--config=%s" % os.path.join(self.dir, "pushpin.conf")],
            stdout=open(os.path.join(self.logdir, "runner.out"), "w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + START_TIMEOUT_S
            wait_port(self.http_port, deadline, self.runner)
            wait_port(self.publish_port, deadline, self.runner)
            self._wait_started(deadline)
            if self.zurl.poll() is not None:
                raise RuntimeError("zurl exited with %s" % self.zurl.returncode)
        except Exception:
            self.stop(keep_dir=True)
            raise
        return self

    def _wait_started(self, deadline):
        """Every service logs "started"; the ZeroMQ links between them come up
        a moment later (a connection accepted before is closed unanswered)."""
        logs = ["condure.log", "pushpin-proxy.log", "pushpin-handler.log", "zurl.log"]
        while time.time() < deadline:
            done = 0
            for name in logs:
                path = os.path.join(self.logdir, name)
                if os.path.exists(path):
                    with open(path) as f:
                        done += " started\n" in f.read()
            if done == len(logs):
                time.sleep(ZMQ_SETTLE_S)
                return
            time.sleep(0.1)
        raise RuntimeError("pushpin services did not start in time (logs in %s)" % self.logdir)

    def stop(self, keep_dir=False):
        stop_process(self.runner)
        stop_process(self.zurl)
        self.runner = self.zurl = None
        if not keep_dir and not os.environ.get("PUSHPIN_REF_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def publish(self, body, path="/publish/"):
        """POSTs a GRIP publish body (dict or raw bytes); returns (status, text)."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        conn = http.client.HTTPConnection("127.0.0.1", self.publish_port, timeout=10)
        try:
            conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def decode_jwt(token):
    """The claims of a JWT, without checking the signature (for looking)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _demo():
    import asyncio
    import websockets

    async def client(pp):
        url = "ws://127.0.0.1:%d/demo/path?x=1&y=two" % pp.http_port
        async with websockets.connect(url, subprotocols=["chat", "other"],
                                      extra_headers={"Meta-Evil": "1", "Grip-Evil": "1",
                                                     "Connection-Id": "mine"}) as ws:
            print("subprotocol:", ws.subprotocol)
            await ws.send("hello")
            print("echo:", await asyncio.wait_for(ws.recv(), 5))
            await ws.send(b"\x00\x01bin")
            print("binary:", await asyncio.wait_for(ws.recv(), 5))
            await asyncio.wait_for(await ws.ping(b"pp"), 5)
            await ws.send("sub:demo")
            await asyncio.sleep(0.5)
            print("publish:", pp.publish({"items": [{"channel": "demo", "formats": {
                "ws-message": {"content": "published text"}}}]}))
            print("got:", await asyncio.wait_for(ws.recv(), 5))
            await ws.send("meta:user=alice")
            await ws.send("meta?")
            print("meta:", await asyncio.wait_for(ws.recv(), 5))
            await ws.send("close")
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as e:
                print("closed:", e.code, e.reason)

    with PhpBackend() as be, Pushpin(be.port) as pp:
        asyncio.run(client(pp))
        time.sleep(0.3)
        for r in be.requests():
            print(r["method"], r["uri"])
            for k, v in r["headers"]:
                print("   %s: %s" % (k, v))
            print("   body:", r["body"])


if __name__ == "__main__":
    sys.exit(_demo())
