// Reads the page's JSON configuration block and builds the WebSocket URL.

const DEFAULTS = Object.freeze({
  path: "/ws/chat",
  defaultRoom: "lobby",
  maxTextBytes: 4096,
  // An unacknowledged message is resent with its cid after each reconnect,
  // and marked failed (with Retry) after this long or this many reconnects.
  sendTimeoutMs: 30000,
  maxResendReconnects: 5,
});

export function readConfig(doc = document) {
  const el = doc.getElementById("chat-config");
  let given = {};
  if (el) {
    try {
      given = JSON.parse(el.textContent) || {};
    } catch (err) {
      console.warn("chat-config is not valid JSON; using defaults", err);
    }
  }
  return { ...DEFAULTS, ...given };
}

// ws:// on an http page, wss:// on an https page, same host; a full
// ws:// or wss:// URL in `path` is used as it is.
export function socketUrl(config, name, loc = window.location) {
  let url;
  if (/^wss?:\/\//i.test(config.path)) {
    url = new URL(config.path);
  } else {
    url = new URL(config.path, loc.href);
    url.protocol = loc.protocol === "https:" ? "wss:" : "ws:";
  }
  if (name) url.searchParams.set("name", name);
  return url.toString();
}
