<?php
// A Pusher webhook receiver as an app would write one (the check the pusher
// server libraries make): the body signed with the app secret, the key
// named. Each request appends one JSON line to $WSB_WEBHOOK_LOG: the body,
// whether the signature held, and the request's method and host.
$secret = getenv('WSB_WEBHOOK_SECRET');
$key = getenv('WSB_WEBHOOK_KEY');
$body = file_get_contents('php://input');
$sig = $_SERVER['HTTP_X_PUSHER_SIGNATURE'] ?? '';
$ok = ($_SERVER['HTTP_X_PUSHER_KEY'] ?? '') === $key && hash_equals(hash_hmac('sha256', $body, $secret), $sig);
$line = json_encode(['ok' => $ok, 'method' => $_SERVER['REQUEST_METHOD'], 'host' => $_SERVER['HTTP_HOST'] ?? '',
                     'body' => $body]);
file_put_contents(getenv('WSB_WEBHOOK_LOG'), $line . "\n", FILE_APPEND | LOCK_EX);
if (!$ok) {
    http_response_code(401);
    echo "bad signature\n";
    exit;
}
echo "ok\n";
