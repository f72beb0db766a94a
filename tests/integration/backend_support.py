"""What the WSBridgeApp backend suites (test_backend*.py) share: the Apache
config that serves tests/backend/echo_backend.php at /ws/tb through php-fpm,
and the check of a Grip-Sig token (HS256 JWT, docs/backend.md)."""
import base64
import hashlib
import hmac
import json
import os

from harness import ROOT

BACKEND_DIR = os.path.join(ROOT, "tests", "backend")


def echo_backend_conf(*directives):
    """mod_alias serving tests/backend at /tb/, and /ws/tb a backend
    WebSocket on /tb/echo_backend.php with directives (one a line) of its own."""
    inner = "".join(f"  {d}\n" for d in directives)
    return f"""
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
Alias /tb/ "{BACKEND_DIR}/"
<Directory "{BACKEND_DIR}">
  Require all granted
</Directory>
<Location /ws/tb>
  SetHandler wsbridge
  WSBridgeApp backend
  WSBridgeBackend /tb/echo_backend.php
{inner}</Location>
"""


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def grip_sig(token, key):
    """Fails unless token's HMAC-SHA256 signature verifies with key; returns
    (header, claims), decoded, for the caller's own checks of them."""
    head, claims, sig = token.split(".")
    want = hmac.new(key.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(want, b64url_decode(sig)), "Grip-Sig signature does not verify"
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(claims))
