#!/usr/bin/env node
// Browser tests of the chat page (htdocs/) against a private Apache with
// mod_wsbridge, in Debian's headless Chromium driven by playwright-core.
//
//   tests/browser/setup.sh && node tests/browser/run.mjs
//
// Prints "ok name" or "FAIL name: why" per test and "N passed, N failed"
// last; exits non-zero when a test failed. Apache and Chromium are always
// stopped, also on failure, Ctrl-C or the global timeout.
// Environment: MODULE (path of mod_wsbridge.so, default build/mod_wsbridge.so),
// TESTS (run only the tests whose name contains this), HEADED=1 (show the browser).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const GLOBAL_TIMEOUT_MS = 180_000; // a hang guard: an idle machine needs ~45 s
const TEST_TIMEOUT_MS = 30_000;
const STEP_TIMEOUT_MS = 10_000;
const shots = path.join(here, "screenshots");
const module_ = process.env.MODULE || path.join(root, "build/mod_wsbridge.so");

const started = Date.now();
const results = [];
const timings = [];
let apacheDir = null;
let port = 0;
let tlsPort = 0; // https with HTTP/2 (instance.sh SSL_PORT + H2=1): WebSockets over h2
let browser = null;
let finished = false;
const pageErrors = [];

// ---------------------------------------------------------------- plumbing

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
  });
}

// Ben's network switch for the graceful-restart test. Chromium's offline
// emulation sometimes holds the frames of a WebSocket that is already open
// (the server's close then never reaches the page while "offline"), so
// being offline is made at the server instead: while this file exists,
// Apache refuses Ben's handshakes (403) and his page keeps retrying. The
// directory is world-readable because Apache's children test the file.
const flagDir = fs.mkdtempSync("/tmp/wsb-browser-");
fs.chmodSync(flagDir, 0o755);
const benAway = path.join(flagDir, "ben-away");
// The same for Zed in the exactly-once test: the server is unreachable for him.
const zedAway = path.join(flagDir, "zed-away");
const extraConf = path.join(flagDir, "extra.conf");
fs.writeFileSync(extraConf, `<Location /ws/chat>
  <If "(-f '${benAway}' && %{QUERY_STRING} =~ /(^|&)name=Ben(&|$)/) || (-f '${zedAway}' && %{QUERY_STRING} =~ /(^|&)name=Zed(&|$)/)">
    Require all denied
  </If>
</Location>
# Small, so the large-room test needs only a few sockets (no other test
# puts more than 8 members in one room).
WSBridgePresenceLimit 8
`);

// The PHP demo's poll (htdocs/php/) keeps its votes in this file (php-fpm's
// children, www-data, write it), so every run starts from zero.
const pollFile = path.join(flagDir, "poll.json");
fs.writeFileSync(pollFile, "");
fs.chmodSync(pollFile, 0o666);

function instance(cmd) {
  return spawnSync(path.join(root, "scripts/instance.sh"), [cmd, apacheDir], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, PORT: String(port), SSL_PORT: String(tlsPort), H2: "1", QUIET: "1", MODULE: module_,
      EXTRA_CONF: extraConf, PHP: "1", POLL_FILE: pollFile },
    timeout: 30_000,
  });
}

function startApache() {
  if (!process.env.MODULE && !fs.existsSync(module_)) {
    const made = spawnSync("make", ["-s", "module"], { cwd: root, stdio: "inherit", timeout: 300_000 });
    if (made.status !== 0) throw new Error("make -s module failed");
  }
  const base = path.join(root, "build/test-instances");
  fs.mkdirSync(base, { recursive: true });
  apacheDir = fs.mkdtempSync(path.join(base, "browser-"));
  fs.chmodSync(apacheDir, 0o755); // Apache's children (www-data) reach php-fpm's socket in it
  const r = instance("start");
  if (r.status !== 0) {
    const err = `${r.stderr || ""}${r.stdout || ""}`.trim();
    throw new Error(`Apache did not start: ${err.split("\n").slice(-5).join(" | ")}`);
  }
}

function stopApache() {
  if (!apacheDir) return;
  instance("stop");
  const dir = apacheDir;
  apacheDir = null;
  // Keep the logs of a failed run; a clean run leaves nothing behind.
  if (results.length && results.every((r) => r.ok) && !process.env.KEEP_LOGS) fs.rmSync(dir, { recursive: true, force: true });
  else console.log(`# Apache logs: ${path.relative(root, dir)}/logs/`);
  fs.rmSync(flagDir, { recursive: true, force: true });
}

async function cleanup() {
  const t = Date.now();
  if (browser) {
    const b = browser;
    browser = null;
    await Promise.race([b.close().catch(() => {}), sleep(5000)]);
  }
  stopApache();
  timings.push(["cleanup", Date.now() - t]);
}

function report() {
  if (finished) return;
  finished = true;
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  timings.push(["total", Date.now() - started]);
  console.log(`# timings: ${timings.map(([n, ms]) => `${n} ${(ms / 1000).toFixed(1)}s`).join(", ")}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed || results.length === 0 ? 1 : 0;
}

process.on("exit", () => stopApache()); // last resort: never leave Apache behind
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    results.push({ name: "interrupted", ok: false });
    console.log(`FAIL interrupted: ${sig}`);
    await cleanup();
    report();
    process.exit(1);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// ---------------------------------------------------------------- page helpers

const base = () => `http://127.0.0.1:${port}`;
const tlsBase = () => `https://127.0.0.1:${tlsPort}`;
const uniq = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 7)}`;

async function newContext(opts = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  return context;
}

// Opens the page, picks a name and a room on the first screen, waits until live.
async function openChat(context, name, room, shot, origin = base()) {
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  await page.goto(`${origin}/`);
  await page.getByTestId("name-input").waitFor();
  if (shot) await page.screenshot({ path: path.join(shots, shot) });
  await page.getByTestId("name-input").fill(name);
  await page.getByTestId("start-room-input").fill(room);
  await page.getByTestId("name-input").press("Enter");
  await waitLive(page);
  await waitMember(page, name);
  return page;
}

const waitLive = (page) => page.waitForSelector('[data-testid="conn-state"][data-state="live"]');

function waitMember(page, name) {
  return page.waitForFunction(
    (n) => [...document.querySelectorAll('[data-testid="presence-list"] [data-testid="member"]')].some((e) => e.dataset.name === n),
    name);
}

async function send(page, text) {
  const input = page.getByTestId("message-input");
  await input.fill(text);
  await input.press("Enter");
}

function waitText(page, text) {
  return page.waitForFunction(
    (t) => [...document.querySelectorAll('[data-testid="message-list"] [data-testid="message"] [data-testid="message-text"]')]
      .some((e) => e.textContent === t),
    text);
}

// The messages on screen (confirmed ones, not pending), oldest first.
function messages(page) {
  return page.$$eval('[data-testid="message-list"] [data-testid="message"]', (els) => els.map((e) => ({
    seq: e.dataset.seq === "" ? null : Number(e.dataset.seq),
    from: e.dataset.from,
    text: e.querySelector('[data-testid="message-text"]').textContent,
  })));
}

async function publish(room, text, from) {
  const res = await fetch(`${base()}/ws/publish`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(from ? { room, text, from } : { room, text }),
  });
  const body = await res.json().catch(() => ({}));
  check(res.status === 202, `publish answered ${res.status} ${JSON.stringify(body)}`);
  return body.seq;
}

// Records every data-state the connection pill goes through.
function recordStates(page) {
  return page.evaluate(() => {
    window.__states = [];
    const pill = document.querySelector('[data-testid="conn-state"]');
    new MutationObserver(() => window.__states.push(pill.dataset.state))
      .observe(pill, { attributes: true, attributeFilter: ["data-state"] });
  });
}

// The chat frames of the page's WebSockets from now on (new sockets too:
// a reconnect opens one), as parsed JSON: [{dir: "in"|"out", f}].
function recordFrames(page) {
  const frames = [];
  page.on("websocket", (ws) => {
    const keep = (dir) => (e) => {
      try { frames.push({ dir, f: JSON.parse(e.payload) }); } catch { /* not JSON */ }
    };
    ws.on("framesent", keep("out"));
    ws.on("framereceived", keep("in"));
  });
  return frames;
}

// The page with its chat-config block changed (e.g. a shorter send bound).
// Not by routing the page: Chromium's local network access checks then
// block its WebSockets to 127.0.0.1. The block is patched when parsing ends
// ("interactive"), before the module scripts run.
async function patchConfig(context, patch) {
  await context.addInitScript((p) => {
    document.addEventListener("readystatechange", () => {
      const el = document.getElementById("chat-config");
      if (document.readyState !== "interactive" || !el) return;
      el.textContent = JSON.stringify({ ...JSON.parse(el.textContent), ...p });
    });
  }, patch);
}

// Routes the context's chat WebSockets through the test: every frame is
// passed on, except server frames for which dropServer(text) is true; the
// Apache child of the newest connection (its welcome's pid) is in .pid.
async function relayChat(context) {
  const relay = { pid: 0, dropServer: () => false, dropped: 0, sent: [] };
  await context.routeWebSocket(/\/ws\/chat/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      if (typeof m === "string") relay.sent.push(JSON.parse(m));
      server.send(m);
    });
    server.onMessage((m) => {
      if (typeof m === "string") {
        const f = JSON.parse(m);
        if (f.type === "welcome") relay.pid = f.pid;
        if (relay.dropServer(f)) { relay.dropped++; return; }
      }
      ws.send(m);
    });
  });
  return relay;
}

// Page `from` (behind `relay`) sends `text`; the server publishes it (page
// `to` shows it) but the relay holds back its echo to `from`, so the message
// stays unconfirmed. Returns its cid. Echoes flow again after
// relay.dropServer = () => false.
async function sendWithEchoHeld(relay, from, to, text) {
  let cid = null;
  relay.dropServer = (f) => {
    cid ??= relay.sent.find((c) => c.text === text)?.cid;
    return f.type === "message" && cid && f.cid === cid;
  };
  await send(from, text);
  await waitText(to, text); // published...
  for (let i = 0; i < 50 && relay.dropped === 0; i++) await sleep(50);
  check(relay.dropped === 1, `the echo was not held back (${relay.dropped})`);
  check(await countText(from, text) === 0, "the page got the echo");
  return cid;
}

// A page's pending items whose status said "Sending…" at some point.
function recordSending(page) {
  return page.evaluate(() => {
    window.__sending = new Set();
    const list = document.querySelector('[data-testid="message-list"]');
    const look = () => {
      for (const n of list.querySelectorAll('[data-testid="pending-message"]')) {
        if (n.querySelector('[data-testid="pending-sending"]')?.textContent === "Sending…") {
          window.__sending.add(n.querySelector('[data-testid="message-text"]').textContent);
        }
      }
    };
    new MutationObserver(look).observe(list, { childList: true, subtree: true, characterData: true });
  });
}

const countText = async (page, text) => (await messages(page)).filter((m) => m.text === text).length;

// ---------------------------------------------------------------- the tests

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("two-users-chat", async () => {
  const room = uniq("team");
  const ca = await newContext();
  const cb = await newContext();
  const a = await openChat(ca, "Ann", room, "welcome.png");
  const b = await openChat(cb, "Ben", room);
  await waitMember(a, "Ben");
  await waitMember(b, "Ann");
  await send(a, "Hello from Ann");
  await waitText(b, "Hello from Ann");
  await send(b, "Hi Ann, Ben here");
  await waitText(a, "Hi Ann, Ben here");
  const seenByA = await messages(a);
  const fromAnn = seenByA.find((m) => m.text === "Hello from Ann");
  check(fromAnn && fromAnn.from === "Ann", "A does not show Ann as the author of her message");
  check((await messages(b)).find((m) => m.text === "Hi Ann, Ben here")?.from === "Ben", "B does not show Ben as the author");
  check(await a.evaluate(() => document.activeElement?.dataset.testid) === "message-input", "focus left the message input after sending");
  check((await b.getByTestId("live-region").textContent()).includes("Hello from Ann"), "the aria-live region did not get Ann's message");
  // Somebody who comes later gets the history.
  const cc = await newContext();
  const c = await openChat(cc, "Cid", room);
  await waitText(c, "Hi Ann, Ben here");
  check((await messages(c)).map((m) => m.text).join("|") === "Hello from Ann|Hi Ann, Ben here", "the history is not what was said");
  await cc.close();
  // B's join line was shown to A, and the header counts two members.
  await a.waitForFunction(() => [...document.querySelectorAll('[data-testid="system-line"]')].some((e) => e.dataset.name === "Ben" && e.dataset.event === "join"));
  // Cid's leave (its context just closed) may still be on its way: wait for it.
  await a.waitForFunction(() => document.querySelector('[data-testid="conv-sub"]')?.textContent.startsWith("2 members"),
    null, { timeout: 5000 }).catch(() => {});
  check((await a.getByTestId("conv-sub").textContent()).startsWith("2 members"), "header does not say 2 members");
  // Ben leaves: A sees the leave line and the presence list shrinks.
  await b.getByTestId("leave-room").click();
  await a.waitForFunction(() => ![...document.querySelectorAll('[data-testid="presence-list"] [data-testid="member"]')].some((e) => e.dataset.name === "Ben"));
  await a.waitForFunction(() => [...document.querySelectorAll('[data-testid="system-line"]')].some((e) => e.dataset.name === "Ben" && e.dataset.event === "leave"));
  await ca.close();
  await cb.close();
});

test("html-injection-is-text", async () => {
  const room = uniq("xss");
  const attack = '<img src=x onerror="window.__pwned=1">';
  const ca = await newContext();
  const cb = await newContext();
  const a = await openChat(ca, "Mallory", room);
  const b = await openChat(cb, "<b>Bob</b>", room);
  await send(a, attack);
  await waitText(b, attack);
  await waitText(a, attack);
  await sleep(300); // give a broken image's onerror the time to fire
  for (const [who, page] of [["sender", a], ["receiver", b]]) {
    check(await page.evaluate(() => window.__pwned) === undefined, `window.__pwned is set on the ${who}'s page`);
    check(await page.locator('[data-testid="message-list"] img').count() === 0, `an <img> element exists on the ${who}'s page`);
  }
  // A name with markup is shown literally too.
  await waitMember(a, "<b>Bob</b>");
  check(await a.locator('[data-testid="presence-list"] b').count() === 0, "the name <b>Bob</b> became markup");
  await ca.close();
  await cb.close();
});

test("resume-after-graceful-restart", async () => {
  const room = uniq("restart");
  const ca = await newContext();
  const cb = await newContext();
  const a = await openChat(ca, "Ann", room);
  const b = await openChat(cb, "Ben", room);
  await send(a, "before the restart");
  await waitText(b, "before the restart");
  await recordStates(a);
  await recordStates(b);

  // B is cut off (its handshakes refused), so it stays away while A comes
  // back; its browser goes offline too, so coming back fires "online".
  fs.writeFileSync(benAway, "");
  const r = instance("reload");
  check(r.status === 0, `instance.sh reload failed: ${r.stderr}`);
  await a.waitForFunction(() => window.__states.includes("reconnecting"));
  await b.waitForFunction(() => window.__states.includes("reconnecting"));
  await cb.setOffline(true);
  // Published while B is disconnected (and while A may still be).
  await publish(room, "published during the restart 1", "Deploy Bot");
  await publish(room, "published during the restart 2", "Deploy Bot");
  await a.waitForFunction(() => window.__states.at(-1) === "live" && window.__states.includes("reconnecting"));
  await send(a, "A after reconnecting");
  await waitText(a, "A after reconnecting");
  check(await b.getByTestId("conn-state").getAttribute("data-state") !== "live", "B came back while offline");
  // What B types while offline waits in its outbox.
  await send(b, "B typed this while offline");
  await b.locator('[data-testid="pending-message"]:has-text("B typed this while offline")').waitFor();

  fs.rmSync(benAway);
  await cb.setOffline(false);
  await b.waitForFunction(() => window.__states.at(-1) === "live");
  await waitText(b, "A after reconnecting");
  await send(b, "B after reconnecting");
  await waitText(a, "B after reconnecting");
  await waitText(b, "B after reconnecting");

  const expected = ["before the restart", "published during the restart 1", "published during the restart 2",
    "A after reconnecting", "B typed this while offline", "B after reconnecting"];
  for (const [who, page] of [["A", a], ["B", b]]) {
    const got = await messages(page);
    const texts = got.map((m) => m.text);
    check(JSON.stringify(texts) === JSON.stringify(expected), `${who} shows ${JSON.stringify(texts)}`);
    const seqs = got.map((m) => m.seq);
    check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `${who}: seqs not increasing: ${seqs}`);
    check(await page.getByTestId("pending-message").count() === 0, `${who} still has pending messages`);
  }
  await ca.close();
  await cb.close();
});

test("resume-after-full-restart", async () => {
  // A full stop and start empties the server's bus: seqs start from 1 again
  // and the old `since` means nothing. Nothing new may be dropped as a
  // "duplicate", and what was on screen stays there.
  const room = uniq("full");
  const ca = await newContext();
  const cb = await newContext();
  const a = await openChat(ca, "Ann", room);
  const b = await openChat(cb, "Ben", room);
  for (let i = 1; i <= 3; i++) await send(a, `before the full restart ${i}`);
  await waitText(b, "before the full restart 3");
  await recordStates(a);
  await recordStates(b);
  const framesA = recordFrames(a);
  let r = instance("stop");
  check(r.status === 0, `instance.sh stop failed: ${r.stderr}`);
  await a.waitForFunction(() => window.__states.includes("reconnecting"));
  await a.getByTestId("conn-banner").waitFor(); // a longer outage gets a banner
  await a.screenshot({ path: path.join(shots, "chat-reconnecting.png") });
  r = instance("start");
  check(r.status === 0, `instance.sh start failed: ${r.stderr}`);
  for (const page of [a, b]) await page.waitForFunction(() => window.__states.at(-1) === "live", null, { timeout: 12_000 });
  await send(b, "after the full restart");
  await waitText(a, "after the full restart");
  await publish(room, "published after the full restart");
  const expected = ["before the full restart 1", "before the full restart 2", "before the full restart 3",
    "after the full restart", "published after the full restart"];
  for (const [who, page] of [["A", a], ["B", b]]) {
    await waitText(page, "published after the full restart");
    const texts = (await messages(page)).map((m) => m.text);
    check(JSON.stringify(texts) === JSON.stringify(expected), `${who} shows ${JSON.stringify(texts)}`);
    check(await page.getByTestId("notice").count() === 1, `${who} does not say that the server restarted`);
  }
  // The page resumed with the old bus's id next to its since, and the new
  // bus has another id (docs/chat-protocol.md, "Resume after a reconnect").
  const welcome = framesA.find((x) => x.dir === "in" && x.f.type === "welcome");
  const join = framesA.find((x) => x.dir === "out" && x.f.type === "join" && x.f.room === room);
  check(welcome && /^[0-9a-f]{16}$/.test(welcome.f.bus), `no bus id in the welcome after the restart: ${JSON.stringify(welcome)}`);
  check(join && typeof join.f.since === "number" && /^[0-9a-f]{16}$/.test(join.f.bus) && join.f.bus !== welcome.f.bus,
    `the resume did not carry the old bus id: ${JSON.stringify(join)}, new bus ${welcome?.f.bus}`);
  await a.screenshot({ path: path.join(shots, "chat-full-restart.png") });
  await ca.close();
  await cb.close();
});

// A cid is remembered by the bus that took the message (docs/chat-protocol.md,
// "Message ids"). The page's message is published, its echo is lost, and the
// server is stopped and started (a new shm bus): the page must not send it
// again on the new bus (that would post it twice) but show it as "not
// confirmed"; Retry is the user's choice and posts it on the new bus.
test("unconfirmed-across-full-restart", async () => {
  const room = uniq("unconf");
  const text = "in flight at the full restart";
  const ca = await newContext();
  const cb = await newContext();
  const relay = await relayChat(ca);
  const a = await openChat(ca, "Uma", room);
  const b = await openChat(cb, "Vic", room);
  await waitMember(a, "Vic");
  await recordStates(a);
  const cid = await sendWithEchoHeld(relay, a, b, text); // published on the old bus
  relay.dropServer = () => false;
  let r = instance("stop");
  check(r.status === 0, `instance.sh stop failed: ${r.stderr}`);
  await a.waitForFunction(() => window.__states.includes("reconnecting"));
  r = instance("start");
  check(r.status === 0, `instance.sh start failed: ${r.stderr}`);
  await a.waitForFunction(() => window.__states.at(-1) === "live", null, { timeout: 12_000 });
  const failed = a.locator(`[data-testid="pending-message"]:has-text("${text}") [data-testid="pending-failed"]`);
  await failed.waitFor({ timeout: 10_000 });
  check((await failed.textContent()).startsWith("Not confirmed"), `the reason does not say "not confirmed": ${await failed.textContent()}`);
  // A fence from the other page: had the resend gone out, it came first.
  await send(b, "fence after the restart");
  await waitText(a, "fence after the restart");
  await waitText(b, "fence after the restart");
  check(relay.sent.filter((c) => c.cid === cid).length === 1, `sent again on the new bus: ${JSON.stringify(relay.sent.filter((c) => c.cid === cid))}`);
  check(await countText(b, text) === 1, `Vic shows it ${await countText(b, text)} times before any retry`);
  check(await countText(a, text) === 0, "Uma shows it as delivered although it was never confirmed");
  // Retry: the user's choice, posted on the new bus, still with its cid.
  await a.locator(`[data-testid="pending-message"]:has-text("${text}")`).getByRole("button", { name: "Retry", exact: true }).click();
  await waitText(a, text);
  check(await a.getByTestId("pending-message").count() === 0, "still pending after the retry");
  check(await countText(a, text) === 1, `Uma shows it ${await countText(a, text)} times after the retry`);
  await ca.close();
  await cb.close();
});

// Exactly once (docs/chat-protocol.md, "Message ids"): the page keeps an
// unacknowledged message as "sending…" and resends it with its cid after a
// reconnect; the server publishes a cid once. The Apache child holding the
// page's connection is killed with SIGKILL while a message is in flight:
// (1) before the child read it (stopped first), (2) after it published it
// but before the page got the echo (the relay drops the echo). Either way
// the message shows exactly once, to the sender and to others.
test("exactly-once-across-child-kill", async () => {
  const room = uniq("once");
  const ca = await newContext();
  const cb = await newContext();
  const relay = await relayChat(ca);
  const a = await openChat(ca, "Cia", room);
  const b = await openChat(cb, "Obs", room);
  await waitMember(a, "Obs");
  await recordSending(a);

  await send(a, "delivered at once");
  await waitText(b, "delivered at once");
  await waitText(a, "delivered at once");
  await a.waitForFunction(() => window.__sending.has("delivered at once"));
  check(await a.getByTestId("pending-message").count() === 0, "the delivered message is still pending");

  // (1) The child is stopped, the page sends, the child dies unread.
  let pid = relay.pid;
  check(pid > 0, "no welcome seen");
  process.kill(pid, "SIGSTOP");
  await send(a, "in flight while the child stops");
  await a.locator('[data-testid="pending-message"]:has-text("in flight while the child stops")').waitFor();
  await sleep(300); // the frame is in the stopped child's socket by now
  process.kill(pid, "SIGKILL");
  await waitText(a, "in flight while the child stops");
  await waitText(b, "in flight while the child stops");
  check(relay.pid !== pid, "the page did not reconnect");

  // (2) The child publishes, the echo is lost, then the child dies.
  pid = relay.pid;
  const cid = await sendWithEchoHeld(relay, a, b, "in flight when the child dies"); // published...
  relay.dropServer = () => false;
  process.kill(pid, "SIGKILL");
  await waitText(a, "in flight when the child dies"); // ...and the resend gets the original
  const resends = relay.sent.filter((c) => c.cid === cid);
  check(resends.length >= 1, "the message was never sent");

  await send(b, "fence from Obs");
  await waitText(a, "fence from Obs");
  await waitText(b, "fence from Obs");
  for (const [who, page] of [["Cia", a], ["Obs", b]]) {
    for (const t of ["delivered at once", "in flight while the child stops", "in flight when the child dies"]) {
      const n = await countText(page, t);
      check(n === 1, `${who} shows "${t}" ${n} times`);
    }
    const seqs = (await messages(page)).map((m) => m.seq);
    check(seqs.every((x, i) => i === 0 || x > seqs[i - 1]), `${who}: seqs not increasing: ${seqs}`);
  }
  check(await a.getByTestId("pending-message").count() === 0, "Cia still has pending messages");
  const mine = (await messages(a)).find((m) => m.text === "in flight when the child dies");
  const theirs = (await messages(b)).find((m) => m.text === "in flight when the child dies");
  check(mine.seq === theirs.seq, `sender and receiver disagree on the seq: ${mine.seq} vs ${theirs.seq}`);
  await ca.close();
  await cb.close();
});

// Past the bound (sendTimeoutMs) with the server unreachable, a message is
// marked failed; Retry sends it, still once.
test("failed-after-bound-then-retry", async () => {
  const room = uniq("bound");
  const ca = await newContext();
  const relay = await relayChat(ca);
  await patchConfig(ca, { sendTimeoutMs: 4000 });
  const z = await openChat(ca, "Zed", room);
  await recordStates(z);
  fs.writeFileSync(zedAway, "");
  try {
    process.kill(relay.pid, "SIGKILL");
    await z.waitForFunction(() => window.__states.includes("reconnecting"));
    await send(z, "typed while unreachable");
    await z.locator('[data-testid="pending-message"]:has-text("typed while unreachable")').waitFor();
    await z.getByTestId("pending-failed").waitFor({ timeout: 15_000 });
    check((await z.getByTestId("pending-failed").textContent()).includes("unreachable"), "no reason shown");
  } finally {
    fs.rmSync(zedAway, { force: true });
  }
  await z.getByTestId("retry-now").click().catch(() => {});
  await z.waitForFunction(() => window.__states.at(-1) === "live", undefined, { timeout: 20_000 });
  await z.getByRole("button", { name: "Retry", exact: true }).click();
  await waitText(z, "typed while unreachable");
  check(await countText(z, "typed while unreachable") === 1, "shown more than once");
  check(await z.getByTestId("pending-message").count() === 0, "still pending after the retry");
  await ca.close();
});

test("direct-message", async () => {
  const room = uniq("dm");
  const ca = await newContext();
  const cb = await newContext();
  const a = await openChat(ca, "Ann", room);
  const b = await openChat(cb, "Ben", room);
  await waitMember(a, "Ben");
  // Click Ben in the presence list: a private conversation opens.
  await a.locator('[data-testid="presence-list"] [data-testid="member"][data-name="Ben"]').click();
  await a.waitForFunction(() => document.querySelector('[data-testid="conv-title"]').textContent.includes("Ben"));
  await send(a, "psst, Ben: lunch?");
  await waitText(a, "psst, Ben: lunch?");
  // Ben gets an unread badge on the conversation with Ann and opens it.
  const link = b.locator('[data-testid="dm-link"][data-peer="Ann"]');
  await link.locator('[data-testid="unread"]').waitFor();
  await link.click();
  await waitText(b, "psst, Ben: lunch?");
  // The room did not get it.
  await b.locator('[data-testid="room-link"]').first().click();
  check(!(await messages(b)).some((m) => m.text.includes("lunch")), "the direct message showed up in the room");
  // Ben answers with the /msg command.
  await send(b, "/msg Ann yes, 12:30!");
  await waitText(a, "yes, 12:30!");
  await ca.close();
  await cb.close();
});

test("server-error-shown", async () => {
  const ca = await newContext();
  const a = await openChat(ca, "Erin", uniq("errors"));
  await send(a, "/msg nobody-is-called-this hello?");
  const toast = a.locator('[data-testid="error-toast"][data-code="no-such-user"]');
  await toast.waitFor();
  check((await toast.textContent()).includes("online"), "no-such-user toast does not explain");
  await a.locator('[data-testid="pending-failed"]').waitFor();
  await send(a, "/join bad room!");
  await a.locator('[data-testid="error-toast"][data-code="bad-room"]').waitFor();
  await a.waitForFunction(() => ![...document.querySelectorAll('[data-testid="room-link"]')].some((e) => e.dataset.room === "bad room!"));
  check(await a.getByTestId("conn-state").getAttribute("data-state") === "live", "the connection did not stay live after errors");
  await a.screenshot({ path: path.join(shots, "chat-errors.png") });
  await ca.close();
});

test("phone-layout-no-horizontal-scroll", async () => {
  const room = uniq("phone");
  const longName = "Maximiliane-Wolkenstein-Lanzard";
  const cp = await newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
  const p = await openChat(cp, longName, room);
  const unbroken = "https://example.com/" + "averyveryverylongpathsegment".repeat(12);
  await send(p, unbroken);
  await send(p, "A normal sentence that is long enough to wrap onto a few lines on a narrow phone screen, with words.");
  await waitText(p, unbroken);
  const sizes = await p.evaluate(() => {
    const d = document.documentElement;
    const sc = document.getElementById("scroller");
    const widest = Math.max(...[...document.querySelectorAll('[data-testid="message"], [data-testid="message-author"], [data-testid="message-text"]')]
      .map((e) => e.getBoundingClientRect().right));
    return { doc: d.scrollWidth, body: document.body.scrollWidth, inner: window.innerWidth, sc: sc.scrollWidth, scClient: sc.clientWidth, widest };
  });
  check(sizes.doc <= sizes.inner && sizes.body <= sizes.inner, `page scrolls horizontally: ${JSON.stringify(sizes)}`);
  check(sizes.sc <= sizes.scClient, `message list scrolls horizontally: ${JSON.stringify(sizes)}`);
  check(sizes.widest <= sizes.inner + 0.5, `a message sticks out: ${JSON.stringify(sizes)}`);
  // The conversation drawer opens and closes on a phone.
  await p.getByTestId("open-sidebar").click();
  await p.locator('[data-testid="room-link"]').first().waitFor({ state: "visible" });
  await p.waitForFunction(() => document.getElementById("sidebar").getBoundingClientRect().left >= 0);
  await sleep(50);
  await p.screenshot({ path: path.join(shots, "chat-phone-drawer.png") });
  await p.locator('[data-testid="room-link"]').first().click();
  await p.screenshot({ path: path.join(shots, "chat-phone.png") });
  await cp.close();
});

test("screenshot", async () => {
  // A short, realistic conversation for the README.
  const room = "lobby";
  const ca = await newContext({ colorScheme: "light" });
  const cb = await newContext();
  const cc = await newContext();
  const a = await openChat(ca, "Ann", room);
  // Ann is in a second room too, created from the sidebar form.
  await a.getByTestId("room-input").fill("deploys");
  await a.getByTestId("room-input").press("Enter");
  await a.waitForSelector('[data-testid="conv-title"]:has-text("deploys")');
  await waitMember(a, "Ann");
  await a.locator('[data-testid="room-link"][data-room="lobby"]').click();
  const b = await openChat(cb, "Ben", room);
  const c = await openChat(cc, "Chloé", room);
  await send(b, "Morning! Did last night's deploy go out?");
  await waitText(a, "Morning! Did last night's deploy go out?");
  await publish(room, "Deployment finished: mod_wsbridge on web-1 and web-2 (graceful restart, 0 errors).", "Deploy Bot");
  await send(a, "It did. Apache restarted gracefully and every page reconnected on its own.");
  await waitText(b, "It did. Apache restarted gracefully and every page reconnected on its own.");
  await send(a, "They resumed from their last sequence number, so nobody lost a message.");
  await waitText(c, "They resumed from their last sequence number, so nobody lost a message.");
  await send(c, "Nice. And markup stays text: <img src=x onerror=alert(1)>");
  await waitText(a, "Nice. And markup stays text: <img src=x onerror=alert(1)>");
  await send(b, "Great work, both of you. Coffee's on me.");
  await waitText(a, "Great work, both of you. Coffee's on me.");
  // Unread badges: a build note in the other room, a direct message from Ben.
  await publish("deploys", "Build 1042 passed: 212 unit, 38 integration and 8 browser tests.", "CI");
  await send(b, "/msg Ann Got a minute after the standup?");
  await a.locator('[data-testid="dm-link"][data-peer="Ben"] [data-testid="unread"]').waitFor();
  await a.locator('[data-testid="room-link"][data-room="deploys"] [data-testid="unread"]').waitFor();
  await a.evaluate(() => { document.activeElement?.blur(); });
  const file = path.join(shots, "chat.png");
  await a.screenshot({ path: file });
  check(fs.statSync(file).size > 10_000, "screenshot is suspiciously small");
  // The dark theme, for whoever reviews the design.
  const cd = await newContext({ colorScheme: "dark" });
  const d = await openChat(cd, "Dana", room);
  await waitText(d, "Great work, both of you. Coffee's on me.");
  await d.evaluate(() => { document.activeElement?.blur(); });
  await d.screenshot({ path: path.join(shots, "chat-dark.png") });
  for (const ctx of [ca, cb, cc, cd]) await ctx.close();
});

test("status-page", async () => {
  // The admin page of SetHandler wsbridge-status, reached the way a browser
  // navigates (its Accept header picks the HTML), while another page keeps
  // echo and chat sockets busy: the open counts per app and per child, and
  // charts drawn from a few polls. Polls every second (?interval=1) to be quick.
  const ctx = await newContext();
  const traffic = await ctx.newPage();
  traffic.on("pageerror", (e) => pageErrors.push(`status traffic: ${e.message}`));
  await traffic.goto(`${base()}/ws/status?format=json`); // any page of this origin will do
  const room = uniq("status");
  await traffic.evaluate((room) => new Promise((resolve, reject) => {
    const url = (p) => location.origin.replace(/^http/, "ws") + p;
    const socks = [0, 1, 2].map(() => new WebSocket(url("/ws/echo")));
    for (const name of ["Ops", "Dev"]) socks.push(new WebSocket(url(`/ws/chat?name=${name}`)));
    const chats = socks.slice(3);
    // A load that rises and falls, so the charts have a shape; it stops by
    // itself after 25 s (or when the context closes).
    const load = () => {
      for (const ws of chats) ws.send(JSON.stringify({ type: "join", room }));
      let tick = 0;
      const timer = setInterval(() => {
        tick++;
        const n = 1 + Math.round(3 + 3 * Math.sin(tick / 12));
        for (const ws of socks.slice(0, 3)) for (let k = 0; k < n; k++) ws.send("x".repeat(100 + 150 * k));
        if (tick % 4 === 0) chats[tick % 8 === 0 ? 0 : 1].send(JSON.stringify({ type: "message", room, text: `tick ${tick}` }));
      }, 100);
      setTimeout(() => clearInterval(timer), 25_000);
      resolve();
    };
    let opened = 0;
    for (const ws of socks) {
      ws.onerror = () => reject(new Error(`${ws.url} failed`));
      ws.onopen = () => { if (++opened === socks.length) load(); };
    }
  }), room);

  // The chat page's header links to it.
  const chat = await ctx.newPage();
  await chat.goto(`${base()}/`);
  const href = await chat.getByTestId("status-link").getAttribute("href");
  check(href === "/ws/status?format=html", `the chat page's Status link goes to ${href}`);
  await chat.close();

  const page = await ctx.newPage();
  page.on("pageerror", (e) => pageErrors.push(`status: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`status console: ${m.text()}`); });
  const res = await page.goto(`${base()}/ws/status?interval=1`);
  check(res.headers()["content-type"]?.startsWith("text/html"), `navigating got ${res.headers()["content-type"]}`);
  check((res.headers()["vary"] || "").includes("Accept"), "no Vary: Accept on the negotiated page");
  await page.waitForSelector('[data-testid="poll-state"][data-state="live"]');

  // The page shows what the JSON says (nothing opens or closes meanwhile).
  const shown = () => page.evaluate(() => {
    const v = (id) => Number(document.querySelector(`[data-testid="${id}"]`)?.dataset.value);
    const rows = [...document.querySelectorAll('[data-testid="child-row"]')].map((r) => ({
      pid: Number(r.dataset.pid), open: [...r.querySelectorAll("td.num")].slice(0, 2).map((td) => Number(td.dataset.value)),
    }));
    return { total: v("open-total"), echo: v("open-echo"), chat: v("open-chat"), rows };
  });
  let got = null, want = null;
  for (let i = 0; i < 20; i++) {
    want = await (await fetch(`${base()}/ws/status?format=json`)).json();
    got = await shown();
    if (got.echo === want.apps.echo.open && got.chat === want.apps.chat.open && got.total === want.open &&
        got.rows.length === want.children.length) break;
    await sleep(500);
  }
  check(got.echo >= 3 && got.chat >= 2, `page shows echo ${got.echo}, chat ${got.chat} open; 3 and 2 were opened`);
  check(got.echo === want.apps.echo.open && got.chat === want.apps.chat.open && got.total === want.open,
    `page shows ${JSON.stringify(got)}, the JSON says echo ${want.apps.echo.open} chat ${want.apps.chat.open} total ${want.open}`);
  const perChild = got.rows.reduce((n, r) => n + r.open[0] + r.open[1], 0);
  check(perChild === got.total, `children rows add up to ${perChild} open, the total is ${got.total}`);
  check(JSON.stringify(got.rows.map((r) => r.pid).sort()) === JSON.stringify(want.children.map((c) => c.pid).sort()),
    `children rows ${got.rows.map((r) => r.pid)} vs JSON ${want.children.map((c) => c.pid)}`);

  // After a few polls every chart has lines with points, and the rates are up.
  await page.waitForFunction(() => ["chart-open", "chart-messages", "chart-bytes"].every((id) => {
    const lines = [...document.querySelectorAll(`[data-testid="${id}"] path.line`)];
    return lines.length >= 2 && lines.every((l) => Number(l.dataset.points) >= 4 && /^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+){3,}/.test(l.getAttribute("d")));
  }), null, { timeout: 15_000 });
  const rates = await page.evaluate(() => ["msg-rate-in", "msg-rate-out", "bytes-rate-in", "bytes-rate-out"]
    .map((id) => Number(document.querySelector(`[data-testid="${id}"]`).dataset.value)));
  check(rates.every((r) => r > 0), `rates shown: ${rates}`);
  for (const code of new Set(Object.values(want.apps).flatMap((a) => Object.keys(a.closes)))) {
    check(await page.locator(`[data-testid="closes-table"] tr[data-code="${code}"]`).count() === 1, `no row for close code ${code}`);
  }
  check(await page.locator('[data-testid="refused-table"] tbody tr').count() >= 6, "refusal reasons missing");
  check((await page.getByTestId("server-line").textContent()).includes(`version ${want.version}`), "no version in the header");

  // Let a few more polls in so the charts have some history, then the picture.
  await sleep(5000);
  await page.mouse.move(0, 0);
  const file = path.join(shots, "status.png");
  await page.screenshot({ path: file });
  check(fs.statSync(file).size > 20_000, "status screenshot is suspiciously small");
  if (process.env.DOCS_SCREENSHOTS) fs.copyFileSync(file, path.join(root, "docs/status-screenshot.png"));

  // Phone width: no horizontal scrolling of the page (wide tables scroll in their box).
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  const sizes = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, inner: window.innerWidth }));
  check(sizes.doc <= sizes.inner, `status page scrolls horizontally on a phone: ${JSON.stringify(sizes)}`);
  await page.screenshot({ path: path.join(shots, "status-phone.png") });
  await ctx.close();
});

test("status-page-figures", async () => {
  // The figures an admin had only in the JSON, each shown with the JSON's
  // value after traffic that changes it: accepted over HTTP/2, the chat
  // rate limit, the hub's writes, the cid dedupe, the bus id, the per-IP
  // limiter, the capacity, the backend bridge; then the webhook panel and
  // text escaping with a doctored JSON.
  const ctx = await newContext();
  const traffic = await ctx.newPage();
  traffic.on("pageerror", (e) => pageErrors.push(`status traffic: ${e.message}`));
  await traffic.goto(`${base()}/ws/status?format=json`); // any page of this origin will do
  const room = uniq("figures");
  await traffic.evaluate((room) => new Promise((resolve, reject) => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/chat?name=Cid");
    window.statusChat = ws;
    ws.onerror = () => reject(new Error("chat socket failed"));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === "welcome") ws.send(JSON.stringify({ type: "join", room }));
      else if (m.type === "history" || m.type === "joined" || m.room === room) resolve();
    };
  }), room);
  const page = await ctx.newPage();
  page.on("pageerror", (e) => pageErrors.push(`status: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`status console: ${m.text()}`); });
  await page.goto(`${base()}/ws/status?interval=1`);
  await page.waitForSelector('[data-testid="poll-state"][data-state="live"]');

  // Everything the page shows, from one poll (so from one child).
  const APP_KEYS = ["open", "accepted", "accepted_h2", "hub_writes", "hub_handbacks", "rate_limited"];
  const snapshot = () => page.evaluate((keys) => {
    const kv = (id) => Object.fromEntries([...document.querySelectorAll(`[data-testid="${id}"] dd[data-key]`)]
      .map((dd) => [dd.dataset.key, dd.dataset.value === undefined ? dd.textContent : Number(dd.dataset.value)]));
    return {
      pid: Number(document.getElementById("hub-pid").textContent.replace(/\D+/g, "")),
      apps: Object.fromEntries([...document.querySelectorAll('[data-testid="apps-table"] tr[data-app]')].map((tr) => [tr.dataset.app,
        Object.fromEntries(keys.map((k) => [k, Number(tr.querySelector(`td[data-key="${k}"]`)?.dataset.value)]))])),
      hub: kv("hub"), bus: kv("bus"), perIp: kv("per-ip"), capacity: kv("capacity"), backend: kv("backend"),
      hubText: document.querySelector('[data-testid="hub"]').textContent,
      webhooksText: document.querySelector('[data-testid="webhooks"]').textContent,
    };
  }, APP_KEYS);
  await page.waitForFunction(() => /\d/.test(document.getElementById("hub-pid").textContent));
  // Each child's figures before (the page's poll may move to the other
  // child when its keep-alive connection ends).
  const before = {};
  for (const pid of await childPids()) before[pid] = await statusOf(pid);
  // A chat message sent twice with the same cid: every hub drops the repeat and counts it.
  await traffic.evaluate((room) => {
    for (let i = 0; i < 2; i++) window.statusChat.send(JSON.stringify({ type: "message", room, text: "exactly once", cid: "status-page-cid" }));
  }, room);
  // A burst over WSBridgeRateLimit (20/s, burst 40) from a fresh chat socket: a few refusals, not 10 in a row.
  await traffic.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/chat?name=Burst");
    ws.onerror = () => reject(new Error("burst socket failed"));
    ws.onmessage = (e) => {
      if (JSON.parse(e.data).type !== "welcome") return;
      for (let i = 0; i < 45; i++) ws.send(JSON.stringify({ type: "join", room: "status-burst" })); // leave is free
      setTimeout(resolve, 500);
    };
  }));
  // An echo WebSocket over HTTP/2 (RFC 8441): Chromium uses the h2
  // connection its https navigation opened.
  const h2ctx = await newContext({ ignoreHTTPSErrors: true });
  const h2page = await h2ctx.newPage();
  await h2page.goto(`${tlsBase()}/ws/status?format=json`);
  check(await h2page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol) === "h2",
    "the https status page did not load over h2");
  await h2page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/echo");
    window.h2ws = ws;
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("h2 echo socket failed"));
  }));
  const matches = (snap, j) => Object.keys(j.apps).every((a) => APP_KEYS.every((k) => snap.apps[a]?.[k] === j.apps[a][k])) &&
    snap.hub.cid_duplicates === j.hub?.cid_duplicates && snap.bus.id === j.bus.id &&
    Object.entries(j.capacity).every(([k, v]) => snap.capacity[k] === v) &&
    ["requests", "opens_refused", "channels_here", "subscriptions_here"].every((k) => snap.backend[k] === j.backend[k]) &&
    snap.perIp.limit === (j.per_ip.limit || "no limit") && snap.perIp.refused === j.refused.per_ip && snap.perIp.connections === j.per_ip.connections;
  let snap = null, after = null, was = null;
  for (let i = 0; i < 20; i++) {
    snap = await snapshot();
    after = await statusOf(snap.pid);
    was = before[snap.pid];
    if (after && was && matches(snap, after) && after.apps.echo.accepted_h2 > was.apps.echo.accepted_h2 &&
        after.apps.chat.rate_limited > was.apps.chat.rate_limited && (!was.hub || after.hub.cid_duplicates > was.hub.cid_duplicates)) break;
    await sleep(500);
  }
  console.log(`# figures from child ${snap.pid}: hub ${was?.hub ? "yes" : "no"}, cid ${snap.hub.cid_duplicates}, rate_limited ${after?.apps.chat.rate_limited}, accepted_h2 ${after?.apps.echo.accepted_h2}`);
  check(after && was, `no figures of child ${snap.pid}, the page's, before and after`);
  for (const a of Object.keys(after.apps))
    for (const k of APP_KEYS) check(snap.apps[a]?.[k] === after.apps[a][k], `apps table: ${a} ${k} shows ${snap.apps[a]?.[k]}, the JSON says ${after.apps[a][k]}`);
  check(after.apps.echo.accepted_h2 === was.apps.echo.accepted_h2 + 1,
    `accepted_h2 went from ${was.apps.echo.accepted_h2} to ${after.apps.echo.accepted_h2} for one h2 WebSocket`);
  check(after.apps.chat.rate_limited > was.apps.chat.rate_limited, `rate_limited stayed at ${after.apps.chat.rate_limited} after a burst`);
  if (was.hub) {
    check(snap.hub.cid_duplicates === was.hub.cid_duplicates + 1 && after.hub.cid_duplicates === was.hub.cid_duplicates + 1,
      `cid repeats: the page shows ${snap.hub.cid_duplicates}, the JSON ${after.hub.cid_duplicates}, ${was.hub.cid_duplicates} before one repeat`);
    check(Number.isInteger(snap.hub.direct_cids) && snap.hub.direct_cids === after.hub.direct_cids, `direct cids: page ${snap.hub.direct_cids}`);
  } else {
    check(snap.hubText.includes("No chat hub"), "no hub in the page's child, and the page does not say so");
  }
  check(after.bus.id && snap.bus.id === after.bus.id, `bus id: the page shows ${snap.bus.id}, the JSON ${after.bus.id}`);
  check(snap.perIp.limit === (after.per_ip.limit || "no limit") && snap.perIp.refused === after.refused.per_ip && snap.perIp.connections === after.per_ip.connections,
    `per-IP panel ${JSON.stringify(snap.perIp)} vs JSON ${JSON.stringify(after.per_ip)} refused ${after.refused.per_ip}`);
  for (const [k, v] of Object.entries(after.capacity)) check(snap.capacity[k] === v, `capacity ${k}: page ${snap.capacity[k]}, JSON ${v}`);
  for (const k of ["requests", "opens_refused", "channels_here", "subscriptions_here"])
    check(snap.backend[k] === after.backend[k], `backend ${k}: page ${snap.backend[k]}, JSON ${after.backend[k]}`);
  for (const [k, v] of Object.entries(after.backend.failures))
    check(snap.backend[`failed_${k}`] === v, `backend failures ${k}: page ${snap.backend[`failed_${k}`]}, JSON ${v}`);
  if (!after.webhooks) check(snap.webhooksText.includes("No webhook thread"), "webhooks panel without figures says nothing");

  await page.screenshot({ path: path.join(shots, "status-figures.png"), fullPage: true });

  // The webhook panel with figures, and text from the JSON shown as text:
  // the page's poll answered with the real JSON plus webhook figures and
  // markup in a string.
  const evil = '<img src="x" data-evil="1">';
  await page.route((u) => u.searchParams.get("format") === "json", async (route) => {
    const res = await route.fetch();
    const j = await res.json();
    j.webhooks = { scope: "child", targets: 2, sent_batches: 3, sent_events: 7, failed_attempts: 1, dropped_events: 0 };
    j.bus.last_error = evil;
    await route.fulfill({ response: res, json: j });
  });
  await page.waitForFunction(() => document.querySelector('[data-testid="webhooks"] dd[data-key="sent_events"]')?.dataset.value === "7");
  const wh = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-testid="webhooks"] dd[data-key]')]
    .map((dd) => [dd.dataset.key, dd.dataset.value === undefined ? dd.textContent : Number(dd.dataset.value)])));
  check(wh.targets === 2 && wh.sent_batches === 3 && wh.sent_events === 7 && wh.failed_attempts === 1 && wh.dropped_events === 0,
    `webhooks panel ${JSON.stringify(wh)}`);
  check(String(wh.scope).includes("this child only"), `webhooks panel does not say its figures are this child's: ${wh.scope}`);
  check(await page.locator('[data-testid="webhooks"] dd[data-key="failed_attempts"].warn').count() === 1, "a failed webhook attempt is not flagged");
  check(await page.locator("[data-evil]").count() === 0, "markup from the JSON became an element");
  check(await page.locator('[data-testid="bus"] dd[data-key="last_error"]').textContent() === evil, "the bus error is not shown as text");
  await page.unroute((u) => u.searchParams.get("format") === "json");
  await h2ctx.close();
  await ctx.close();
});

// The pids of the children that answer the status within 40 new connections.
async function childPids() {
  const pids = new Set();
  for (let i = 0; i < 40; i++) pids.add((await statusOf(null)).pid);
  return [...pids];
}

// The status JSON from child pid (any child if null; a new connection per try, so the MPM may
// hand it to any child); null if that child did not answer within 60 tries.
async function statusOf(pid) {
  const url = new URL(`${base()}/ws/status?format=json`);
  for (let i = 0; i < 60; i++) {
    const j = await new Promise((resolve, reject) => {
      http.get(url, { agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => { body += d; });
        res.on("end", () => resolve(JSON.parse(body)));
      }).on("error", reject);
    });
    if (pid == null || j.pid === pid) return j;
  }
  return null;
}

test("php-demo", async () => {
  // The live poll of htdocs/php/, whose WebSocket backend is one PHP file
  // (poll-backend.php through php-fpm): a vote in one page shows up in the other.
  const chat = await (await newContext()).newPage();
  await chat.goto(`${base()}/`);
  const href = await chat.getByTestId("php-demo-link").getAttribute("href");
  check(href === "/php/", `the chat page's PHP demo link goes to ${href}`);
  await chat.context().close();

  const openPoll = async (ctx, who) => {
    const page = await ctx.newPage();
    page.on("pageerror", (e) => pageErrors.push(`poll ${who}: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`poll ${who} console: ${m.text()}`); });
    await page.goto(`${base()}/php/`);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    await page.waitForSelector('[data-testid="poll-option"] [data-testid="vote-button"]:not([disabled])');
    return page;
  };
  const count = (page, option) => page.$eval(`[data-testid="poll-option"][data-option="${option}"]`, (e) => Number(e.dataset.count));
  const ca = await newContext({ colorScheme: "light" });
  const cb = await newContext();
  const a = await openPoll(ca, "A");
  const b = await openPoll(cb, "B");
  const options = await a.$$eval('[data-testid="poll-option"]', (els) => els.map((e) => e.dataset.option));
  check(options.length >= 2, `the poll shows ${options.length} options`);
  check((await a.getByTestId("poll-question").textContent()).length > 5, "no question shown");

  // Some earlier votes, each from a connection of its own (one vote per connection).
  const earlier = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3].map((i) => options[i % options.length]);
  await b.evaluate((votes) => Promise.all(votes.map((option) => new Promise((resolve, reject) => {
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws/php");
    ws.onopen = () => ws.send(JSON.stringify({ type: "vote", option }));
    ws.onmessage = (e) => { if (JSON.parse(e.data).type === "voted") { ws.close(); resolve(); } };
    ws.onerror = () => reject(new Error("vote socket failed"));
  }))), earlier);
  await a.waitForFunction((n) => Number(document.querySelector('[data-testid="poll-total"]').dataset.total) === n, earlier.length);

  // A votes; B's count goes up by one, live.
  const pick = options[1];
  const before = await count(b, pick);
  await a.locator(`[data-testid="poll-option"][data-option="${pick}"] [data-testid="vote-button"]`).click();
  await b.waitForFunction(([o, n]) => Number(document.querySelector(`[data-testid="poll-option"][data-option="${o}"]`).dataset.count) === n,
    [pick, before + 1]);
  check(await b.$eval(`[data-testid="poll-option"][data-option="${pick}"] [data-testid="option-count"]`, (e) => e.textContent)
    .then((t) => t.startsWith(`${before + 1} `)), "B's count text did not change");
  // A shows its vote and cannot vote again; B still can.
  await a.waitForSelector(`[data-testid="poll-option"][data-option="${pick}"].mine`);
  check(await a.locator('[data-testid="vote-button"]:not([disabled])').count() === 0, "A can vote twice");
  check(await b.locator('[data-testid="vote-button"]:not([disabled])').count() === options.length, "B's buttons are disabled");
  check((await a.getByTestId("live-region").textContent()).includes("was counted"), "the vote was not announced");

  await a.mouse.move(0, 0);
  await sleep(500); // the bars' transition
  const file = path.join(shots, "php-demo.png");
  await a.screenshot({ path: file });
  check(fs.statSync(file).size > 10_000, "PHP demo screenshot is suspiciously small");
  if (process.env.DOCS_SCREENSHOTS) fs.copyFileSync(file, path.join(root, "docs/php-demo-screenshot.png"));
  await ca.close();
  await cb.close();
});

test("large-room-count", async () => {
  // Above WSBridgePresenceLimit (8 here) the page shows the count, the first
  // names with "and N more", and no join lines for the crowd; back within
  // the limit, the whole list and join lines again (docs/large-rooms.md).
  const room = uniq("crowd");
  const ca = await newContext();
  const a = await openChat(ca, "Ann", room);
  const helper = await ca.newPage();
  helper.on("pageerror", (e) => pageErrors.push(`crowd: ${e.message}`));
  await helper.goto(`${base()}/ws/status?format=json`); // any page of this origin will do
  // bot1..bot14 join one after another, each on a WebSocket of its own.
  const joinBots = (from, to) => helper.evaluate(async ({ room, from, to }) => {
    window.__bots = window.__bots || {};
    for (let i = from; i <= to; i++) {
      await new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/ws/chat?name=bot${i}`);
        window.__bots[i] = ws;
        ws.onerror = () => reject(new Error(`bot${i}: WebSocket error`));
        ws.onopen = () => ws.send(JSON.stringify({ type: "join", room }));
        ws.onmessage = (e) => { const f = JSON.parse(e.data); if (f.type === "presence" && f.you) resolve(); };
      });
    }
  }, { room, from, to });
  const panel = () => a.evaluate(() => ({
    names: [...document.querySelectorAll('[data-testid="presence-list"] [data-testid="member"]')].map((e) => e.dataset.name),
    more: document.querySelector('[data-testid="members-more"]')?.textContent ?? null,
    sub: document.querySelector('[data-testid="conv-sub"]').textContent,
    joinLines: [...document.querySelectorAll('[data-testid="system-line"][data-event="join"]')].map((e) => e.dataset.name),
  }));
  await joinBots(1, 14);
  await a.waitForFunction(() => document.querySelector('[data-testid="conv-sub"]').textContent.startsWith("15 members"));
  await a.waitForFunction(() => document.querySelector('[data-testid="members-more"]')?.textContent === "and 7 more");
  let p = await panel();
  const first8 = ["Ann", ...[1, 2, 3, 4, 5, 6, 7].map((i) => `bot${i}`)];
  check(JSON.stringify(p.names) === JSON.stringify(first8), `the list shows ${p.names}`);
  check(JSON.stringify(p.joinLines) === JSON.stringify(first8), `join lines for ${p.joinLines}: the crowd beyond 8 was announced`);
  check((await a.locator("#members-count").textContent()) === "15", "the members badge does not say 15");
  await a.screenshot({ path: path.join(shots, "chat-large-room.png") });

  // bot1 and bot8..bot14 leave: 7 members, the whole list, no "more".
  await helper.evaluate(() => { for (const i of [1, 8, 9, 10, 11, 12, 13, 14]) window.__bots[i].close(); });
  await a.waitForFunction(() => document.querySelector('[data-testid="conv-sub"]').textContent.startsWith("7 members"));
  p = await panel();
  check(p.more === null, `still says "${p.more}" with 7 members`);
  check(JSON.stringify(p.names) === JSON.stringify(["Ann", "bot2", "bot3", "bot4", "bot5", "bot6", "bot7"]), `the list shows ${p.names}`);
  // Within the limit again: a join line for the next one.
  await joinBots(15, 15);
  await a.waitForFunction(() => [...document.querySelectorAll('[data-testid="system-line"][data-event="join"]')].some((e) => e.dataset.name === "bot15"));
  await waitMember(a, "bot15");
  await ca.close();
});

function accessLog() {
  return fs.readFileSync(path.join(apacheDir, "logs/access.log"), "utf8");
}

async function statusJson() {
  const res = await fetch(`${base()}/ws/status`);
  check(res.status === 200, `status answered ${res.status}`);
  return res.json();
}

test("chat-over-http2", async () => {
  // The page over https with HTTP/2 (self-signed certificate, so
  // ignoreHTTPSErrors): Chromium opens its WebSocket as an RFC 8441 stream on
  // the page's h2 connection, which mod_http2 hands to the module. Its
  // partner is on plain http (HTTP/1.1). Proof that the socket went over
  // h2: the status counter accepted_h2 while it is open, and the access
  // log's request line (written when an h2 WebSocket ends).
  const room = uniq("h2");
  const h2Lines = () => (accessLog().match(/"GET \/ws\/chat\?name=Hana HTTP\/2\.0" 101 /g) || []).length;
  const before = (await statusJson()).apps.chat.accepted_h2;
  const ch = await newContext({ ignoreHTTPSErrors: true });
  const cp = await newContext();
  const h = await openChat(ch, "Hana", room, null, tlsBase());
  check(await h.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol) === "h2",
    "the https page did not load over h2");
  const p = await openChat(cp, "Piet", room);
  await waitMember(h, "Piet");
  await send(h, "sent over an HTTP/2 stream");
  await waitText(p, "sent over an HTTP/2 stream");
  await send(p, "answered over HTTP/1.1");
  await waitText(h, "answered over HTTP/1.1");
  check((await statusJson()).apps.chat.accepted_h2 === before + 1, "status: accepted_h2 did not count Hana's WebSocket");
  // A graceful restart closes the h2 stream with 1001 (its access log line
  // appears) and mod_http2 sends GOAWAY; the page reconnects and goes on.
  // Chromium puts a WebSocket on HTTP/2 only when an h2 connection to the
  // host is open already, so this reconnect may go over HTTP/1.1: either works.
  await recordStates(h);
  const r = instance("reload");
  check(r.status === 0, `instance.sh reload failed: ${r.stderr}`);
  await h.waitForFunction(() => window.__states.at(-1) === "live" && window.__states.includes("reconnecting"), null, { timeout: 20_000 });
  await waitLive(p);
  await send(h, "after the restart");
  await waitText(p, "after the restart");
  check(h2Lines() === 1, `access log: ${h2Lines()} HTTP/2 WebSockets of Hana's ended, want 1 (closed by the restart)`);
  await ch.close();
  await cp.close();
});

// pusher-js and the `pusher` server library come from tests/pusher/ (pinned
// there); installed here when missing, before any timer runs (setup.sh
// prints nothing and returns at once when they are present).
const pusherModules = path.join(root, "tests/pusher/node_modules");
const pusherJsFile = path.join(pusherModules, "pusher-js/dist/web/pusher.min.js");
if ((!process.env.TESTS || "pusher-js".includes(process.env.TESTS)) &&
    !(fs.existsSync(pusherJsFile) && fs.existsSync(path.join(pusherModules, "pusher/package.json")))) {
  spawnSync(path.join(root, "tests/pusher/setup.sh"), [], { env: { ...process.env, PUSHER_NO_SOKETI: "1" }, stdio: "inherit", timeout: 300_000 });
}

test("pusher-js", async () => {
  // The browser build of pusher-js against the module's Pusher endpoint
  // (/app/<key>, WebSocket only), with the events and the channel auths
  // made in Node by the real `pusher` library: a public channel gets an event
  // triggered through the HTTP API, and two pages in one presence channel
  // see each other (and the one that stays sees the other leave).
  const env = Object.fromEntries(fs.readFileSync(path.join(apacheDir, "pusher.env"), "utf8").trim().split("\n")
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  const { PUSHER_APP_ID: appId, PUSHER_APP_KEY: key, PUSHER_APP_SECRET: secret } = env;
  const PusherServer = createRequire(import.meta.url)(path.join(pusherModules, "pusher"));
  const server = new PusherServer({ appId, key, secret, host: "127.0.0.1", port: String(port), useTLS: false });
  const script = fs.readFileSync(pusherJsFile);
  const authorized = [];

  // The document is one of Apache's (any page of this origin will do:
  // Chromium lets a page reach 127.0.0.1 only when it came from there), the
  // library is served by the test (page.route), so nothing is added to
  // htdocs/; the WebSocket goes to Apache.
  const openPage = async (ctx, user) => {
    const page = await ctx.newPage();
    page.on("pageerror", (e) => pageErrors.push(`pusher ${user}: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`pusher ${user} console: ${m.text()}`); });
    await page.route(`${base()}/__test/pusher.min.js`, (route) => route.fulfill({ contentType: "text/javascript", body: script }));
    // pusher-js's channelAuthorization.customHandler calls back into Node,
    // where the library signs the subscription for this page's user.
    await page.exposeFunction("authorizeInNode", (socketId, channel) => {
      authorized.push({ user, channel });
      return server.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: `${user[0].toUpperCase()}${user.slice(1)}` } });
    });
    await page.goto(`${base()}/ws/status?format=json`);
    await page.addScriptTag({ url: "/__test/pusher.min.js" });
    await page.evaluate(({ key, port }) => new Promise((resolve, reject) => {
      window.client = new window.Pusher(key, {
        cluster: "mt1", wsHost: "127.0.0.1", wsPort: port, forceTLS: false, enabledTransports: ["ws"],
        channelAuthorization: {
          customHandler: ({ socketId, channelName }, callback) =>
            window.authorizeInNode(socketId, channelName).then((auth) => callback(null, auth), (e) => callback(e, null)),
        },
      });
      window.client.connection.bind("connected", resolve);
      window.client.connection.bind("unavailable", () => reject(new Error("pusher-js: connection unavailable")));
      window.client.connection.bind("failed", () => reject(new Error("pusher-js: connection failed")));
    }), { key, port });
    return page;
  };
  // Subscribes in the page; resolves once subscription_succeeded arrived.
  const subscribe = (page, channel, event) => page.evaluate(({ channel, event }) => new Promise((resolve, reject) => {
    window.got = window.got || [];
    window.added = [];
    window.removed = [];
    const ch = window.client.subscribe(channel);
    if (event) ch.bind(event, (data) => window.got.push(data));
    ch.bind("pusher:member_added", (m) => window.added.push(m.id));
    ch.bind("pusher:member_removed", (m) => window.removed.push(m.id));
    ch.bind("pusher:subscription_error", (e) => reject(new Error(`subscription_error: ${JSON.stringify(e)}`)));
    ch.bind("pusher:subscription_succeeded", () => resolve());
  }), { channel, event });
  const members = (page, channel) => page.evaluate((channel) => {
    const ch = window.client.channel(channel);
    const list = [];
    ch.members.each((m) => list.push([m.id, m.info]));
    return { me: ch.members.me?.id, count: ch.members.count, all: Object.fromEntries(list.sort()) };
  }, channel);

  // A wait that says what it waited for and what the page had instead.
  const waitIn = async (page, what, fn, arg) => {
    try {
      await page.waitForFunction(fn, arg);
    } catch (e) {
      const seen = await page.evaluate(() => JSON.stringify({ got: window.got, added: window.added, removed: window.removed,
        state: window.client?.connection.state })).catch(() => "?");
      throw new Error(`${what}: ${String(e.message).split("\n")[0]}; the page has ${seen}`);
    }
  };

  const ca = await newContext();
  const cb = await newContext();
  const a = await openPage(ca, "ann");
  const socketId = await a.evaluate(() => window.client.connection.socket_id);
  check(/^\d+\.\d+$/.test(socketId), `socket_id ${socketId}`);

  // A public channel and an event from Node through the signed HTTP API.
  const news = uniq("news");
  await subscribe(a, news, "headline");
  const sent = { text: "Hello from Node", n: 42, tags: ["a", "ü"] };
  const res = await server.trigger(news, "headline", sent);
  check(res.status === 200, `trigger answered ${res.status}`);
  await waitIn(a, "the triggered event", () => window.got.length >= 1);
  const got = await a.evaluate(() => window.got);
  check(got.length === 1 && JSON.stringify(got[0]) === JSON.stringify(sent), `the page got ${JSON.stringify(got)}`);

  // A presence channel: Ann first, then Ben on a second page.
  const room = `presence-${uniq("room")}`;
  await subscribe(a, room);
  const b = await openPage(cb, "ben");
  await subscribe(b, room);
  await waitIn(a, "Ann's page: member_added for Ben", () => window.added.includes("ben"));
  await waitIn(b, "Ben's page: two members", (room) => window.client.channel(room).members.count === 2, room);
  const ma = await members(a, room), mb = await members(b, room);
  const both = JSON.stringify({ ann: { name: "Ann" }, ben: { name: "Ben" } });
  check(ma.me === "ann" && ma.count === 2 && JSON.stringify(ma.all) === both, `Ann's page sees ${JSON.stringify(ma)}`);
  check(mb.me === "ben" && mb.count === 2 && JSON.stringify(mb.all) === both, `Ben's page sees ${JSON.stringify(mb)}`);
  check(authorized.map((x) => `${x.user}:${x.channel}`).join() === `ann:${room},ben:${room}`,
    `Node signed ${JSON.stringify(authorized)}: only the presence subscriptions should ask`);
  // Ben's page goes away: Ann sees him leave.
  await b.evaluate(() => window.client.disconnect());
  await waitIn(a, "Ann's page: member_removed for Ben", () => window.removed.includes("ben"));
  check((await members(a, room)).count === 1, "Ann's page still counts Ben");
  await a.evaluate(() => window.client.disconnect());
  await ca.close();
  await cb.close();
});

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  port = await freePort();
  tlsPort = await freePort();
  let t = Date.now();
  startApache();
  timings.push(["apache-start", Date.now() - t]);
  t = Date.now();
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: !process.env.HEADED,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  timings.push(["browser-launch", Date.now() - t]);
  const only = process.env.TESTS; // not ONLY: scripts/run-tests.sh uses that one
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const start = Date.now();
    const errorsBefore = pageErrors.length;
    try {
      await withTimeout(t.fn(), TEST_TIMEOUT_MS, "test");
      const errs = pageErrors.slice(errorsBefore);
      check(errs.length === 0, `JavaScript errors on the page: ${errs.join("; ")}`);
      results.push({ name: t.name, ok: true });
      console.log(`ok ${t.name}`);
    } catch (err) {
      results.push({ name: t.name, ok: false });
      console.log(`FAIL ${t.name}: ${String(err.message || err).split("\n")[0]}`);
      if (process.env.DEBUG_STACK) console.log(err.stack, pageErrors);
    }
    timings.push([t.name, Date.now() - start]);
    // A test that failed may have left contexts open; start clean.
    for (const ctx of browser.contexts()) await ctx.close().catch(() => {});
  }
}

const globalTimer = setTimeout(async () => {
  results.push({ name: "global-timeout", ok: false });
  console.log(`FAIL global-timeout: the run took longer than ${GLOBAL_TIMEOUT_MS / 1000} s`);
  await cleanup();
  report();
  process.exit(1);
}, GLOBAL_TIMEOUT_MS);

try {
  await main();
} catch (err) {
  results.push({ name: "setup", ok: false });
  console.log(`FAIL setup: ${String(err.message || err).split("\n")[0]}`);
} finally {
  clearTimeout(globalTimer);
  await cleanup();
  report();
  process.exit(); // don't wait for fetch's idle keep-alive sockets
}
