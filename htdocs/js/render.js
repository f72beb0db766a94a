// DOM builders for the message list. Every piece of user text goes in
// through textContent (via el()), never through innerHTML.

import { hueOf, initialOf } from "./names.js";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });

// el("p", {class: "x", dataset: {seq: 1}}, "text", child) — strings become text nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "style") for (const [p, val] of Object.entries(v)) node.style.setProperty(p, val);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

export function avatar(name, extraClass = "") {
  return el("span", { class: `avatar ${extraClass}`.trim(), style: { "--hue": hueOf(name) }, "aria-hidden": "true" }, initialOf(name));
}

function timeEl(ts) {
  const d = new Date(typeof ts === "number" ? ts : Date.now());
  return el("time", { datetime: d.toISOString(), title: fullFmt.format(d) }, timeFmt.format(d));
}

function dayLabel(ts) {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return dayFmt.format(d);
}

function sameDay(a, b) {
  return new Date(a).toDateString() === new Date(b).toDateString();
}

// True when `ev` continues the previous message of the same author.
function continues(prev, ev) {
  return !!prev && prev.type === ev.type && ev.type !== "system" &&
    prev.from === ev.from && ev.ts - prev.ts < GROUP_WINDOW_MS && sameDay(prev.ts, ev.ts);
}

function messageNode(ev, me, cont) {
  const from = String(ev.from);
  const mine = ev.type === "direct" ? ev.mine : from === me;
  const classes = ["msg", cont ? "cont" : "", mine ? "mine" : "", ev.type === "direct" ? "dm" : ""].filter(Boolean).join(" ");
  const body = el("div", { class: "msg-body" });
  if (!cont) {
    body.append(el("div", { class: "msg-meta" },
      el("span", { class: "author", style: { "--hue": hueOf(from) }, "data-testid": "message-author" }, from),
      mine ? el("span", { class: "you-tag" }, "you") : null,
      timeEl(ev.ts)));
  }
  body.append(el("p", { class: "msg-text", "data-testid": "message-text" }, String(ev.text)));
  return el("li", {
    class: classes,
    "data-testid": "message",
    dataset: { seq: ev.seq ?? "", from, ts: ev.ts ?? "", cid: ev.cid ?? "" },
  },
  cont ? el("span", { class: "gutter-time", "aria-hidden": "true" }, timeEl(ev.ts)) : avatar(from),
  body);
}

function systemNode(ev, me) {
  const self = ev.name === me;
  const verb = ev.event === "join" ? "joined" : ev.event === "leave" ? "left" : String(ev.event);
  return el("li", {
    class: `sys sys-${ev.event === "join" ? "join" : "leave"}`,
    "data-testid": "system-line",
    dataset: { seq: ev.seq ?? "", event: ev.event, name: ev.name },
  },
  el("span", { class: "sys-icon", "aria-hidden": "true" }, ev.event === "join" ? "→" : "←"),
  el("span", { class: "sys-name", style: { "--hue": hueOf(String(ev.name)) } }, String(ev.name)),
  self ? " (you) " : " ",
  `${verb} `,
  timeEl(ev.ts));
}

export function eventNode(ev, prev, me) {
  if (ev.type === "system") return systemNode(ev, me);
  if (ev.type === "marker") return noticeNode(ev);
  return messageNode(ev, me, continues(prev, ev));
}

export function dayDivider(ts) {
  return el("li", { class: "day", "data-testid": "day-divider", role: "separator" }, el("span", {}, dayLabel(ts)));
}

export function needsDivider(prev, ev) {
  return typeof ev.ts === "number" && (!prev || typeof prev.ts !== "number" || !sameDay(prev.ts, ev.ts));
}

export function noticeNode(notice) {
  return el("li", { class: `notice notice-${notice.kind}`, "data-testid": "notice" }, notice.text);
}

export function pendingNode(p, me, { onRetry, onDiscard }) {
  const status = p.state === "failed"
    ? el("span", { class: "pending-status failed", "data-testid": "pending-failed" },
      el("span", {}, `${p.unconfirmed ? "Not confirmed" : "Not sent"}: ${p.reason}`),
      el("button", { type: "button", class: "link-btn", onclick: onRetry }, "Retry"),
      el("button", { type: "button", class: "link-btn", onclick: onDiscard }, "Discard"))
    : el("span", { class: "pending-status", "data-testid": "pending-sending" },
      p.state === "queued" ? "Waiting for the connection…" : "Sending…");
  return el("li", { class: `msg mine pending ${p.state}`, "data-testid": "pending-message", dataset: { pendingId: p.id, cid: p.cid } },
    avatar(me || "?"),
    el("div", { class: "msg-body" },
      el("div", { class: "msg-meta" }, el("span", { class: "author", style: { "--hue": hueOf(me || "?") } }, me || "you"), status),
      el("p", { class: "msg-text", "data-testid": "message-text" }, p.text)));
}

export function emptyNode(conv) {
  const text = conv.kind === "dm"
    ? `This is the start of your private conversation with ${conv.name}. Direct messages are not stored on the server.`
    : `This is the beginning of #${conv.name}. Say hello!`;
  return el("li", { class: "empty", "data-testid": "empty-state" }, text);
}
