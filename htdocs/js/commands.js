// Slash commands typed in the composer. Returns {cmd, ...} or null for a
// plain message. "//text" sends "/text" literally.

export const HELP = [
  ["/join room", "join a room, or create it"],
  ["/leave", "leave the current room"],
  ["/msg name text", "send a direct message"],
  ["/name new-name", "change your name"],
  ["/help", "show this list"],
];

export function parseCommand(input) {
  if (!input.startsWith("/")) return null;
  if (input.startsWith("//")) return { cmd: "say", text: input.slice(1) };
  const m = /^\/(\S+)\s*([\s\S]*)$/.exec(input);
  if (!m) return { cmd: "unknown", name: input };
  const name = m[1].toLowerCase();
  const rest = m[2];
  switch (name) {
    case "join": case "j": case "create":
      return { cmd: "join", room: rest.trim() };
    case "leave": case "part":
      return { cmd: "leave", room: rest.trim() };
    case "msg": case "dm": case "w": case "whisper": {
      // A name with spaces goes in quotes: /msg "Zoë K" hi
      const mm = /^(?:"([^"]+)"|(\S+))\s+([\s\S]+)$/.exec(rest);
      return mm ? { cmd: "msg", to: mm[1] ?? mm[2], text: mm[3] } : { cmd: "usage", usage: "/msg name text" };
    }
    case "name": case "nick":
      return { cmd: "name", name: rest.trim() };
    case "help": case "?":
      return { cmd: "help" };
    default:
      return { cmd: "unknown", name: `/${m[1]}` };
  }
}
