// Toasts (errors and short notes on screen) and the aria-live announcer
// that reads new messages to screen-reader users.

import { el } from "./render.js";

const ERROR_TEXT = {
  "bad-json": "The server could not read what this page sent.",
  "unknown-type": "The server did not understand a command from this page.",
  "missing-field": "The server refused an incomplete command.",
  "bad-field": "The server refused a malformed command.",
  "bad-room": "That room name is not allowed: use 1–64 letters, digits, “.”, “_” or “-”.",
  "bad-name": "That name is not allowed. Please pick another one.",
  "too-long": "That message is too long.",
  "not-joined": "You were not in that room any more; rejoining.",
  "too-many-rooms": "You are in too many rooms. Leave one first.",
  "rate-limited": "You are sending too fast. Slow down a little.",
  "no-such-user": "Nobody with that name is online.",
  "history-lost": "The server fell behind; catching up.",
  "unavailable": "The server is busy. Try again in a moment.",
};

export class Notifier {
  constructor(toasts, announcer) {
    this.toasts = toasts;
    this.announcer = announcer;
  }

  // A server `error` frame, in words people understand, with the server's
  // own reason and code underneath.
  serverError({ code, reason, room }) {
    const title = ERROR_TEXT[code] || "The server refused that.";
    const detail = [reason, room ? `room ${room}` : ""].filter(Boolean).join(" · ");
    this.toast({ kind: "error", title, detail, code });
  }

  error(title, detail = "", code = "local") {
    this.toast({ kind: "error", title, detail, code });
  }

  info(title, detail = "") {
    this.toast({ kind: "info", title, detail });
  }

  toast({ kind, title, detail, code, lines }) {
    const node = el("div", {
      class: `toast toast-${kind}`,
      role: kind === "error" ? "alert" : "status",
      "data-testid": kind === "error" ? "error-toast" : "info-toast",
      dataset: code ? { code } : {},
    },
    el("div", { class: "toast-body" },
      el("p", { class: "toast-title" }, title),
      detail ? el("p", { class: "toast-detail" }, detail, code && kind === "error" ? el("code", {}, code) : null) : null,
      lines ? el("dl", { class: "toast-lines" }, ...lines.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])) : null),
    el("button", { type: "button", class: "toast-close", "aria-label": "Dismiss", onclick: () => node.remove() }, "×"));
    this.toasts.append(node);
    while (this.toasts.children.length > 4) this.toasts.firstElementChild.remove();
    setTimeout(() => node.remove(), kind === "error" ? 9000 : lines ? 15000 : 5000);
  }

  announce(text) {
    const short = text.length > 240 ? `${text.slice(0, 240)}…` : text;
    this.announcer.append(el("p", {}, short));
    while (this.announcer.children.length > 5) this.announcer.firstElementChild.remove();
  }
}
