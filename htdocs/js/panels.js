// The side panels: the conversation list (rooms, direct messages, other
// active rooms) and the member list of the room on screen.

import { avatar, el } from "./render.js";
import { userNameOf } from "./names.js";

function badge(n) {
  return n > 0 ? el("span", { class: "badge", "data-testid": "unread", "aria-label": `${n} unread` }, n > 99 ? "99+" : String(n)) : null;
}

export function renderRoomList(ul, client, current, { open, leave }) {
  const items = [...client.rooms.values()].map((conv) => {
    const active = conv === current;
    const state = conv.joinState === "joined" ? "" : conv.joinState;
    return el("li", { class: `nav-row${active ? " active" : ""}` },
      el("button", {
        type: "button",
        class: "nav-item",
        "data-testid": "room-link",
        "data-room": conv.name,
        "aria-current": active ? "page" : null,
        onclick: () => open(conv),
      },
      el("span", { class: "nav-icon hash", "aria-hidden": "true" }, "#"),
      el("span", { class: "nav-label" }, conv.name),
      state === "joining" ? el("span", { class: "nav-state" }, "joining…") : null,
      badge(conv.unread)),
      el("button", {
        type: "button",
        class: "nav-close",
        "data-testid": "leave-room",
        "aria-label": `Leave ${conv.name}`,
        title: `Leave #${conv.name}`,
        onclick: () => leave(conv),
      }, "×"));
  });
  if (!items.length) items.push(el("li", { class: "nav-empty" }, "You are not in any room yet."));
  ul.replaceChildren(...items);
}

export function renderDmList(section, ul, client, current, { open, close }) {
  const items = [...client.dms.values()].map((conv) => {
    const active = conv === current;
    return el("li", { class: `nav-row${active ? " active" : ""}` },
      el("button", {
        type: "button",
        class: "nav-item",
        "data-testid": "dm-link",
        "data-peer": conv.name,
        "aria-current": active ? "page" : null,
        onclick: () => open(conv),
      },
      avatar(conv.name, "nav-avatar"),
      el("span", { class: "nav-label" }, conv.name),
      badge(conv.unread)),
      el("button", {
        type: "button",
        class: "nav-close",
        "aria-label": `Close the conversation with ${conv.name}`,
        title: "Close",
        onclick: () => close(conv),
      }, "×"));
  });
  ul.replaceChildren(...items);
  section.hidden = items.length === 0;
}

export function renderOtherRooms(section, ul, client, { join }) {
  const items = client.serverRooms
    .filter((r) => r && typeof r.room === "string" && !client.rooms.has(r.room))
    .slice(0, 20)
    .map((r) => el("li", { class: "nav-row" },
      el("button", {
        type: "button",
        class: "nav-item subtle",
        "data-testid": "other-room",
        "data-room": r.room,
        title: `Join #${r.room}`,
        onclick: () => join(r.room),
      },
      el("span", { class: "nav-icon hash", "aria-hidden": "true" }, "#"),
      el("span", { class: "nav-label" }, r.room),
      el("span", { class: "nav-count" }, String(r.members ?? "")))));
  ul.replaceChildren(...items);
  section.hidden = items.length === 0;
}

// Members of a room; a click opens a direct conversation with that user
// (user name = the room name without the server's `#2` suffix).
export function renderMembers(heading, ul, hint, client, conv, { openDm }) {
  heading.textContent = conv?.kind === "dm" ? "In this conversation" : "In this room";
  if (!conv) {
    ul.replaceChildren();
    hint.textContent = "";
    return;
  }
  if (conv.kind === "dm") {
    // Whether the other person is online shows only when a message fails.
    ul.replaceChildren(
      memberRow(client.me, "you", null),
      memberRow(conv.name, "", null, false));
    hint.textContent = "Direct messages reach every tab of both of you and are not kept on the server.";
    return;
  }
  const offline = conv.joinState !== "joined";
  const rows = conv.members.map((name) => {
    const self = name === conv.me;
    // `Ann#2` next to me (`Ann`) is most likely my own other tab.
    const sameUser = !self && userNameOf(name) === client.me;
    return memberRow(name, self ? "you" : sameUser ? "you, elsewhere" : "",
      self || sameUser ? null : () => openDm(userNameOf(name)));
  });
  // A large room lists only its first members (the server's presence
  // limit): put me first if I am not among them, and say how many are not.
  let more = 0;
  if (conv.truncated) {
    more = conv.count - conv.members.length;
    if (conv.me && !conv.members.includes(conv.me)) {
      rows.unshift(memberRow(conv.me, "you", null));
      more--;
    }
  }
  if (more > 0) {
    rows.push(el("li", { class: "member-more", "data-testid": "members-more", dataset: { count: more } },
      `and ${more.toLocaleString()} more`));
  }
  ul.replaceChildren(...rows);
  ul.classList.toggle("stale", offline);
  hint.textContent = offline
    ? "Reconnecting: this list may be out of date."
    : conv.truncated
      ? `A large room: the first ${conv.members.length.toLocaleString()} to join are listed. Joins and leaves are not announced one by one; the count follows within a second or two.`
      : conv.members.length > 1 ? "Click a name to send a direct message." : "Nobody else is here yet.";
}

function memberRow(name, tag, onclick, online = true) {
  const inner = [
    online ? el("span", { class: "presence-dot", "aria-hidden": "true" }) : null,
    avatar(name, "member-avatar"),
    el("span", { class: "member-name" }, name),
    tag ? el("span", { class: "you-tag" }, tag) : null,
  ];
  const body = onclick
    ? el("button", { type: "button", class: "member", "data-testid": "member", "data-name": name, title: `Send a direct message to ${userNameOf(name)}`, onclick }, ...inner)
    : el("div", { class: "member self", "data-testid": "member", "data-name": name }, ...inner);
  return el("li", {}, body);
}
