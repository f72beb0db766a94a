// Name rules (docs/chat-protocol.md), per-user colours and small helpers.

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const EDGE_SPACE = /^\s|\s$/u;

// Returns null when `name` is a valid user name, else why not (for people).
export function userNameProblem(name) {
  const length = [...name].length;
  if (length < 1) return "Please enter a name.";
  if (length > 32) return "Use at most 32 characters.";
  if (/[#|]/.test(name)) return "“#” and “|” cannot be used in names.";
  if (CONTROL.test(name)) return "Control characters cannot be used in names.";
  if (EDGE_SPACE.test(name)) return "Names cannot start or end with a space.";
  return null;
}

// The server suffixes clashing names within a room (`Bob#2`); direct
// messages go to the user name without the suffix.
export function userNameOf(roomName) {
  return String(roomName).replace(/#\d+$/, "");
}

// A stable hue per name, so that a person has the same colour in every room,
// tab and browser: FNV-1a over the UTF-16 code units, a final mix, then one of
// a dozen hues that stay apart from each other and readable in both themes.
const HUES = [4, 24, 38, 140, 162, 182, 198, 214, 232, 252, 272, 292, 316, 338];

export function hueOf(name) {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return HUES[(h >>> 0) % HUES.length];
}

export function initialOf(name) {
  const first = [...String(name).trim()][0] || "?";
  return first.toLocaleUpperCase();
}

export function byteLength(text) {
  return new TextEncoder().encode(text).length;
}
