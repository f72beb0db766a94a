// One conversation: a room (events ordered by seq) or a direct-message
// thread with one person (events in arrival order; directs have no seq).

const MAX_EVENTS = 1000;
let pendingIds = 0;

// A client message id (docs/chat-protocol.md, "Message ids"): the server
// publishes a message once per cid, so a resend after a reconnect is safe.
export function newCid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Conversation {
  constructor(kind, name) {
    this.kind = kind;          // "room" | "dm"
    this.name = name;          // room name, or the other person's user name
    this.id = `${kind}:${name}`;
    this.events = [];
    this.keys = new Set();
    this.pending = [];         // messages typed here that the server has not echoed yet
    this.notices = [];         // local lines: "older messages are not available", ...
    this.unread = 0;
    // Rooms only.
    this.lastSeq = 0;          // largest seq seen: what `since` resumes from
    this.bus = null;           // the id of the bus that numbered lastSeq (welcome's `bus`)
    this.busSent = null;       // the bus sent with the pending join's since
    this.members = [];         // everybody, or above the server's presence limit the first names
    this.count = 0;            // members in the room (the server's count when truncated)
    this.truncated = false;    // a large room: `members` lists only the first names
    this.me = null;            // my name in this room (may be `Ann#2`)
    this.joinState = "idle";   // idle | joining | joined | offline
    this.sinceSent = null;
  }

  // How many are in the room; large rooms send the count, not every name.
  get memberCount() {
    return this.truncated ? this.count : this.members.length;
  }

  // A key that identifies an event: seq alone is not enough because several
  // leave events can share one seq (a whole Apache process went away).
  static keyOf(ev) {
    if (ev.type === "system") return `${ev.seq}|${ev.event}|${ev.name}`;
    if (ev.type === "message") return `${ev.seq}|m`;
    if (ev.type === "direct" && typeof ev.cid === "string") return `d|${ev.from}|${ev.cid}`;
    return null;
  }

  // Adds an event; returns its index, or -1 when it is a duplicate (the
  // same seq, or a direct with the same sender and cid: the server's answer
  // to a resend is the original).
  add(ev) {
    if (this.kind === "dm" || typeof ev.seq !== "number") {
      const key = Conversation.keyOf(ev);
      if (key) {
        if (this.keys.has(key)) return -1;
        this.keys.add(key);
      }
      this.events.push(ev);
      this._trim();
      return this.events.length - 1;
    }
    const key = Conversation.keyOf(ev);
    if (this.keys.has(key)) return -1;
    this.keys.add(key);
    if (ev.seq > this.lastSeq) this.lastSeq = ev.seq;
    let i = this.events.length;
    while (i > 0 && typeof this.events[i - 1].seq === "number" && this.events[i - 1].seq > ev.seq) i--;
    this.events.splice(i, 0, ev);
    const trimmed = this._trim();
    return i - trimmed;
  }

  // Forget everything (the server lost our place, or restarted from scratch).
  reset() {
    this.events = [];
    this.keys.clear();
    this.notices = [];
    this.lastSeq = 0;
  }

  // The server restarted from scratch and counts seqs from 1 again: keep
  // what is on screen, draw a line, and start counting again after it.
  markRestart(text) {
    this.keys.clear();
    this.lastSeq = 0;
    this.sinceSent = null;
    this.add({ type: "marker", kind: "restart", text, ts: Date.now() });
  }

  // A message typed here, shown as "sending…" until the server's event with
  // its cid arrives. createdAt and reconnects bound how long it is resent;
  // bus is the bus of its last send (a cid is remembered there only).
  addPending(text, to) {
    const p = {
      id: ++pendingIds, cid: newCid(), text, to, state: "queued", reason: "", generation: 0,
      createdAt: Date.now(), reconnects: 0, bus: null, unconfirmed: false,
    };
    this.pending.push(p);
    return p;
  }

  removePending(p) {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
  }

  // The first pending message with this text that went to the server: the
  // echo of our own message confirms it.
  matchPending(text) {
    return this.pending.find((p) => p.state === "sent" && p.text === text) || null;
  }

  // The pending message with this cid, whatever its state (a message
  // marked failed may still have arrived: its event replaces it).
  matchCid(cid) {
    return this.pending.find((p) => p.cid === cid) || null;
  }

  _trim() {
    const extra = this.events.length - MAX_EVENTS;
    if (extra <= 0) return 0;
    for (const ev of this.events.splice(0, extra)) {
      const key = Conversation.keyOf(ev);
      if (key) this.keys.delete(key);
    }
    return extra;
  }
}
