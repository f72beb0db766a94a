// The chat protocol (docs/chat-protocol.md) on top of ChatConnection:
// rooms and their members, history and resume with `since`, direct
// messages, an outbox for messages typed while offline, server errors.
//
// Exactly once (docs/chat-protocol.md, "Message ids"): every message gets a
// cid and stays pending ("sending…") until the server's event with that cid
// arrives, live or in a history. After a reconnect, pending messages are sent
// again with the same cid (rooms: after the resumed history); the server
// publishes a cid once and answers a repeat with the original. Past
// sendTimeoutMs or maxResendReconnects a pending message is marked failed;
// Retry sends it again, still with its cid. A cid is remembered by the bus
// that took the message: one sent on a bus that is gone (the welcome names
// another bus: a hard restart) is not sent again but marked "not
// confirmed": the old bus may have published it just before the stop, and
// the new one could not tell a repeat. Retry is then the user's choice.
//
// Resume (docs/chat-protocol.md, "Resume after a reconnect"): every room
// remembers the largest seq it saw (lastSeq) and the id of the bus that numbered it
// (conv.bus, from the welcome's `bus`); a rejoin sends both. When the
// server's bus is another one (a hard restart), its seqs are a new count:
// the room keeps what is on screen, draws a line and counts again.
//
// The UI listens to "update" events: detail.kind is one of
//   state     connection state changed (detail.state, detail.retryAt)
//   welcome   the server greeted us (user name, rooms on the server)
//   rooms     the list of conversations changed
//   reset     conv's events must be drawn again (detail.conv)
//   event     a new event in conv (detail.conv, detail.ev, detail.index)
//   pending   conv's pending messages changed
//   members   conv's member list or count changed
//   error     the server refused something (detail.code, reason, room)
//   closed    the connection closed (detail.code, reason)

import { ChatConnection } from "./connection.js";
import { Conversation } from "./conversation.js";

const RESTART_TEXT = "The chat server restarted. Messages above this line are no longer kept on the server.";
const MESSAGE_ERRORS = new Set(["too-long", "bad-field", "rate-limited", "unavailable", "not-joined", "bad-cid"]);
const CHECK_PENDING_MS = 1000;

export class ChatClient extends EventTarget {
  constructor({ sendTimeoutMs = 30000, maxResendReconnects = 5 } = {}) {
    super();
    this.sendTimeoutMs = sendTimeoutMs;
    this.maxResendReconnects = maxResendReconnects;
    this.conn = new ChatConnection();
    this.name = "";            // the name we asked for
    this.me = "";              // our user name, from welcome
    this.bus = null;           // the server's bus id, from welcome (null: an older server)
    this.rooms = new Map();    // room name -> Conversation
    this.dms = new Map();      // peer user name -> Conversation
    this.serverRooms = [];     // [{room, members}] from welcome
    this.sentDirects = [];     // pending DMs awaiting echo or no-such-user, in order
    this.conn.addEventListener("state", (e) => this._onState(e.detail));
    this.conn.addEventListener("frame", (e) => this._onFrame(e.detail));
    this.conn.addEventListener("close", (e) => this._emit("closed", e.detail));
    this._pendingTimer = setInterval(() => this._expirePending(), CHECK_PENDING_MS);
  }

  get state() { return this.conn.state; }

  start(url, name) {
    this.name = name;
    this.conn.connect(url);
  }

  // Change the name: reconnect as somebody else, keeping rooms and places.
  restart(url, name) {
    this.name = name;
    for (const conv of this.rooms.values()) conv.me = null;
    this.conn.connect(url);
  }

  room(name) { return this.rooms.get(name) || null; }

  // Join (or re-join) a room; the conversation exists at once ("joining").
  join(name) {
    let conv = this.rooms.get(name);
    if (!conv) {
      conv = new Conversation("room", name);
      this.rooms.set(name, conv);
      this._emit("rooms");
    }
    if (conv.joinState === "joining" || conv.joinState === "joined") return conv;
    if (this.conn.isLive) this._sendJoin(conv);
    return conv;
  }

  leave(name) {
    const conv = this.rooms.get(name);
    if (!conv) return;
    this.rooms.delete(name);
    if (conv.joinState === "joining" || conv.joinState === "joined") {
      this.conn.send({ type: "leave", room: name });
    }
    this._emit("rooms");
  }

  dm(peer) {
    let conv = this.dms.get(peer);
    if (!conv) {
      conv = new Conversation("dm", peer);
      this.dms.set(peer, conv);
      this._emit("rooms");
    }
    return conv;
  }

  closeDm(peer) {
    if (this.dms.delete(peer)) this._emit("rooms");
  }

  // Sends a message into a conversation; it shows as pending until the
  // server echoes it. Offline, it waits in the outbox.
  say(conv, text) {
    const p = conv.addPending(text, conv.kind === "dm" ? conv.name : null);
    this._trySend(conv, p);
    this._emit("pending", { conv });
    return p;
  }

  // Sends a failed message again with the same cid: if the first copy did
  // arrive after all, the server answers with it instead of posting twice.
  retry(conv, p) {
    p.state = "queued";
    p.reason = "";
    p.unconfirmed = false;
    p.createdAt = Date.now();
    p.reconnects = 0;
    this._trySend(conv, p);
    this._emit("pending", { conv });
  }

  discard(conv, p) {
    conv.removePending(p);
    this._emit("pending", { conv });
  }

  _trySend(conv, p) {
    if (!this.conn.isLive) return;
    if (conv.kind === "room" && conv.joinState !== "joining" && conv.joinState !== "joined") return;
    const ok = conv.kind === "room"
      ? this.conn.send({ type: "message", room: conv.name, text: p.text, cid: p.cid })
      : this.conn.send({ type: "direct", to: conv.name, text: p.text, cid: p.cid });
    if (!ok) return;
    p.state = "sent";
    p.generation = this.conn.generation;
    p.bus = this.bus; // the bus that will remember its cid
    if (conv.kind === "dm") this.sentDirects.push({ conv, p });
  }

  _sendJoin(conv) {
    conv.sinceSent = conv.lastSeq > 0 ? conv.lastSeq : null;
    conv.joinState = "joining";
    conv.busSent = conv.sinceSent !== null ? conv.bus : null;
    const cmd = { type: "join", room: conv.name };
    if (this.name) cmd.name = this.name;
    if (conv.sinceSent !== null) cmd.since = conv.sinceSent;
    if (conv.busSent !== null) cmd.bus = conv.busSent;
    this.conn.send(cmd);
  }

  _flushOutbox(conv) {
    let changed = false;
    for (const p of conv.pending) {
      if (p.state === "queued") { this._trySend(conv, p); changed = true; }
    }
    if (changed) this._emit("pending", { conv });
  }

  // Messages sent on an earlier connection whose event never came: send
  // them again with their cid (the server drops a repeat and answers with
  // the original), unless they are past the bound.
  _resendUnacknowledged(conv) {
    let changed = false;
    for (const p of conv.pending) {
      if (p.state !== "sent" || p.generation >= this.conn.generation) continue;
      p.reconnects++;
      changed = true;
      if (p.bus !== null && this.bus !== null && p.bus !== this.bus) {
        // Sent on a bus that is gone: published there or not, nobody can
        // say, and this bus does not know its cid. Not sent again.
        p.state = "failed";
        p.unconfirmed = true;
        p.reason = "The chat server restarted before it confirmed this message; the others may have it already.";
        if (conv.kind === "dm") this.sentDirects = this.sentDirects.filter((s) => s.p !== p);
        continue;
      }
      if (this._pastBound(p)) {
        p.state = "failed";
        p.reason = "Not delivered: the connection kept dropping.";
        continue;
      }
      p.state = "queued";
      this._trySend(conv, p);
    }
    if (changed) this._emit("pending", { conv });
  }

  _pastBound(p) {
    return Date.now() - p.createdAt > this.sendTimeoutMs || p.reconnects > this.maxResendReconnects;
  }

  // Once a second: what is still pending past the bound is marked failed.
  _expirePending() {
    for (const conv of [...this.rooms.values(), ...this.dms.values()]) {
      let changed = false;
      for (const p of conv.pending) {
        if ((p.state === "sent" || p.state === "queued") && this._pastBound(p)) {
          p.state = "failed";
          p.reason = this.conn.isLive ? "No answer from the server." : "The server is unreachable.";
          if (conv.kind === "dm") this.sentDirects = this.sentDirects.filter((s) => s.p !== p);
          changed = true;
        }
      }
      if (changed) this._emit("pending", { conv });
    }
  }

  _onState(detail) {
    if (detail.state !== "live") {
      for (const conv of this.rooms.values()) {
        if (conv.joinState !== "idle") conv.joinState = "offline";
      }
      this.sentDirects = [];
    }
    this._emit("state", detail);
  }

  _onFrame(f) {
    switch (f.type) {
      case "welcome": return this._onWelcome(f);
      case "history": return this._onHistory(f);
      case "presence": return this._onPresence(f);
      case "message":
      case "system": return this._onRoomEvent(f);
      case "direct": return this._onDirect(f);
      case "error": return this._onError(f);
      default: return undefined; // unknown frames are ignored, as the protocol asks
    }
  }

  _onWelcome(f) {
    this.me = typeof f.you === "string" ? f.you : "";
    this.bus = typeof f.bus === "string" ? f.bus : null;
    this.serverRooms = Array.isArray(f.rooms) ? f.rooms : [];
    for (const conv of this.rooms.values()) {
      conv.joinState = "offline";
      this._sendJoin(conv);
      this._flushOutbox(conv);
    }
    for (const conv of this.dms.values()) {
      // Directs are not kept in any history: one sent just before the drop
      // may or may not have arrived. Its cid makes sending it again safe.
      this._resendUnacknowledged(conv);
      this._flushOutbox(conv);
      this._emit("pending", { conv });
    }
    this._emit("welcome");
    this._emit("rooms");
  }

  _onHistory(f) {
    const conv = this.rooms.get(f.room);
    if (!conv) return;
    const msgs = Array.isArray(f.messages) ? f.messages : [];
    const since = conv.sinceSent;
    let redraw = false;
    const busChanged = since !== null && conv.busSent !== null && this.bus !== null && conv.busSent !== this.bus;
    if (since !== null) {
      if (busChanged || msgs.some((m) => typeof m.seq === "number" && m.seq <= since)) {
        // Another bus (a hard restart), or an older server that ignored
        // `since`: it counts from 1 again.
        conv.markRestart(RESTART_TEXT);
        redraw = true;
      } else if (f.complete === false) {
        // Events after `since` are gone: start the view again, don't pretend.
        conv.reset();
        conv.notices.push({ kind: "gap", text: "Some messages were missed while you were away. Showing the latest ones." });
        redraw = true;
      }
    } else if (f.complete === false && conv.events.length === 0) {
      conv.notices.push({ kind: "older", text: "Older messages are not available." });
      redraw = true;
    }
    conv.bus = this.bus; // from here on this bus numbers the room's events
    let added = false;
    for (const m of msgs) {
      if ((m.type !== "message" && m.type !== "system") || conv.add(m) < 0) continue;
      added = true;
    }
    // On resume, our own message may have made it just before the drop:
    // the history has its event with our cid.
    for (const m of msgs) {
      if (m.type !== "message") continue;
      // Without a cid (an older server) only a resume can hold ours.
      if (typeof m.cid === "string" || (since !== null && conv.sinceSent !== null)) this._confirmOwn(conv, m, true);
    }
    if (redraw || added) this._emit("reset", { conv });
    // The others are sent again, after our join in the room's order.
    this._resendUnacknowledged(conv);
    this._emit("pending", { conv });
  }

  // Our own presence (it has `you`) right after our join, or again when
  // the server learned of members it had missed; in a room above the
  // server's presence limit also folded updates without `you`: the count,
  // and `members` only when the listed names changed (docs/chat-protocol.md).
  _onPresence(f) {
    const conv = this.rooms.get(f.room);
    if (!conv) return;
    const own = typeof f.you === "string";
    if (!own && conv.joinState !== "joined") return; // an update for a join still on its way
    if (Array.isArray(f.members)) conv.members = f.members.slice();
    else if (own) conv.members = [];
    conv.truncated = f.truncated === true;
    conv.count = typeof f.count === "number" ? f.count : conv.members.length;
    if (own) {
      conv.me = f.you;
      conv.joinState = "joined";
    }
    this._emit("members", { conv });
    if (own) this._emit("rooms");
  }

  _onRoomEvent(f) {
    const conv = this.rooms.get(f.room);
    if (!conv) return;
    // Our own join carries a seq not above `since`: the server counts
    // from 1 again, so our old seqs mean nothing any more.
    if (f.type === "system" && f.event === "join" && conv.joinState === "joining" &&
        conv.sinceSent !== null && typeof f.seq === "number" && f.seq <= conv.sinceSent) {
      conv.markRestart(RESTART_TEXT);
      this._emit("reset", { conv });
    }
    const index = conv.add(f);
    if (index < 0) {
      // Seen already (the server's answer to a resend is the original).
      if (f.type === "message") this._confirmOwn(conv, f, false);
      return;
    }
    // Above the presence limit the server sends no join/leave events of
    // others (only our own): the presence updates carry the count.
    if (f.type === "system" && conv.joinState === "joined" && !conv.truncated) {
      if (f.event === "join" && !conv.members.includes(f.name)) conv.members.push(f.name);
      if (f.event === "leave") conv.members = conv.members.filter((n) => n !== f.name);
      conv.count = conv.members.length;
      this._emit("members", { conv });
    }
    const own = f.type === "message" && this._confirmOwn(conv, f, false);
    this._emit("event", { conv, ev: f, index, own });
  }

  _confirmOwn(conv, m, quiet) {
    // A cid is ours when we made it (random UUIDs), whatever our name in
    // the room was then; messages without one are matched by text.
    let p = typeof m.cid === "string" ? conv.matchCid(m.cid) : null;
    if (!p && typeof m.cid !== "string") {
      if (m.from !== conv.me && m.from !== this.me) return false;
      p = conv.matchPending(m.text);
    }
    if (!p) return false;
    conv.removePending(p);
    if (!quiet) this._emit("pending", { conv });
    return true;
  }

  _onDirect(f) {
    if (typeof f.from !== "string" || typeof f.to !== "string") return;
    const mine = f.from === this.me;
    const peer = mine ? f.to : f.from;
    const conv = this.dm(peer);
    const ev = { ...f, mine };
    const index = conv.add(ev);
    let own = false;
    if (mine) {
      const p = typeof f.cid === "string" ? conv.matchCid(f.cid) : conv.matchPending(f.text);
      if (p) {
        conv.removePending(p);
        this.sentDirects = this.sentDirects.filter((s) => s.p !== p);
        own = true;
        this._emit("pending", { conv });
      }
    }
    if (index >= 0) this._emit("event", { conv, ev, index, own });
  }

  _onError(f) {
    const code = String(f.code || "error");
    const room = typeof f.room === "string" ? f.room : null;
    if (code === "already-joined") return; // we are in; nothing to do
    if (code === "history-lost") this.conn.reconnect();
    if (code === "not-joined" && room && this.rooms.has(room)) {
      const conv = this.rooms.get(room);
      this._failLastSent(conv, f.reason);
      conv.joinState = "offline";
      this._sendJoin(conv); // the server forgot us; come back where we were
    } else if (code === "no-such-user") {
      const sent = this.sentDirects.shift();
      if (sent) this._fail(sent.conv, sent.p, f.reason || "Nobody with that name is online.");
    } else if (code === "bad-room" || code === "too-many-rooms") {
      this._dropRefusedJoin(code, room);
    } else if (MESSAGE_ERRORS.has(code)) {
      const conv = room ? this.rooms.get(room) : this._lastSentConv();
      if (conv) this._failLastSent(conv, f.reason);
    }
    this._emit("error", { code, reason: String(f.reason || ""), room });
  }

  // The server refused a join: forget the room we had optimistically added.
  _dropRefusedJoin(code, room) {
    const joining = [...this.rooms.values()].filter((c) => c.joinState === "joining");
    let refused = [];
    if (room) refused = joining.filter((c) => c.name === room);
    else if (code === "bad-room") refused = joining.filter((c) => !/^[A-Za-z0-9._-]{1,64}$/.test(c.name));
    else refused = joining.slice(-1);
    for (const conv of refused) this.rooms.delete(conv.name);
    if (refused.length) this._emit("rooms");
  }

  _lastSentConv() {
    let best = null;
    let bestId = -1;
    for (const conv of [...this.rooms.values(), ...this.dms.values()]) {
      for (const p of conv.pending) {
        if (p.state === "sent" && p.id > bestId) { best = conv; bestId = p.id; }
      }
    }
    return best;
  }

  _failLastSent(conv, reason) {
    const sent = conv.pending.filter((p) => p.state === "sent");
    if (sent.length) this._fail(conv, sent[sent.length - 1], reason);
  }

  _fail(conv, p, reason) {
    p.state = "failed";
    p.reason = reason || "Not sent.";
    this._emit("pending", { conv });
  }

  _emit(kind, detail = {}) {
    this.dispatchEvent(new CustomEvent("update", { detail: { kind, ...detail } }));
  }
}
