"""Pusher webhooks (WSBridgePusherWebhook) from a real Apache with two
children to real receivers: a Python http.server on loopback (an http://
URL) and a PHP script through php-fpm (a local path, sent to the server's
own listener). Every POST's signature is checked; each occupancy and
membership transition must arrive exactly once whichever children the
sockets live in; client events, cache misses and the retry after a 500 are
checked as they arrive."""
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chatclient import status_json
from harness import BASE, ROOT, Apache, free_port, no_child_crash
from wsclient import WS

THREADS = 12  # per child (2 children); see clients_in_two_children
APP_ID, APP_KEY, APP_SECRET = "hookapp", "hookkey", "hook-secret-0123456789abcdef"
PHP_ID, PHP_KEY, PHP_SECRET = "phpapp", "phpkey", "php-secret-0123456789abcdefgh"
PHP_DIR = os.path.join(ROOT, "tests", "integration", "php")


class Receiver:
    """Records every webhook POST; answers 500 to the next `fail` of them.
    With cert/key it speaks https (the handshake on accept)."""

    def __init__(self, cert=None, key=None):
        self.posts = []  # dicts: path, key, signature, body, answered
        self.fail = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    code = 500 if outer.fail > 0 else 200
                    if outer.fail > 0:
                        outer.fail -= 1
                    outer.posts.append({"path": self.path, "key": self.headers.get("X-Pusher-Key"),
                                        "signature": self.headers.get("X-Pusher-Signature"),
                                        "type": self.headers.get("Content-Type"),
                                        "body": body, "answered": code})
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self):
        """Every event of every POST answered 200, in arrival order."""
        with self.lock:
            posts = list(self.posts)
        out = []
        for p in posts:
            if p["answered"] == 200:
                out.extend(json.loads(p["body"])["events"])
        return out


class Env:
    apache = None
    receiver = None
    php_log = None


def setup_module():
    os.makedirs(BASE, exist_ok=True)
    Env.receiver = Receiver()
    fd, Env.php_log = tempfile.mkstemp(prefix="webhooks-", suffix=".log", dir=BASE)
    os.close(fd)
    os.chmod(Env.php_log, 0o666)
    conf = f"""
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
Alias /tp/ "{PHP_DIR}/"
<Directory "{PHP_DIR}">
  Require all granted
</Directory>
WSBridgePusherApp {APP_ID} {APP_KEY} {APP_SECRET}
WSBridgePusherWebhook {APP_ID} http://127.0.0.1:{Env.receiver.port}/hooks?app=1
WSBridgePusherApp {PHP_ID} {PHP_KEY} {PHP_SECRET}
WSBridgePusherWebhook {PHP_ID} /tp/pusher_webhook.php channel_occupied client_event
# No reserve: a child whose workers all hold WebSockets stops accepting, which
# clients_in_two_children relies on to reach the other child.
WSBridgeReserveWorkers 0
"""
    Env.apache = Apache(extra_conf=conf, children=2, threads=THREADS,
                        env={"PHP": "1", "WSB_WEBHOOK_LOG": Env.php_log, "WSB_WEBHOOK_KEY": PHP_KEY,
                             "WSB_WEBHOOK_SECRET": PHP_SECRET}).start()


def teardown_module():
    if Env.apache:
        Env.apache.stop()
    if Env.receiver:
        Env.receiver.stop()


# A minimal Pusher client on the raw WebSocket client.
class Client:
    def __init__(self, key=APP_KEY, port=None):
        self.ws = WS(port or Env.apache.port, path=f"/app/{key}?protocol=7&client=test&version=1")
        msg = self.next("pusher:connection_established")
        self.socket_id = json.loads(msg["data"])["socket_id"]

    def next(self, event, channel=None, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            _, payload = self.ws.recv_message(timeout=max(0.05, deadline - time.time()))
            msg = json.loads(payload)
            if msg.get("event") == event and (channel is None or msg.get("channel") == channel):
                return msg

    def send(self, obj):
        self.ws.send_text(json.dumps(obj))

    def subscribe(self, channel, user_id=None, secret=APP_SECRET, key=APP_KEY):
        data = {"channel": channel}
        if channel.startswith("presence-"):
            cd = json.dumps({"user_id": user_id, "user_info": {"name": user_id}})
            sig = hmac.new(secret.encode(), f"{self.socket_id}:{channel}:{cd}".encode(), hashlib.sha256).hexdigest()
            data.update(auth=f"{key}:{sig}", channel_data=cd)
        elif channel.startswith("private-"):
            sig = hmac.new(secret.encode(), f"{self.socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
            data["auth"] = f"{key}:{sig}"
        self.send({"event": "pusher:subscribe", "data": data})
        return self.next("pusher_internal:subscription_succeeded", channel)

    def unsubscribe(self, channel):
        self.send({"event": "pusher:unsubscribe", "data": {"channel": channel}})

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def process_of(client):
    return client.socket_id.split(".")[0]


def clients_in_two_children(n=2, key=APP_KEY):
    """n connections in each of two different children. The MPM picks the
    child, and mpm_event may hand every accept to one child while it has an
    idle worker; so a connection to a child that has its n already is held
    open (a filler) until both groups are complete. With no worker reserve
    (see setup_module) a child whose THREADS workers all hold WebSockets stops
    accepting, so the other child must take the next one: complete within
    2 x THREADS connections whatever the MPM does."""
    by_child, fillers = {}, []
    try:
        for _ in range(2 * THREADS + 2 * n):
            c = Client(key)
            group = by_child.setdefault(process_of(c), [])
            if len(group) >= n:
                fillers.append(c)
                continue
            group.append(c)
            full = [g for g in by_child.values() if len(g) >= n]
            if len(full) >= 2:
                keep = full[0] + full[1]
                for g in by_child.values():
                    fillers.extend(x for x in g if x not in keep)
                return full[0], full[1]
        for g in by_child.values():
            fillers.extend(g)
    finally:
        for x in fillers:
            x.close()
    raise AssertionError("the connections did not spread over two children")


def wait_for(pred, timeout=15.0, what="webhook"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {what} in {timeout}s: {Env.receiver.events()}")


def for_channel(channel):
    return [e for e in Env.receiver.events() if e.get("channel") == channel]


def test_every_post_is_signed_and_well_formed():
    c = Client()
    ch = f"sig-{time.time_ns()}"
    c.subscribe(ch)
    wait_for(lambda: for_channel(ch))
    c.close()
    wait_for(lambda: len(for_channel(ch)) == 2)
    with Env.receiver.lock:
        posts = list(Env.receiver.posts)
    assert posts
    for p in posts:
        assert p["path"] == "/hooks?app=1", p
        assert p["key"] == APP_KEY, p
        assert p["type"] == "application/json", p
        want = hmac.new(APP_SECRET.encode(), p["body"], hashlib.sha256).hexdigest()
        assert p["signature"] == want, p
        body = json.loads(p["body"])
        assert set(body) == {"time_ms", "events"}, body
        assert abs(body["time_ms"] / 1000 - time.time()) < 120, body
        assert body["events"], body
    assert for_channel(ch) == [{"name": "channel_occupied", "channel": ch},
                               {"name": "channel_vacated", "channel": ch}]


def test_occupancy_and_members_once_across_children():
    (a1, a2), (b1, b2) = clients_in_two_children(2)
    ch = f"presence-room-{time.time_ns()}"
    try:
        a1.subscribe(ch, "u1")
        b1.subscribe(ch, "u1")  # the same user in the other child: no member_added
        b2.subscribe(ch, "u2")
        a2.subscribe(ch, "u2")
        wait_for(lambda: len(for_channel(ch)) >= 3)
        b1.close()  # u1 stays (a1)
        a2.unsubscribe(ch)  # u2 stays (b2)
        time.sleep(1.0)
        a1.unsubscribe(ch)  # u1 gone
        b2.close()  # u2 gone, the channel empty
        wait_for(lambda: any(e["name"] == "channel_vacated" for e in for_channel(ch)))
        time.sleep(1.5)  # a duplicate from another child would have come by now
        names = [(e["name"], e.get("user_id")) for e in for_channel(ch)]
        assert sorted(names, key=str) == sorted([
            ("channel_occupied", None), ("member_added", "u1"), ("member_added", "u2"),
            ("member_removed", "u1"), ("member_removed", "u2"), ("channel_vacated", None)], key=str), names
        # Each child sends its own: across children the order of arrival is
        # not the order of the transitions (Pusher makes no promise either).
    finally:
        for c in (a1, a2, b1, b2):
            c.close()


def test_client_event_carries_event_data_socket_and_user():
    (a,), (b,) = clients_in_two_children(1)
    priv = f"private-chat-{time.time_ns()}"
    pres = f"presence-chat-{time.time_ns()}"
    try:
        a.subscribe(priv)
        b.subscribe(priv)
        a.subscribe(pres, "alice")
        b.subscribe(pres, "bob")
        a.send({"event": "client-typing", "channel": priv, "data": {"x": 1, "s": "é\""}})
        got = b.next("client-typing", priv)
        assert json.loads(got["data"]) == {"x": 1, "s": "é\""}, got
        b.send({"event": "client-hello", "channel": pres, "data": {"hi": True}})
        a.next("client-hello", pres)
        wait_for(lambda: [e for e in for_channel(priv) if e["name"] == "client_event"] and
                 [e for e in for_channel(pres) if e["name"] == "client_event"])
        time.sleep(1.0)
        evs = [e for e in for_channel(priv) if e["name"] == "client_event"]
        assert len(evs) == 1, evs
        e = evs[0]
        assert set(e) == {"name", "channel", "event", "data", "socket_id"}, e
        assert (e["event"], e["socket_id"]) == ("client-typing", a.socket_id), e
        assert isinstance(e["data"], str) and json.loads(e["data"]) == {"x": 1, "s": "é\""}, e
        evs = [e for e in for_channel(pres) if e["name"] == "client_event"]
        assert len(evs) == 1, evs
        assert (evs[0]["event"], evs[0]["socket_id"], evs[0]["user_id"]) == ("client-hello", b.socket_id, "bob"), evs
    finally:
        a.close()
        b.close()


def test_cache_miss_once_per_subscribe_without_a_cached_event():
    c = Client()
    ch = f"cache-news-{time.time_ns()}"
    try:
        c.subscribe(ch)
        c.next("pusher:cache_miss", ch)
        wait_for(lambda: [e for e in for_channel(ch) if e["name"] == "cache_miss"])
        time.sleep(1.0)
        assert [e["name"] for e in for_channel(ch)].count("cache_miss") == 1, for_channel(ch)
    finally:
        c.close()


def quiet(seconds=1.0, timeout=15.0):
    """Waits until no webhook has come for `seconds`."""
    deadline = time.time() + timeout
    last, since = -1, time.time()
    while time.time() < deadline:
        with Env.receiver.lock:
            n = len(Env.receiver.posts)
        if n != last:
            last, since = n, time.time()
        elif time.time() - since >= seconds:
            return
        time.sleep(0.05)
    raise AssertionError("the webhooks never went quiet")


def test_a_500_is_retried_with_the_same_signed_body():
    quiet()
    with Env.receiver.lock:
        Env.receiver.fail = 1
        before = len(Env.receiver.posts)
    c = Client()
    ch = f"retry-{time.time_ns()}"
    try:
        c.subscribe(ch)
        wait_for(lambda: for_channel(ch), timeout=20, what="retried webhook")
        with Env.receiver.lock:
            posts = Env.receiver.posts[before:]
        failed = [p for p in posts if p["answered"] == 500]
        assert len(failed) == 1, posts
        again = [p for p in posts if p["answered"] == 200 and p["body"] == failed[0]["body"]]
        assert len(again) == 1 and again[0]["signature"] == failed[0]["signature"], posts
        assert Env.apache.wait_log("answered 500", timeout=5)
        assert for_channel(ch) == [{"name": "channel_occupied", "channel": ch}]
    finally:
        c.close()


def webhook_figures(polls=80):
    """{pid: the "webhooks" object of the status JSON} of every child that
    answered one of `polls` requests (each child counts its own POSTs)."""
    seen = {}
    for _ in range(polls):
        s = status_json(Env.apache.port)
        if "webhooks" in s:
            seen[s["pid"]] = s["webhooks"]
    return seen


def test_status_counts_this_childs_webhooks():
    """The status JSON's "webhooks" (shown on the status page as the
    answering child's figures): over the children, the deltas of
    sent_events/sent_batches and failed_attempts are what the receiver got."""
    quiet()
    before = webhook_figures()
    for pid, w in before.items():
        assert w["scope"] == "child" and w["targets"] == 2, (pid, w)
    with Env.receiver.lock:
        Env.receiver.fail = 1
        first = len(Env.receiver.posts)
    c = Client()
    ch = f"status-{time.time_ns()}"
    c.subscribe(ch)
    wait_for(lambda: for_channel(ch), timeout=20, what="retried webhook")
    c.close()
    wait_for(lambda: len(for_channel(ch)) >= 2, timeout=20, what="channel_vacated")
    quiet()
    with Env.receiver.lock:
        posts = Env.receiver.posts[first:]
    ok_events = sum(len(json.loads(p["body"])["events"]) for p in posts if p["answered"] == 200)
    ok_posts = sum(1 for p in posts if p["answered"] == 200)
    failed = sum(1 for p in posts if p["answered"] != 200)
    assert failed == 1 and ok_events >= 2, posts

    def deltas():
        after = webhook_figures()
        zero = {"sent_events": 0, "sent_batches": 0, "failed_attempts": 0, "dropped_events": 0}
        return {k: sum(w[k] - before.get(pid, zero)[k] for pid, w in after.items()) for k in zero}, after
    got, after = deltas()
    if got["sent_events"] != ok_events:  # a child that did not answer yet: once more
        got, after = deltas()
    assert got == {"sent_events": ok_events, "sent_batches": ok_posts, "failed_attempts": 1, "dropped_events": 0}, \
        (got, ok_events, ok_posts, before, after)


def php_events():
    out = []
    with open(Env.php_log) as f:
        for line in f:
            rec = json.loads(line)
            assert rec["ok"], rec  # the signature held
            assert rec["method"] == "POST", rec
            out.extend(json.loads(rec["body"])["events"])
    return out


def test_local_path_reaches_php_with_only_the_chosen_events():
    (a,), (b,) = clients_in_two_children(1, key=PHP_KEY)
    ch = f"private-php-{time.time_ns()}"
    try:
        a.subscribe(ch, secret=PHP_SECRET, key=PHP_KEY)
        b.subscribe(ch, secret=PHP_SECRET, key=PHP_KEY)
        a.send({"event": "client-ping", "channel": ch, "data": "{\"n\":7}"})
        b.next("client-ping", ch)
        deadline = time.time() + 15
        while time.time() < deadline and len([e for e in php_events() if e["channel"] == ch]) < 2:
            time.sleep(0.1)
        a.close()
        b.close()
        time.sleep(1.5)  # channel_vacated is not asked for: it must not come
        evs = [e for e in php_events() if e["channel"] == ch]
        assert [e["name"] for e in evs] == ["channel_occupied", "client_event"], evs
        assert evs[1]["socket_id"] == a.socket_id and evs[1]["data"] == "{\"n\":7}", evs
        assert all(e["channel"] != ch for e in Env.receiver.events())  # the other app's hook did not get it
    finally:
        a.close()
        b.close()


def test_a_graceful_restart_reports_the_vacated_channels_of_its_children():
    quiet()
    ch = f"restart-{time.time_ns()}"
    c = Client()
    c.subscribe(ch)
    wait_for(lambda: for_channel(ch))
    old = set(Env.apache.child_pids())
    Env.apache.graceful()  # the children close their WebSockets (1001) and exit
    try:
        c.ws.expect_close(timeout=15)
    except Exception:
        pass
    wait_for(lambda: len(for_channel(ch)) >= 2, timeout=20, what="channel_vacated after the restart")
    time.sleep(1.0)
    assert for_channel(ch) == [{"name": "channel_occupied", "channel": ch},
                               {"name": "channel_vacated", "channel": ch}], for_channel(ch)
    deadline = time.time() + 15
    while time.time() < deadline and old & set(Env.apache.child_pids()):
        time.sleep(0.1)


def test_no_child_crashed():
    no_child_crash(Env.apache)


def test_config_errors_are_precise():
    cases = [
        ("WSBridgePusherWebhook nosuchapp http://127.0.0.1:9/x", "no WSBridgePusherApp with id 'nosuchapp'"),
        (f"WSBridgePusherApp w1 k1 {APP_SECRET}\nWSBridgePusherWebhook w1 ftp://x/",
         "use http://host[:port]/path, https://host[:port]/path"),
        ("WSBridgePusherWebhookCA /nonexistent/ca.pem",
         "WSBridgePusherWebhookCA: cannot load CA certificates from /nonexistent/ca.pem"),
        (f"WSBridgePusherWebhookCA {os.path.abspath(__file__)}", "WSBridgePusherWebhookCA: cannot load CA certificates"),
        (f"WSBridgePusherApp w1 k1 {APP_SECRET}\nWSBridgePusherWebhook w1 http://h:99999/", "port must be"),
        (f"WSBridgePusherApp w1 k1 {APP_SECRET}\nWSBridgePusherWebhook w1 /x member_joined", "unknown event 'member_joined'"),
        (f"WSBridgePusherApp w1 k1 {APP_SECRET}\nWSBridgePusherWebhook w1", "use WSBridgePusherWebhook <app-id>"),
    ]
    for conf, want in cases:
        a = Apache(extra_conf=conf)
        ok, out = a.configtest()
        assert not ok and want in out, (conf, out)
    a = Apache(extra_conf=f"WSBridgePusherApp w1 k1 {APP_SECRET}\n"
                          f"WSBridgePusherWebhook w1 http://[::1]:{free_port()}/h channel_vacated cache_miss")
    ok, out = a.configtest()
    assert ok, out


def test_a_named_target_is_looked_up_and_a_bad_name_fails_with_its_name():
    """`localhost` goes through the system resolver (/etc/hosts) inside a
    child; a name that does not resolve fails each attempt with a log line
    naming the host (an answer saying no such name, or no answer from the
    DNS server within the POST's 5 s, whichever this machine gives), and the
    other target of the same child still gets its POST."""
    rx = Receiver()
    bad = "no-such-webhook-host.invalid"
    a = Apache(extra_conf=f"WSBridgePusherApp n1 nkey {APP_SECRET}\n"
                          f"WSBridgePusherWebhook n1 http://{bad}/h channel_occupied\n"
                          f"WSBridgePusherWebhook n1 http://localhost:{rx.port}/named channel_occupied\n",
               children=1, threads=4).start()
    c = None
    try:
        c = Client(key="nkey", port=a.port)
        ch = f"named-{time.time_ns()}"
        c.subscribe(ch)

        def arrived():
            with rx.lock:
                return [p for p in rx.posts if p["path"] == "/named" and ch.encode() in p["body"]]
        deadline = time.time() + 20
        while time.time() < deadline and not arrived():
            time.sleep(0.05)
        assert arrived(), rx.posts
        assert a.wait_log(f"Pusher webhook http://{bad}/h: ", timeout=15), a.error_log()[-2000:]
        line = [x for x in a.error_log().splitlines() if f"http://{bad}/h: " in x][0]
        assert f"cannot resolve {bad}: " in line or f"name lookup of {bad} timed out" in line, line
        assert "(attempt 1); sending again later" in line, line
        no_child_crash(a)
    finally:
        if c:
            c.close()
        a.stop()
        rx.stop()


def make_cert(d, name, san):
    """A self-signed certificate (its own CA) for san, e.g. IP:127.0.0.1."""
    crt, key = os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                    "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=30)
    return crt, key


def test_https_targets_are_verified_against_the_configured_cas():
    """WSBridgePusherWebhookCA names the receivers' certificates (self-signed:
    each is its own CA). A receiver whose certificate names it, by address or
    by name, gets the signed POST; one whose certificate names another host,
    and one whose certificate is not in the file, get nothing: each attempt
    fails with a log line that says why, and is retried. The CA file is in a
    directory only root may read (mkdtemp: 0700), as mod_ssl's files may
    be: the parent loads it with the configuration, the children (another
    user) inherit it, also after a graceful restart."""
    d = tempfile.mkdtemp(prefix="webhook-tls-", dir=BASE)
    good = make_cert(d, "good", "IP:127.0.0.1,DNS:localhost")
    other = make_cert(d, "other", "DNS:other.example")
    stranger = make_cert(d, "stranger", "IP:127.0.0.1")
    ca = os.path.join(d, "cas.pem")
    with open(ca, "w") as f:
        for crt in (good[0], other[0]):
            f.write(open(crt).read())
    rx_good, rx_other, rx_stranger = Receiver(*good), Receiver(*other), Receiver(*stranger)
    a = Apache(extra_conf=f"WSBridgePusherApp t1 tkey {APP_SECRET}\n"
                          f"WSBridgePusherWebhookCA {ca}\n"
                          f"WSBridgePusherWebhook t1 https://127.0.0.1:{rx_good.port}/by-ip channel_occupied\n"
                          f"WSBridgePusherWebhook t1 https://localhost:{rx_good.port}/by-name channel_occupied\n"
                          f"WSBridgePusherWebhook t1 https://127.0.0.1:{rx_other.port}/other channel_occupied\n"
                          f"WSBridgePusherWebhook t1 https://127.0.0.1:{rx_stranger.port}/stranger channel_occupied\n",
               children=1, threads=4).start()
    c = None
    try:
        c = Client(key="tkey", port=a.port)
        ch = f"tls-{time.time_ns()}"
        c.subscribe(ch)

        def posts(path):
            with rx_good.lock:
                return [p for p in rx_good.posts if p["path"] == path and ch.encode() in p["body"]]
        deadline = time.time() + 15
        while time.time() < deadline and not (posts("/by-ip") and posts("/by-name")):
            time.sleep(0.05)
        for path in ("/by-ip", "/by-name"):
            got = posts(path)
            assert len(got) == 1, (path, rx_good.posts, a.error_log()[-3000:])
            want = hmac.new(APP_SECRET.encode(), got[0]["body"], hashlib.sha256).hexdigest()
            assert got[0]["key"] == "tkey" and got[0]["signature"] == want, got[0]
            assert json.loads(got[0]["body"])["events"] == [{"name": "channel_occupied", "channel": ch}]
        for url, why in ((f"https://127.0.0.1:{rx_other.port}/other",
                          "TLS: the certificate of 127.0.0.1 is not trusted: IP address mismatch"),
                         (f"https://127.0.0.1:{rx_stranger.port}/stranger",
                          "TLS: the certificate of 127.0.0.1 is not trusted: self-signed certificate")):
            assert a.wait_log(f"Pusher webhook {url}: ", timeout=15), a.error_log()[-2000:]
            line = [x for x in a.error_log().splitlines() if f"Pusher webhook {url}: " in x][0]
            assert why in line and "(attempt 1); sending again later" in line, line
        assert not rx_other.posts and not rx_stranger.posts, (rx_other.posts, rx_stranger.posts)
        c.close()
        c = None
        a.graceful()
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                c = Client(key="tkey", port=a.port)
                break
            except (OSError, AssertionError):
                time.sleep(0.2)
        ch = f"tls-after-restart-{time.time_ns()}"
        c.subscribe(ch)
        deadline = time.time() + 15
        while time.time() < deadline and not posts("/by-ip"):
            time.sleep(0.05)
        assert len(posts("/by-ip")) == 1, (rx_good.posts, a.error_log()[-3000:])
        no_child_crash(a)
    finally:
        if c:
            c.close()
        a.stop()
        for rx in (rx_good, rx_other, rx_stranger):
            rx.stop()


def test_kill_9_of_a_child_is_reported_once_by_the_child_that_notices():
    # Last in the module: the killed child is in the error log from now on.
    import signal
    quiet()
    (victim,), (survivor,) = clients_in_two_children(1)
    ch = f"presence-kill-{time.time_ns()}"
    try:
        victim.subscribe(ch, "ghost")
        survivor.subscribe(ch, "alive")
        wait_for(lambda: len(for_channel(ch)) >= 3)
        os.kill(int(process_of(victim)) // 10**9, signal.SIGKILL)
        survivor.next("pusher_internal:member_removed", ch, timeout=20)
        wait_for(lambda: [e for e in for_channel(ch) if e["name"] == "member_removed"], timeout=20)
        survivor.unsubscribe(ch)
        wait_for(lambda: [e for e in for_channel(ch) if e["name"] == "channel_vacated"])
        time.sleep(1.5)
        names = sorted((e["name"], e.get("user_id") or "") for e in for_channel(ch))
        assert names == sorted([("channel_occupied", ""), ("member_added", "ghost"), ("member_added", "alive"),
                                ("member_removed", "ghost"), ("member_removed", "alive"),
                                ("channel_vacated", "")]), names
    finally:
        victim.close()
        survivor.close()
