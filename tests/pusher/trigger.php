<?php
// Triggers an event through the Pusher HTTP API the way pusher-php-server
// signs it, with nothing but PHP (the README shows the same lines).
// Usage: php trigger.php CHANNEL EVENT JSON_DATA  (env: PUSHER_HOST, PUSHER_PORT,
// PUSHER_APP_ID, PUSHER_APP_KEY, PUSHER_APP_SECRET). Prints the status and body.
[$_, $channel, $event, $data] = $argv + [null, null, null, null];
$id = getenv('PUSHER_APP_ID'); $key = getenv('PUSHER_APP_KEY'); $secret = getenv('PUSHER_APP_SECRET');
$base = 'http://' . getenv('PUSHER_HOST') . ':' . getenv('PUSHER_PORT');

$body = json_encode(['name' => $event, 'channels' => [$channel], 'data' => $data]);
$path = "/apps/$id/events";
$q = ['auth_key' => $key, 'auth_timestamp' => time(), 'auth_version' => '1.0', 'body_md5' => md5($body)];
ksort($q);
$qs = urldecode(http_build_query($q));
$q['auth_signature'] = hash_hmac('sha256', "POST\n$path\n$qs", $secret);
$ctx = stream_context_create(['http' => ['method' => 'POST', 'content' => $body, 'ignore_errors' => true,
    'header' => "Content-Type: application/json\r\n"]]);
$answer = file_get_contents("$base$path?" . http_build_query($q), false, $ctx);
echo explode(' ', $http_response_header[0])[1], ' ', $answer, "\n";
