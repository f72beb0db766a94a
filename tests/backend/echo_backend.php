<?php
// A WebSocket-over-HTTP backend written for Pushpin (GRIP), in plain PHP, used
// unchanged behind Pushpin and behind mod_wsbridge so both can be compared.
// Every request is appended as one JSON line to $WSB_BACKEND_LOG (if set).
//
// Client text commands: "sub:<ch>" / "unsub:<ch>" (GRIP subscribe), "meta:<k>=<v>"
// (Set-Meta-<k>), "meta?" (the Meta-* headers this request carried, as JSON),
// "close" (CLOSE 4000 "bye"), "detach", "keepalive:<s>", "unprefixed",
// "fail:500|ctype|malformed|sleep=<s>"; anything else is echoed.
// Query: ?reject=<status> refuses the OPEN with that status and a body.

function parse_events(string $body): ?array {
    $events = [];
    $at = 0;
    $n = strlen($body);
    while ($at < $n) {
        $eol = strpos($body, "\r\n", $at);
        if ($eol === false) return null;
        $line = substr($body, $at, $eol - $at);
        $at = $eol + 2;
        $sp = strpos($line, ' ');
        if ($sp === false) { $events[] = [$line, '']; continue; }
        $hex = substr($line, $sp + 1);
        if (!ctype_xdigit($hex)) return null;
        $len = hexdec($hex);
        if ($at + $len + 2 > $n || substr($body, $at + $len, 2) !== "\r\n") return null;
        $events[] = [substr($line, 0, $sp), substr($body, $at, $len)];
        $at += $len + 2;
    }
    return $events;
}

function ev(string $name, ?string $data = null): string {
    return ($data === null || $data === '') ? "$name\r\n" : $name . ' ' . dechex(strlen($data)) . "\r\n$data\r\n";
}

$headers = [];
foreach (getallheaders() as $k => $v) $headers[] = [$k, $v];
$body = file_get_contents('php://input');
$log = getenv('WSB_BACKEND_LOG');
if ($log) {
    // query/get: the query string as this script sees it, raw and parsed
    $line = json_encode(['method' => $_SERVER['REQUEST_METHOD'], 'uri' => $_SERVER['REQUEST_URI'],
        'query' => $_SERVER['QUERY_STRING'] ?? '', 'get' => (object)$_GET,
        'headers' => $headers, 'body_b64' => base64_encode($body), 'time' => microtime(true)]);
    file_put_contents($log, $line . "\n", FILE_APPEND | LOCK_EX);
}

$events = parse_events($body);
if ($events === null) {
    http_response_code(400);
    header('Content-Type: text/plain');
    echo "malformed events\n";
    exit;
}
$meta = [];
foreach ($headers as [$k, $v]) if (stripos($k, 'Meta-') === 0) $meta[substr($k, 5)] = $v;

$out = '';
$ctype = 'application/websocket-events';
foreach ($events as [$name, $data]) {
    if ($name === 'OPEN') {
        if (isset($_GET['reject'])) {
            http_response_code((int)$_GET['reject']);
            header('Content-Type: text/plain');
            header('X-Rejected-By: echo_backend');
            echo "rejected by backend\n";
            exit;
        }
        header('Sec-WebSocket-Extensions: grip');
        if (isset($_SERVER['HTTP_SEC_WEBSOCKET_PROTOCOL']))
            header('Sec-WebSocket-Protocol: ' . trim(explode(',', $_SERVER['HTTP_SEC_WEBSOCKET_PROTOCOL'])[0]));
        $out .= ev('OPEN');
    } elseif ($name === 'TEXT') {
        if (strncmp($data, 'sub:', 4) === 0) {
            $out .= ev('TEXT', 'c:' . json_encode(['type' => 'subscribe', 'channel' => substr($data, 4)]));
        } elseif (strncmp($data, 'unsub:', 6) === 0) {
            $out .= ev('TEXT', 'c:' . json_encode(['type' => 'unsubscribe', 'channel' => substr($data, 6)]));
        } elseif (strncmp($data, 'meta:', 5) === 0 && strpos($data, '=') !== false) {
            [$k, $v] = explode('=', substr($data, 5), 2);
            header("Set-Meta-$k: $v");
        } elseif ($data === 'meta?') {
            $out .= ev('TEXT', 'm:' . json_encode((object)$meta));
        } elseif ($data === 'close') {
            $out .= ev('CLOSE', pack('n', 4000) . 'bye');
        } elseif ($data === 'detach') {
            $out .= ev('TEXT', 'c:{"type":"detach"}');
        } elseif (strncmp($data, 'keepalive:', 10) === 0) {
            $out .= ev('TEXT', 'c:' . json_encode(['type' => 'keep-alive', 'content' => 'ka',
                'timeout' => (int)substr($data, 10)]));
        } elseif ($data === 'unprefixed') {
            $out .= ev('TEXT', 'no prefix') . ev('TEXT', 'm:after unprefixed');
        } elseif ($data === 'fail:500') {
            http_response_code(500);
            echo "backend error\n";
            exit;
        } elseif ($data === 'fail:ctype') {
            $ctype = 'text/plain';
            $out .= ev('TEXT', 'm:wrong content type');
        } elseif ($data === 'fail:malformed') {
            $out .= "TEXT zz\r\nnot hex\r\n";
        } elseif (strncmp($data, 'fail:sleep=', 11) === 0) {
            sleep((int)substr($data, 11));
            $out .= ev('TEXT', 'm:slept');
        } else {
            $out .= ev('TEXT', 'm:' . $data);
        }
    } elseif ($name === 'BINARY') {
        $out .= ev('BINARY', 'm:' . $data);
    } elseif ($name === 'PING') {
        $out .= ev('PONG', $data);  // Pushpin does not answer pings itself
    } elseif ($name === 'CLOSE') {
        $out .= ev('CLOSE', $data);  // acknowledge with the client's code
    }
}
header('Content-Type: ' . $ctype);
echo $out;
