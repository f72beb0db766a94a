<?php
// A live poll: the WebSocket backend behind <Location /ws/php> (WSBridgeApp backend).
//
// mod_wsbridge POSTs every event of every WebSocket connection here (Pushpin's
// WebSocket-over-HTTP format, see docs/backend.md) and sends our answer's events
// to the client. Nothing runs between requests: state lives in a JSON file, the
// bridge keeps the subscriptions (GRIP channel "poll") and a per-connection
// value for us (Set-Meta-Voted -> Meta-Voted on every later request).

const QUESTION = 'How do you add live updates to a PHP app today?';
const OPTIONS = ['polling' => 'AJAX polling', 'daemon' => 'A separate WebSocket server',
                 'hosted' => 'A hosted push service', 'none' => "I don't, yet"];
const CHANNEL = 'poll';

// Only the bridge sets WSBRIDGE (a client's "WSBRIDGE:" header would be HTTP_WSBRIDGE).
if (($_SERVER['WSBRIDGE'] ?? '') !== '1') {
    http_response_code(403);
    header('Content-Type: text/plain');
    exit("This is the WebSocket backend of /ws/php; only mod_wsbridge may call it.\n");
}

// Body: "NAME\r\n" or "NAME <hex length>\r\n<data>\r\n", repeated. [[name, data], ...] or null.
function parse_events(string $body): ?array {
    $events = [];
    for ($at = 0; $at < strlen($body);) {
        $eol = strpos($body, "\r\n", $at);
        if ($eol === false) return null;
        $line = substr($body, $at, $eol - $at);
        $at = $eol + 2;
        if (!str_contains($line, ' ')) { $events[] = [$line, '']; continue; }
        [$name, $hex] = explode(' ', $line, 2);
        $len = ctype_xdigit($hex) ? hexdec($hex) : -1;
        if ($len < 0 || substr($body, $at + $len, 2) !== "\r\n") return null;
        $events[] = [$name, substr($body, $at, $len)];
        $at += $len + 2;
    }
    return $events;
}

function event(string $name, string $data = ''): string {
    return $data === '' ? "$name\r\n" : "$name " . dechex(strlen($data)) . "\r\n$data\r\n";
}
// With GRIP on, "m:" = a message for this client, "c:" = an instruction for the bridge.
function message(array $msg): string { return event('TEXT', 'm:' . json_encode($msg)); }
function control(array $ctl): string { return event('TEXT', 'c:' . json_encode($ctl)); }

// The tally, read (or changed, when $vote is given) under a lock: php-fpm runs
// requests in parallel, one per connection event.
function tally(?string $vote = null): array {
    $file = getenv('POLL_FILE') ?: sys_get_temp_dir() . '/wsbridge-poll.json';
    $fp = fopen($file, 'c+') ?: throw new RuntimeException("poll: cannot open $file");
    flock($fp, $vote === null ? LOCK_SH : LOCK_EX);
    $saved = json_decode(stream_get_contents($fp), true) ?: [];
    $votes = [];
    foreach (OPTIONS as $id => $label) $votes[$id] = (int)($saved['votes'][$id] ?? 0);
    $version = (int)($saved['version'] ?? 0);
    if ($vote !== null) {
        $votes[$vote]++;
        $version++;
        ftruncate($fp, 0);
        rewind($fp);
        fwrite($fp, json_encode(['votes' => $votes, 'version' => $version]));
        fflush($fp);
    }
    flock($fp, LOCK_UN);
    fclose($fp);
    // "version" lets a page ignore an older tally that arrives after a newer one.
    return ['type' => 'tally', 'votes' => $votes, 'total' => array_sum($votes), 'version' => $version];
}

// To every subscriber of the channel, this connection included: a GRIP publish
// to this server's /ws/publish (127.0.0.1 only). The port: from the client's Host
// header, which the bridge passes on (SERVER_PORT says 80 in its sub-requests when
// ServerName has no port). In production, put the publish URL in your configuration.
function publish(array $msg): void {
    $item = ['channel' => CHANNEL, 'formats' => ['ws-message' => ['content' => json_encode($msg)]]];
    // Back to this server the way the client came (https for wss://, also
    // over HTTP/2); the loopback publish does not check the certificate.
    $https = ($_SERVER['REQUEST_SCHEME'] ?? 'http') === 'https';
    $ctx = stream_context_create(['http' => ['method' => 'POST', 'timeout' => 5, 'ignore_errors' => true,
        'header' => "Content-Type: application/json\r\n", 'content' => json_encode(['items' => [$item]])],
        'ssl' => ['verify_peer' => false, 'verify_peer_name' => false]]);
    $port = parse_url('http://' . ($_SERVER['HTTP_HOST'] ?? ''), PHP_URL_PORT) ?: $_SERVER['SERVER_PORT'];
    $url = ($https ? 'https' : 'http') . '://127.0.0.1:' . (int)$port . '/ws/publish';
    if (@file_get_contents($url, false, $ctx) !== "Published\n") error_log("poll: publish to $url failed");
}

function error_msg(string $code, string $text): string {
    return message(['type' => 'error', 'code' => $code, 'message' => $text]);
}

$events = parse_events(file_get_contents('php://input'));
if ($events === null) {
    http_response_code(400);  // the bridge closes the client with 1011 and logs it
    exit;
}
$voted = $_SERVER['HTTP_META_VOTED'] ?? '';  // set by an earlier answer of ours on this connection
$out = '';
foreach ($events as [$name, $data]) {
    if ($name === 'OPEN') {
        // Accept, turn GRIP on, join the channel, send the question and the current tally.
        header('Sec-WebSocket-Extensions: grip');
        $options = array_map(fn($id, $label) => ['id' => $id, 'label' => $label], array_keys(OPTIONS), OPTIONS);
        $out .= event('OPEN') . control(['type' => 'subscribe', 'channel' => CHANNEL])
              . message(['type' => 'poll', 'question' => QUESTION, 'options' => $options] + tally());
    } elseif ($name === 'TEXT') {
        // The page sends {"type":"vote","option":"<id>"}; anything else gets an error, to this client only.
        $msg = json_decode($data, true);
        if (!is_array($msg) || ($msg['type'] ?? null) !== 'vote') {
            $out .= error_msg('bad-message', 'Send {"type":"vote","option":"<id>"}.');
        } elseif (!is_string($msg['option'] ?? null) || !isset(OPTIONS[$msg['option']])) {
            $out .= error_msg('unknown-option', 'No such option.');
        } elseif ($voted !== '') {
            $out .= error_msg('already-voted', 'You already voted on this connection.');
        } else {
            $voted = $msg['option'];  // several events can come in one request
            header("Set-Meta-Voted: $voted");
            publish(tally($voted));
            $out .= message(['type' => 'voted', 'option' => $voted]);
        }
    } elseif ($name === 'BINARY') {
        $out .= error_msg('bad-message', 'Send text (JSON).');
    } elseif ($name === 'PING') {
        $out .= event('PONG', $data);   // Pushpin-style backends answer pings themselves
    } elseif ($name === 'CLOSE') {
        $out .= event('CLOSE', $data);  // the client closes: agree with its code
    }                                   // DISCONNECT: nothing to clean up
}
header('Content-Type: application/websocket-events');
echo $out;
