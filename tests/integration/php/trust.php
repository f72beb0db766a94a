<?php
// Answers OPEN, then tells the client whether this request came through the
// bridge: the WSBRIDGE variable is set by mod_wsbridge on its sub-requests
// only; a header a client sends ("WSBRIDGE: 1") becomes HTTP_WSBRIDGE.
$bridged = isset($_SERVER['WSBRIDGE']) && $_SERVER['WSBRIDGE'] === '1' ? '1' : '0';
$msg = "m:bridged=$bridged";
header('Content-Type: application/websocket-events');
header('Sec-WebSocket-Extensions: grip');
echo "OPEN\r\n", 'TEXT ', dechex(strlen($msg)), "\r\n", $msg, "\r\n";
