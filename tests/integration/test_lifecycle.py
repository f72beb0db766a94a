"""Connection lifecycle through a real Apache: Apache's own timeouts do not
cut an idle WebSocket, the server's heartbeat (WSBridgePingInterval), the
idle timeout (WSBridgeIdleTimeout), a peer that never answers a close, and
graceful restart/stop ending every session with 1001."""
import threading
import time

from harness import Apache, no_child_crash, shared_apache
from run import time_limit
from wsclient import (PING, PONG, TEXT, WS, handshake_request, read_http_response,
                      ws_connect_retry, ws_next_close, ws_rest_until_eof)

# Apache's Timeout and mod_reqtimeout set to 2 s: a WebSocket idle for longer
# must survive both (the handler removes reqtimeout and never blocks on a read).
EXTRA = """
Timeout 2
RequestReadTimeout header=2 body=2
<Location /ws/ping>
  SetHandler wsbridge
  WSBridgePingInterval 1
</Location>
<Location /ws/idle>
  SetHandler wsbridge
  WSBridgePingInterval 0
  WSBridgeIdleTimeout 2
</Location>
"""

apache = None  # set by setup_module
setup_module, teardown_module = shared_apache(globals(), extra_conf=EXTRA)


@time_limit(15)
def test_idle_connection_survives_apache_timeouts():
    w = WS(apache.port)
    try:
        w.send(TEXT, b"before")
        assert w.recv_message() == (TEXT, b"before")
        time.sleep(4.0)  # twice Timeout and the reqtimeout body limit
        w.send(TEXT, b"after 4s idle")
        assert w.recv_message() == (TEXT, b"after 4s idle")
    finally:
        w.shutdown()


@time_limit(15)
def test_server_pings_idle_client():
    w = WS(apache.port, path="/ws/ping")
    try:
        t0 = time.time()
        fin, op, payload, _ = w.recv_frame(timeout=3)
        elapsed = time.time() - t0
        assert op == PING, f"expected a server ping, got opcode {op:#x} {payload!r}"
        assert elapsed <= 1.6, f"first ping after {elapsed:.2f}s with WSBridgePingInterval 1"
        assert elapsed >= 0.8, f"ping too early: {elapsed:.2f}s"
        w.send(PONG, payload)
        # answered: the connection stays, and the heartbeat goes on
        t1 = time.time()
        fin, op, payload2, _ = w.recv_frame(timeout=3)
        assert op == PING, f"expected a second ping, got {op:#x}"
        assert time.time() - t1 <= 1.6, f"second ping after {time.time() - t1:.2f}s"
        w.send(PONG, payload2)
        w.send(TEXT, b"still open")
        assert w.recv_message() == (TEXT, b"still open")
    finally:
        w.shutdown()


@time_limit(15)
def test_idle_timeout_closes_with_1001():
    w = WS(apache.port, path="/ws/idle")
    try:
        t0 = time.time()
        time.sleep(1.0)
        w.send(TEXT, b"activity")  # resets the idle clock
        assert w.recv_message() == (TEXT, b"activity")
        t_active = time.time()
        code, reason = ws_next_close(w, timeout=5)
        closed_after = time.time() - t_active
        assert code == 1001, f"idle close code {code} ({reason!r}), want 1001"
        assert 1.7 <= closed_after <= 3.0, \
            f"closed {closed_after:.2f}s after the last client frame (WSBridgeIdleTimeout 2)"
        assert time.time() - t0 >= 2.7, "activity did not reset the idle timer"
        w.close(1001)  # answer the close; then the server drops TCP
        assert ws_rest_until_eof(w, timeout=3) == b""
    finally:
        w.shutdown()


@time_limit(15)
def test_client_that_never_answers_close_is_disconnected():
    w = WS(apache.port, path="/ws/idle")
    try:
        code, _ = ws_next_close(w, timeout=5)
        assert code == 1001, code
        t0 = time.time()
        rest = ws_rest_until_eof(w, timeout=6)  # we never send our close
        waited = time.time() - t0
        assert rest == b"", f"bytes after the close frame: {rest!r}"
        assert waited <= 4.0, f"server kept the connection {waited:.2f}s after its close"
    finally:
        w.shutdown()


def test_no_ping_when_interval_off():
    w = WS(apache.port, path="/ws/idle")
    try:
        w.sock.settimeout(1.2)
        try:
            data = w.sock.recv(100)
        except (TimeoutError, OSError):
            data = b""
        assert data == b"", f"server sent {data!r} with WSBridgePingInterval 0"
    finally:
        w.shutdown()


def collect_closes(clients, timeout):
    """Reads each client's close concurrently; answers it. Returns
    [(code, seconds)] in client order."""
    results = [None] * len(clients)
    t0 = time.time()

    def one(i, w):
        try:
            code, _ = w.expect_close(timeout=timeout)
            results[i] = (code, time.time() - t0)
            w.close(code or 1000)
        except Exception as e:  # noqa: B902 - reported by the caller
            results[i] = (repr(e), time.time() - t0)

    threads = [threading.Thread(target=one, args=(i, w)) for i, w in enumerate(clients)]
    for t in threads:
        t.start()
    return threads, results


def check_closed_with_1001(results, who=""):
    """Every client of collect_closes() got a 1001 close within 2 s."""
    for i, r in enumerate(results):
        assert r is not None and r[0] == 1001, f"{who}client {i}: {r} (want close 1001)"
        assert r[1] <= 2.0, f"{who}client {i}: close after {r[1]:.2f}s (want <= 2s)"


@time_limit(20)
def test_graceful_restart_closes_sessions_with_1001():
    clients = [WS(apache.port) for _ in range(3)]
    try:
        for i, w in enumerate(clients):
            w.send(TEXT, f"hi {i}")
            assert w.recv_message() == (TEXT, f"hi {i}".encode())
        threads, results = collect_closes(clients, timeout=4)
        apache.graceful()
        for t in threads:
            t.join(6)
        check_closed_with_1001(results)
        # the restarted server takes new connections at once
        w = ws_connect_retry(apache.port, timeout=5, what="no new WebSocket after graceful restart")
        try:
            w.send(TEXT, b"after restart")
            assert w.recv_message() == (TEXT, b"after restart")
        finally:
            w.shutdown()
        no_child_crash(apache)
    finally:
        for w in clients:
            w.shutdown()


@time_limit(25)
def test_graceful_stop_closes_sessions_with_1001():
    a = Apache().start()
    try:
        clients = [WS(a.port) for _ in range(3)]
        for w in clients:
            w.send(TEXT, b"x")
            assert w.recv_message() == (TEXT, b"x")
        threads, results = collect_closes(clients, timeout=4)
        stopper = threading.Thread(target=a.graceful_stop)
        stopper.start()
        for t in threads:
            t.join(6)
        check_closed_with_1001(results)
        for i, w in enumerate(clients):
            assert ws_rest_until_eof(w, timeout=3) == b"", f"client {i}: data after close"
            w.shutdown()  # spares Apache the lingering close wait
        stopper.join(12)
        assert not stopper.is_alive(), "graceful-stop did not finish"
        no_child_crash(a)
    finally:
        a.stop()


@time_limit(30)
def test_graceful_restart_on_worker_and_prefork():
    # prefork only learns of the stop through EINTR + the MPM state; worker
    # through the child_stopping hook like event.
    for mpm in ("worker", "prefork"):
        # Two clients at once on prefork's two started children: no reserve
        # (test_worker_reserve covers it).
        a = Apache(mpm=mpm, extra_conf="WSBridgeReserveWorkers 0\n").start()
        try:
            clients = [WS(a.port) for _ in range(2)]
            for w in clients:
                w.send(TEXT, b"x")
                assert w.recv_message() == (TEXT, b"x")
            threads, results = collect_closes(clients, timeout=4)
            a.graceful()
            for t in threads:
                t.join(6)
            check_closed_with_1001(results, who=f"{mpm} ")
            for w in clients:
                w.shutdown()
            w = ws_connect_retry(a.port, timeout=5, what=f"{mpm}: no new WebSocket after graceful")
            try:
                w.send(TEXT, b"again")
                assert w.recv_message() == (TEXT, b"again"), mpm
            finally:
                w.shutdown()
            no_child_crash(a)
        finally:
            a.stop()


def test_max_connections_refuses_with_503():
    a = Apache(extra_conf="WSBridgeMaxConnections 2\n").start()
    clients = []
    try:
        clients = [WS(a.port) for _ in range(2)]
        raw, _ = handshake_request()
        status, headers, body, sock = read_http_response(a.port, raw)
        sock.close()
        assert status == 503, f"third connection over WSBridgeMaxConnections 2: {status} {body!r}"
        assert headers.get("retry-after"), headers
        clients[0].close(1000)
        assert ws_next_close(clients[0]) == (1000, "")
        ws_rest_until_eof(clients[0], timeout=3)
        # the slot is given back when the handler returns
        w = ws_connect_retry(a.port, timeout=3, interval=0.05)
        clients.append(w)
        w.send(TEXT, b"in")
        assert w.recv_message() == (TEXT, b"in")
    finally:
        for w in clients:
            w.shutdown()
        a.stop()


@time_limit(30)
def test_max_connections_per_child_closes_with_1001_and_new_child_serves():
    # A child that reaches MaxConnectionsPerChild stops gracefully: its
    # open WebSockets get 1001 within 2 s and a new child takes over.
    # 4 = instance.sh's readiness probe + 2 clients + the last one.
    a = Apache(extra_conf="MaxConnectionsPerChild 4\n", children=1, threads=8, max_workers=16).start()
    try:
        first = [WS(a.port) for _ in range(2)]
        for w in first:
            w.send(TEXT, b"x")
            assert w.recv_message() == (TEXT, b"x")
        threads, results = collect_closes(first, timeout=4)
        # The third connection is the child's last: it may be served or get
        # 503 "server is restarting"; either way the child now stops.
        try:
            third = WS(a.port)
            third.shutdown()
        except AssertionError as e:
            assert "503" in str(e), e
        for t in threads:
            t.join(6)
        check_closed_with_1001(results)
        w = ws_connect_retry(a.port, timeout=5)
        w.send(TEXT, b"after")
        assert w.recv_message() == (TEXT, b"after")
        w.shutdown()
        no_child_crash(a)
    finally:
        a.stop()


@time_limit(20)
def test_hard_stop_closes_sockets_promptly():
    # `apache2 -k stop`: mpm_event closes the client sockets itself before
    # any module hook runs (README, "Hard stop differs"), so no close frame
    # can be sent, but the TCP connection must end at once, not hang.
    a = Apache().start()
    try:
        clients = [WS(a.port) for _ in range(3)]
        t0 = time.time()
        a.stop()
        for w in clients:
            ws_rest_until_eof(w, timeout=3)  # raises if the server keeps it open
        assert time.time() - t0 < 5, f"sockets closed only after {time.time() - t0:.1f}s"

    finally:
        a.stop()
