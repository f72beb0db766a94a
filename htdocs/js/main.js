// The chat page: wires the protocol client to the DOM.

import { readConfig, socketUrl } from "./config.js";
import { ChatClient } from "./chat-client.js";
import { MessageList } from "./message-list.js";
import { Notifier } from "./notify.js";
import { HELP, parseCommand } from "./commands.js";
import { Composer } from "./composer.js";
import { byteLength, hueOf, initialOf, userNameProblem } from "./names.js";
import { renderDmList, renderMembers, renderOtherRooms, renderRoomList } from "./panels.js";
import { el } from "./render.js";

const $ = (id) => document.getElementById(id);
const config = readConfig();
const client = new ChatClient({ sendTimeoutMs: config.sendTimeoutMs, maxResendReconnects: config.maxResendReconnects });
const list = new MessageList($("scroller"), $("messages"), $("jump"));
const notify = new Notifier($("toasts"), $("announcer"));
const composer = new Composer({
  form: $("composer"),
  input: $("message-input"),
  label: $("message-label"),
  counter: $("byte-count"),
  maxBytes: config.maxTextBytes,
  onSubmit: (text) => submit(text),
});
const BANNER_DELAY_MS = 1500;
let current = null;
let bannerTimer = 0;
let countdownTimer = 0;

const store = {
  get(key, fallback) {
    try {
      const v = localStorage.getItem(`wsbridge.${key}`);
      return v === null ? fallback : JSON.parse(v);
    } catch { return fallback; }
  },
  set(key, value) {
    try { localStorage.setItem(`wsbridge.${key}`, JSON.stringify(value)); } catch { /* private mode */ }
  },
};

const listHandlers = {
  retry: (conv, p) => { client.retry(conv, p); composer.focus(); },
  discard: (conv, p) => { client.discard(conv, p); composer.focus(); },
};

// ---- start-up and the name screen ----

function boot() {
  const params = new URLSearchParams(location.search);
  const name = params.get("name") ?? store.get("name", "");
  const urlRoom = params.get("room");
  let rooms = store.get("rooms", []);
  if (!Array.isArray(rooms)) rooms = [];
  rooms = rooms.filter((r) => typeof r === "string" && r);
  if (urlRoom && !rooms.includes(urlRoom)) rooms.unshift(urlRoom);
  const wanted = urlRoom || store.get("current", null);
  $("start-room-input").value = urlRoom || rooms[0] || config.defaultRoom;
  if (name && !userNameProblem(name) && rooms.length) start(name, rooms, wanted);
  else showWelcome(name, false);
}

function showWelcome(name, renaming) {
  $("name-input").value = name || "";
  $("name-error").textContent = "";
  $("start-room-field").hidden = renaming;
  $("cancel-rename").hidden = !renaming;
  $("welcome").querySelector("h1").textContent = renaming ? "Change your name" : "Join the conversation";
  $("welcome").hidden = false;
  $("name-input").focus();
}

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  const problem = userNameProblem(name);
  if (problem) {
    $("name-error").textContent = problem;
    $("name-input").setAttribute("aria-invalid", "true");
    $("name-input").focus();
    return;
  }
  $("name-input").removeAttribute("aria-invalid");
  $("welcome").hidden = true;
  if (!$("cancel-rename").hidden) return rename(name);
  const room = $("start-room-input").value.trim().replace(/^#/, "") || config.defaultRoom;
  const saved = store.get("rooms", []);
  const rooms = [room, ...(Array.isArray(saved) ? saved.filter((r) => r !== room) : [])];
  start(name, rooms, room);
});

$("cancel-rename").addEventListener("click", () => { $("welcome").hidden = true; composer.focus(); });
$("identity").addEventListener("click", () => showWelcome(client.name, true));

function start(name, rooms, wanted) {
  store.set("name", name);
  for (const r of rooms) client.join(r);
  $("app").hidden = false;
  renderIdentity(name);
  show(client.room(wanted) || client.room(rooms[0]));
  client.start(socketUrl(config, name), name);
}

function rename(name) {
  store.set("name", name);
  renderIdentity(name);
  client.restart(socketUrl(config, name), name);
  composer.focus();
}

function renderIdentity(name) {
  $("identity-name").textContent = name;
  const a = $("identity-avatar");
  a.textContent = initialOf(name);
  a.style.setProperty("--hue", hueOf(name));
}

// ---- the conversation on screen ----

function show(conv) {
  current = conv || null;
  if (current) {
    current.unread = 0;
    if (current.kind === "room") store.set("current", current.name);
    list.show(current, meIn(current), listHandlers);
  } else {
    $("messages").replaceChildren(el("li", { class: "empty", "data-testid": "empty-state" },
      "You are not in any room. Join or create one in the sidebar."));
  }
  closeDrawers();
  renderHeader();
  renderNav();
  renderMemberPanel();
  renderComposer();
  updateTitle();
}

function meIn(conv) {
  return conv.kind === "room" ? (conv.me || client.name) : (client.me || client.name);
}

function alive(conv) {
  return conv && (client.rooms.get(conv.name) === conv || client.dms.get(conv.name) === conv);
}

function renderHeader() {
  const title = $("conv-title");
  const sub = $("conv-sub");
  if (!current) {
    title.replaceChildren("No room");
    sub.textContent = "";
    $("members-count").textContent = "";
    return;
  }
  const sigil = el("span", { class: "sigil", "aria-hidden": "true" }, current.kind === "room" ? "#" : "@");
  title.replaceChildren(sigil, current.name);
  if (current.kind === "dm") {
    sub.textContent = "Direct messages · not stored on the server";
    $("members-count").textContent = "";
    return;
  }
  const n = current.memberCount;
  sub.textContent = current.joinState === "joined"
    ? `${n.toLocaleString()} ${n === 1 ? "member" : "members"} online`
    : current.joinState === "joining" ? "Joining…" : "Waiting for the connection…";
  $("members-count").textContent = current.joinState === "joined" ? compactCount(n) : "";
}

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

// The badge on the members button: 12, 999, 1.2K, 10K.
function compactCount(n) {
  return n < 1000 ? String(n) : compact.format(n);
}

function renderNav() {
  const open = (conv) => { show(conv); composer.focus(); };
  renderRoomList($("room-list"), client, current, { open, leave: (conv) => leaveRoom(conv.name) });
  renderDmList($("dm-section"), $("dm-list"), client, current, { open, close: (conv) => client.closeDm(conv.name) });
  renderOtherRooms($("other-section"), $("other-list"), client, { join: joinRoom });
}

function renderMemberPanel() {
  renderMembers($("members-heading"), $("member-list"), $("members-hint"), client, current, { openDm });
}

function renderComposer() {
  const label = !current ? "Message" : current.kind === "room" ? `Message #${current.name}` : `Message ${current.name}`;
  composer.setTarget(label, !!current);
}

function updateTitle() {
  const unread = [...client.rooms.values(), ...client.dms.values()].reduce((n, c) => n + c.unread, 0);
  const where = current ? `${current.kind === "room" ? "#" : "@"}${current.name} · ` : "";
  document.title = `${unread ? `(${unread}) ` : ""}${where}Chat`;
}

function saveRooms() {
  store.set("rooms", [...client.rooms.keys()]);
}

function joinRoom(name) {
  const room = String(name).trim().replace(/^#/, "");
  if (!room) return;
  const conv = client.join(room);
  saveRooms();
  show(conv);
  composer.focus();
}

function leaveRoom(name) {
  client.leave(name);
  saveRooms();
}

function openDm(peer) {
  if (!peer || peer === client.me) return;
  show(client.dm(peer));
  composer.focus();
}

// ---- what the client reports ----

client.addEventListener("update", (e) => {
  const d = e.detail;
  switch (d.kind) {
    case "state": return renderConnection(d);
    case "welcome":
      list.setMe(current ? meIn(current) : client.me);
      return renderNav();
    case "rooms":
      if (current && !alive(current)) {
        show(client.rooms.values().next().value || client.dms.values().next().value);
      } else {
        renderNav();
        renderHeader();
      }
      return saveRooms();
    case "reset":
      if (d.conv === current) list.show(current, meIn(current), listHandlers, true);
      return undefined;
    case "event": return onEvent(d);
    case "pending":
      if (d.conv === current) list.renderPending(current);
      return undefined;
    case "members":
      if (d.conv === current) {
        list.setMe(meIn(current));
        renderMemberPanel();
        renderHeader();
      }
      return undefined;
    case "error":
      notify.serverError(d);
      if (d.code === "bad-name") showWelcome(client.name, true);
      return undefined;
    case "closed":
      if (d.code === 1008) notify.error("The server closed the connection.", d.reason || "policy violation", "1008");
      else if (d.code === 1013) notify.error("The server is overloaded; reconnecting.", d.reason, "1013");
      return undefined;
    default: return undefined;
  }
});

function onEvent({ conv, ev, index, own }) {
  if (conv === current) list.append(conv, ev, index, own);
  if (ev.type !== "message" && ev.type !== "direct") return;
  const mine = ev.type === "direct" ? ev.mine : own || ev.from === conv.me;
  if (mine) return;
  if (conv !== current || document.hidden) {
    conv.unread++;
    renderNav();
    updateTitle();
  }
  const where = conv.kind === "room" ? `in #${conv.name}` : "(direct message)";
  notify.announce(`${ev.from} ${where}: ${ev.text}`);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && current) {
    current.unread = 0;
    renderNav();
    updateTitle();
  }
});

// ---- connection state ----

const STATE_TEXT = { idle: "Offline", connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };

function renderConnection({ state, retryAt }) {
  const pill = $("conn");
  pill.dataset.state = state;
  pill.querySelector(".conn-text").textContent = STATE_TEXT[state] || state;
  $("app").classList.toggle("offline", state !== "live");
  clearInterval(countdownTimer);
  if (state === "live" || state === "idle") {
    clearTimeout(bannerTimer);
    bannerTimer = 0;
    $("banner").hidden = true;
  } else if (!bannerTimer && $("banner").hidden) {
    // A graceful restart is over in well under a second: only a longer
    // outage deserves the banner.
    bannerTimer = setTimeout(() => { $("banner").hidden = false; }, BANNER_DELAY_MS);
  }
  const tick = () => {
    const secs = Math.ceil((retryAt - Date.now()) / 1000);
    $("banner-text").textContent = state === "reconnecting" && secs > 0
      ? `Connection lost. Reconnecting in ${secs} s…`
      : state === "connecting" ? "Connecting to the chat server…" : "Connection lost. Reconnecting…";
  };
  tick();
  if (state === "reconnecting") countdownTimer = setInterval(tick, 500);
  renderHeader();
  renderMemberPanel();
  renderNav();
}

$("retry-now").addEventListener("click", () => { client.conn.retryNow(); composer.focus(); });

// ---- the composer ----

// Returns true when the input was used up (sent or run as a command).
function submit(text) {
  const cmd = parseCommand(text);
  if (!cmd || cmd.cmd === "say") return say(current, cmd ? cmd.text : text);
  switch (cmd.cmd) {
    case "join":
      if (!cmd.room) { notify.error("Which room?", "Usage: /join room-name"); return false; }
      joinRoom(cmd.room);
      return true;
    case "leave":
      if (cmd.room) leaveRoom(cmd.room.replace(/^#/, ""));
      else if (current?.kind === "room") leaveRoom(current.name);
      else if (current?.kind === "dm") client.closeDm(current.name);
      return true;
    case "msg": {
      const conv = client.dm(cmd.to);
      if (!say(conv, cmd.text)) return false;
      show(conv);
      return true;
    }
    case "name": {
      const problem = userNameProblem(cmd.name);
      if (problem) { notify.error("That name cannot be used.", problem); return false; }
      rename(cmd.name);
      return true;
    }
    case "help":
      notify.toast({ kind: "info", title: "Commands", lines: HELP });
      return true;
    case "usage":
      notify.error("Not quite.", `Usage: ${cmd.usage}`);
      return false;
    default:
      notify.error(`Unknown command ${cmd.name}.`, "Type /help for the list; start with // to send a message that begins with /.");
      return false;
  }
}

function say(conv, text) {
  if (!conv) { notify.error("Join a room first."); return false; }
  const n = byteLength(text);
  if (n > config.maxTextBytes) {
    notify.error("That message is too long.",
      `${n.toLocaleString()} bytes; the limit is ${config.maxTextBytes.toLocaleString()}. Shorten it or send it in parts.`, "too-long");
    return false;
  }
  client.say(conv, text);
  return true;
}

// ---- sidebar form and the narrow-screen drawers ----

$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("room-input").value;
  $("room-input").value = "";
  joinRoom(value);
});

function setDrawer(id, button, open) {
  $(id).classList.toggle("open", open);
  $(button).setAttribute("aria-expanded", String(open));
  const any = $("sidebar").classList.contains("open") || $("members").classList.contains("open");
  $("backdrop").hidden = !any;
}

function closeDrawers() {
  setDrawer("sidebar", "open-sidebar", false);
  setDrawer("members", "open-members", false);
}

$("open-sidebar").addEventListener("click", () => setDrawer("sidebar", "open-sidebar", !$("sidebar").classList.contains("open")));
$("open-members").addEventListener("click", () => setDrawer("members", "open-members", !$("members").classList.contains("open")));
$("backdrop").addEventListener("click", closeDrawers);
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  closeDrawers();
  if (!$("welcome").hidden && !$("cancel-rename").hidden) $("cancel-rename").click();
});

boot();
