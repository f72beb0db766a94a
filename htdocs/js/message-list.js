// The scrolling message list of the conversation on screen: draws it whole
// when the conversation changes, appends live events, keeps the view at the
// bottom unless the reader scrolled up (then offers "New messages").

import { dayDivider, emptyNode, eventNode, needsDivider, noticeNode, pendingNode } from "./render.js";

const NEAR_BOTTOM_PX = 96;

export class MessageList {
  constructor(scroller, list, jump) {
    this.scroller = scroller;
    this.list = list;
    this.jump = jump;
    this.conv = null;
    this.me = "";
    this.handlers = {};
    jump.addEventListener("click", () => this.scrollToBottom(true));
    scroller.addEventListener("scroll", () => {
      if (this.isNearBottom()) this.jump.hidden = true;
    }, { passive: true });
  }

  isNearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom(smooth = false) {
    this.scroller.scrollTo({ top: this.scroller.scrollHeight, behavior: smooth ? "smooth" : "auto" });
    this.jump.hidden = true;
  }

  // Draws `conv` from scratch. keepScroll: stay where the reader was.
  show(conv, me, handlers, keepScroll = false) {
    const stick = !keepScroll || this.isNearBottom();
    const top = this.scroller.scrollTop;
    this.conv = conv;
    this.me = me;
    this.handlers = handlers;
    const frag = document.createDocumentFragment();
    if (!conv.events.some((e) => e.type === "message" || e.type === "direct") && !conv.pending.length) {
      frag.append(emptyNode(conv));
    }
    for (const n of conv.notices) frag.append(noticeNode(n));
    let prev = null;
    for (const ev of conv.events) {
      if (needsDivider(prev, ev)) frag.append(dayDivider(ev.ts));
      frag.append(eventNode(ev, prev, me));
      prev = ev;
    }
    for (const p of conv.pending) frag.append(this._pending(p));
    this.list.replaceChildren(frag);
    this.list.setAttribute("aria-label", conv.kind === "dm" ? `Messages with ${conv.name}` : `Messages in ${conv.name}`);
    if (stick) this.scrollToBottom();
    else this.scroller.scrollTop = top;
  }

  // A live event at `index` of conv.events.
  append(conv, ev, index, own) {
    if (conv !== this.conv) return;
    if (index !== conv.events.length - 1) {
      this.show(conv, this.me, this.handlers, true); // out of order: redraw
      return;
    }
    const stick = own || this.isNearBottom();
    const prev = index > 0 ? conv.events[index - 1] : null;
    const before = this.list.querySelector(".pending");
    this.list.querySelector(".empty")?.remove();
    if (needsDivider(prev, ev)) this.list.insertBefore(dayDivider(ev.ts), before);
    this.list.insertBefore(eventNode(ev, prev, this.me), before);
    if (stick) this.scrollToBottom();
    else if (ev.type !== "system") this.jump.hidden = false;
  }

  renderPending(conv) {
    if (conv !== this.conv) return;
    const stick = this.isNearBottom();
    for (const n of this.list.querySelectorAll(".pending")) n.remove();
    if (conv.pending.length) this.list.querySelector(".empty")?.remove();
    for (const p of conv.pending) this.list.append(this._pending(p));
    if (stick) this.scrollToBottom();
  }

  setMe(me) {
    this.me = me;
  }

  _pending(p) {
    return pendingNode(p, this.me, {
      onRetry: () => this.handlers.retry?.(this.conv, p),
      onDiscard: () => this.handlers.discard?.(this.conv, p),
    });
  }
}
