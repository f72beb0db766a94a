// One WebSocket to the chat endpoint that comes back by itself.
//
// States: "idle" (not started or stopped), "connecting" (first attempt),
// "live" (the server's welcome arrived), "reconnecting" (lost; a retry is
// scheduled or under way). Events: "state" {state, retryAt, attempt},
// "frame" (one parsed JSON object), "close" {code, reason, wasLive}.
//
// Retries use exponential backoff with jitter so that all the pages a
// restarting server dropped do not come back in the same millisecond.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const GOING_AWAY_MIN_MS = 100;    // 1001 "going away": a graceful restart
const GOING_AWAY_SPREAD_MS = 650;
const STABLE_AFTER_MS = 10000;   // a connection this old resets the backoff
const WELCOME_TIMEOUT_MS = 10000;

export class ChatConnection extends EventTarget {
  constructor() {
    super();
    this.url = null;
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.retryAt = 0;
    this.liveSince = 0;
    this.generation = 0; // increments with every welcome
    this._retryTimer = 0;
    this._welcomeTimer = 0;
    window.addEventListener("online", () => {
      if (this.state === "reconnecting") this.retryNow();
    });
  }

  connect(url) {
    this.stop();
    this.url = url;
    this.attempt = 0;
    this._open("connecting");
  }

  // Stops for good (until connect() again): no more retries.
  stop() {
    clearTimeout(this._retryTimer);
    clearTimeout(this._welcomeTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "bye");
    this._setState("idle");
  }

  retryNow() {
    if (!this.url || this.state === "live") return;
    clearTimeout(this._retryTimer);
    if (this.ws) return; // an attempt is already under way
    this._open("reconnecting");
  }

  // Drops the current connection and reconnects (e.g. after history-lost).
  reconnect() {
    if (this.ws) this.ws.close(4000, "reconnect");
  }

  get isLive() {
    return this.state === "live" && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  send(obj) {
    if (!this.isLive) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  _open(state) {
    this._setState(state);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error("cannot open WebSocket", err);
      this._scheduleRetry(1006);
      return;
    }
    this.ws = ws;
    let wasLive = false;
    this._welcomeTimer = setTimeout(() => {
      if (this.ws === ws && !wasLive) ws.close(4001, "no welcome");
    }, WELCOME_TIMEOUT_MS);

    ws.addEventListener("message", (e) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        console.warn("ignoring a frame that is not JSON", e.data);
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if (frame.type === "welcome" && !wasLive) {
        wasLive = true;
        clearTimeout(this._welcomeTimer);
        this.liveSince = Date.now();
        this.generation++;
        this._setState("live");
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    });

    ws.addEventListener("close", (e) => {
      if (this.ws !== ws) return; // replaced or stopped on purpose
      this.ws = null;
      clearTimeout(this._welcomeTimer);
      this.dispatchEvent(new CustomEvent("close", {
        detail: { code: e.code, reason: e.reason, wasLive },
      }));
      if (wasLive && Date.now() - this.liveSince >= STABLE_AFTER_MS) this.attempt = 0;
      this._scheduleRetry(e.code);
    });
  }

  _scheduleRetry(code) {
    let delay;
    if (code === 1001 && this.attempt === 0) {
      // Going away: the server restarts gracefully and is back at once.
      // Spread the whole crowd of pages over a few hundred milliseconds.
      delay = GOING_AWAY_MIN_MS + Math.random() * GOING_AWAY_SPREAD_MS;
    } else {
      const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
      delay = cap / 2 + Math.random() * cap / 2; // "equal jitter"
    }
    delay = Math.round(delay);
    this.attempt++;
    this.retryAt = Date.now() + delay;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._open("reconnecting"), delay);
    this._setState("reconnecting");
  }

  _setState(state) {
    const changed = state !== this.state;
    this.state = state;
    if (changed || state === "reconnecting") {
      this.dispatchEvent(new CustomEvent("state", {
        detail: { state, retryAt: this.retryAt, attempt: this.attempt },
      }));
    }
  }
}
