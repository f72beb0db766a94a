// The Node.js peer of scripts/bench-compare.sh: the broadcast hub people
// run beside Apache today (Apache proxies to it with mod_proxy_wstunnel).
// Every text frame a client sends goes to every connected client, the
// sender included: the broadcast loop of ws's README, as such hubs are
// written (ws frames the message once per client, a small cost next to the
// per-socket write).
//
//   node ws-hub.js PORT        (needs `ws` on NODE_PATH or in node_modules)
'use strict';
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || 18600);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 1 << 20,
  clientTracking: true,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const c of wss.clients) {
      if (c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
    }
  });
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`ws-hub listening on 127.0.0.1:${port} (pid ${process.pid})`));
process.on('SIGTERM', () => process.exit(0));
