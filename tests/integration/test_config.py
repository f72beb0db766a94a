"""Directive parsing: every bad value is refused by `apache2 -t` with a message
that names the directive; good values pass; the directives work from an
.htaccess file under AllowOverride FileInfo."""
import os
import shutil
import tempfile

from harness import BASE, Apache, configtest
from wsclient import BINARY, TEXT, WS, handshake_request, read_http_response, ws_next_close

IN_LOCATION = "<Location /cfgtest>\n  SetHandler wsbridge\n  {}\n</Location>\n"


def assert_refused(directive_line, name, value=None, where="location"):
    conf = IN_LOCATION.format(directive_line) if where == "location" else directive_line + "\n"
    ok, out = configtest(conf)
    assert not ok, f"`{directive_line}` ({where}) was accepted by apache2 -t:\n{out}"
    assert name in out, f"`{directive_line}`: message does not name {name}:\n{out}"
    assert "Invalid command" not in out, f"`{directive_line}`: directive unknown:\n{out}"
    if value is not None:
        assert value in out, f"`{directive_line}`: message does not show the value {value!r}:\n{out}"


def test_bad_app():
    assert_refused("WSBridgeApp nope", "WSBridgeApp", "nope")


def test_bad_max_message_size():
    for value in ("12X", "-5", "0", "2G", "abc", "1.5M", "16MB", "99999999999999999999"):
        assert_refused(f"WSBridgeMaxMessageSize {value}", "WSBridgeMaxMessageSize", value)


def test_bad_max_frame_and_queue_sizes():
    assert_refused("WSBridgeMaxFrameSize 12X", "WSBridgeMaxFrameSize", "12X")
    assert_refused("WSBridgeMaxQueuedBytes -1", "WSBridgeMaxQueuedBytes", "-1")


def test_bad_allow_origin():
    for value in ("not-an-origin", "ftp://a.example", "https://a.example/path", "https://",
                  "a.example"):
        assert_refused(f"WSBridgeAllowOrigin {value}", "WSBridgeAllowOrigin", value)


def test_bad_subprotocol_token():
    assert_refused('WSBridgeSubprotocols "bad token"', "WSBridgeSubprotocols", "bad token")
    assert_refused('WSBridgeSubprotocols chat.v1 "a,b"', "WSBridgeSubprotocols", "a,b")


def test_bad_durations():
    assert_refused("WSBridgePingInterval abc", "WSBridgePingInterval", "abc")
    assert_refused("WSBridgePingInterval -1", "WSBridgePingInterval", "-1")
    assert_refused("WSBridgeIdleTimeout abc", "WSBridgeIdleTimeout", "abc")


def test_bad_hub_writes_and_batch_window():
    assert_refused("WSBridgeHubWrites maybe", "WSBridgeHubWrites")  # Apache: "must be On or Off"
    assert_refused("WSBridgeDeflate 1", "WSBridgeDeflate")
    for value in ("abc", "-1", "200ms", "1s", "us", "-5us", "5.5us", "100001us", "xus"):
        assert_refused(f"WSBridgeBatchWindow {value}", "WSBridgeBatchWindow", value, where="server")
    for value in ("0", "257", "x"):
        assert_refused(f"WSBridgeBatchWindow 1ms {value}", "WSBridgeBatchWindow", value, where="server")
    # one hub per child serves every endpoint: refused inside <Location>
    assert_refused("WSBridgeBatchWindow 1ms", "WSBridgeBatchWindow", where="location")


def test_bad_rate_limit():
    for value in ("0", "-1", "abc", "10 0"):
        assert_refused(f"WSBridgeRateLimit {value}", "WSBridgeRateLimit")


def test_short_secret_refused_without_echoing_it():
    ok, out = configtest(IN_LOCATION.format("WSBridgeSecret Tiny5ecret"))
    assert not ok, out
    assert "WSBridgeSecret" in out, out
    assert "Tiny5ecret" not in out, f"the error message repeats the secret:\n{out}"


def test_bad_max_connections():
    assert_refused("WSBridgeMaxConnections 0", "WSBridgeMaxConnections", where="server")
    assert_refused("WSBridgeMaxConnections abc", "WSBridgeMaxConnections", where="server")
    # a per-server setting: refused inside <Location> even with a good value
    assert_refused("WSBridgeMaxConnections 100", "WSBridgeMaxConnections", where="location")
    assert_refused("WSBridgeMaxConnections 0", "WSBridgeMaxConnections", where="location")


def test_bad_reserve_workers():
    for value in ("-1", "abc", "1.5", "100001"):
        assert_refused(f"WSBridgeReserveWorkers {value}", "WSBridgeReserveWorkers", value, where="server")
    # the reserve is a property of the child processes: server-wide only
    assert_refused("WSBridgeReserveWorkers 4", "WSBridgeReserveWorkers", where="location")
    assert_refused("<VirtualHost 127.0.0.1:1>\nWSBridgeReserveWorkers 4\n</VirtualHost>",
                   "WSBridgeReserveWorkers", where="server")


def test_capacity_logged_and_too_large_max_connections_warned():
    # 2 children x 8 threads, MaxRequestWorkers 16: reserve 4 per child.
    a = Apache(extra_conf="WSBridgeMaxConnections 10000\n", children=2, threads=8, max_workers=16).start()
    try:
        assert a.wait_log("WebSockets up to 4 per child, 8 in all"), a.error_log()[-2000:]
        assert a.wait_log("WSBridgeMaxConnections 10000 is more than this MPM can carry"), a.error_log()[-2000:]
    finally:
        a.stop()
    a = Apache(extra_conf="WSBridgeReserveWorkers 0\n", children=2, threads=8, max_workers=16).start()
    try:
        assert a.wait_log("WebSockets up to 8 per child, 16 in all"), a.error_log()[-2000:]
        assert "is more than this MPM can carry" not in a.error_log()
    finally:
        a.stop()


def test_good_values_pass():
    lines = [
        "WSBridgeApp echo", "WSBridgeApp chat", "WSBridgeApp ECHO",
        "WSBridgeMaxMessageSize 125", "WSBridgeMaxMessageSize 64K", "WSBridgeMaxMessageSize 16M",
        "WSBridgeMaxMessageSize 1G", "WSBridgeMaxMessageSize 1048576", "WSBridgeMaxMessageSize 1k",
        "WSBridgeMaxFrameSize 64K", "WSBridgeMaxQueuedBytes 4M",
        "WSBridgeAllowOrigin *", "WSBridgeAllowOrigin https://a.example http://b.example:8080",
        "WSBridgeSubprotocols chat.v2 chat.v1", 'WSBridgeSubprotocols "x-my_proto~1"',
        "WSBridgePingInterval 0", "WSBridgePingInterval 30", "WSBridgePingInterval 500ms",
        "WSBridgeIdleTimeout 0", "WSBridgeIdleTimeout 75",
        "WSBridgeRateLimit 20 40", "WSBridgeRateLimit off", "WSBridgeRateLimit 0.5",
        "WSBridgeSecret 0123456789abcdef", "WSBridgeSecret none",
        "WSBridgeHubWrites off", "WSBridgeHubWrites On", "WSBridgeDeflate Off", "WSBridgeDeflate on",
    ]
    conf = ("WSBridgeMaxConnections 100\nWSBridgeBatchWindow 5\nWSBridgeBatchWindow 250us\n"
            "WSBridgeBatchWindow 100000us\nWSBridgeBatchWindow 2ms 1\nWSBridgeBatchWindow 0\n"
            "WSBridgeReserveWorkers 0\nWSBridgeReserveWorkers 10\n") + "".join(
        f"<Location /good{i}>\n  SetHandler wsbridge\n  {line}\n</Location>\n"
        for i, line in enumerate(lines))
    ok, out = configtest(conf)
    if not ok:  # find the line(s) to name in the failure
        bad = [line for line in lines if not configtest(IN_LOCATION.format(line))[0]]
        raise AssertionError(f"good values refused: {bad}\n{out}")


# --- .htaccess ---------------------------------------------------------------

def make_htaccess_tree():
    root = tempfile.mkdtemp(prefix="htdocs-", dir=BASE)
    os.chmod(root, 0o755)
    files = {
        "ws": "SetHandler wsbridge\nWSBridgeApp echo\n",
        "small": "SetHandler wsbridge\nWSBridgeApp echo\nWSBridgeMaxMessageSize 1K\n",
        "bad": "SetHandler wsbridge\nWSBridgeMaxMessageSize 12X\n",
        "perserver": "SetHandler wsbridge\nWSBridgeMaxConnections 5\n",
        "nooverride": "SetHandler wsbridge\nWSBridgeApp echo\n",
    }
    for sub, text in files.items():
        os.makedirs(os.path.join(root, sub))
        os.chmod(os.path.join(root, sub), 0o755)
        path = os.path.join(root, sub, ".htaccess")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
    conf = f"""
<IfModule !alias_module>
  LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
</IfModule>
Alias /hta "{root}"
<Directory "{root}">
  Require all granted
  AllowOverride FileInfo
</Directory>
<Directory "{root}/nooverride">
  AllowOverride None
</Directory>
"""
    return root, conf


def test_htaccess_enables_endpoint():
    root, conf = make_htaccess_tree()
    try:
        with Apache(extra_conf=conf) as a:
            w = WS(a.port, path="/hta/ws/echo")
            try:
                w.send(TEXT, "via .htaccess")
                assert w.recv_message() == (TEXT, b"via .htaccess")
            finally:
                w.shutdown()

            # a limit set in .htaccess applies
            w = WS(a.port, path="/hta/small/x")
            try:
                w.send(BINARY, b"a" * 1024)
                assert w.recv_message() == (BINARY, b"a" * 1024)
                w.send(BINARY, b"a" * 1025)
                code, _ = ws_next_close(w)
                assert code == 1009, f".htaccess WSBridgeMaxMessageSize 1K: close {code}"
            finally:
                w.shutdown()

            # a bad value in .htaccess: 500, and the error log names the directive
            raw, _ = handshake_request(path="/hta/bad/x")
            status, headers, body, sock = read_http_response(a.port, raw)
            sock.close()
            assert status == 500, (status, body)
            assert a.wait_log("WSBridgeMaxMessageSize"), a.error_log()[-2000:]

            # a per-server directive is not allowed in .htaccess
            raw, _ = handshake_request(path="/hta/perserver/x")
            status, headers, body, sock = read_http_response(a.port, raw)
            sock.close()
            assert status == 500, (status, body)
            assert a.wait_log("WSBridgeMaxConnections"), a.error_log()[-2000:]

            # AllowOverride None: the .htaccess is not read, no WebSocket
            raw, _ = handshake_request(path="/hta/nooverride/x")
            status, headers, body, sock = read_http_response(a.port, raw)
            sock.close()
            assert status != 101, (status, headers)
    finally:
        shutil.rmtree(root, ignore_errors=True)
