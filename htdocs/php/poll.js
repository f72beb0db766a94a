// The PHP demo's live poll. One WebSocket to /ws/php; the backend
// (poll-backend.php) sends JSON messages:
//   {type:"poll", question, options:[{id,label}], votes:{id:n}, total, version}  on connect
//   {type:"tally", votes, total, version}      to every page after each vote
//   {type:"voted", option}                     to the voter
//   {type:"error", code, message}              to the sender of a bad message
// and takes {type:"vote", option:id}.

const el = (id) => document.getElementById(id);
const conn = el("conn");
const optionsList = el("options");

const poll = {
  options: [],     // [{id, label}]
  votes: {},       // id -> count
  total: 0,
  version: -1,     // the newest tally shown (a publish can overtake the first answer)
  voted: null,     // the option this connection voted for
  pending: false,  // a vote is on its way
};
let ws = null;
let retries = 0;
let noticeTimer = 0;

function setConn(state, text) {
  conn.dataset.state = state;
  conn.querySelector(".conn-text").textContent = text;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws/php`);
  ws.onopen = () => {
    retries = 0;
    poll.version = -1;  // a new connection: take whatever tally comes first
    poll.voted = null;  // and a new vote (the server counts one per connection)
    poll.pending = false;
    setConn("live", "Live");
  };
  ws.onmessage = (e) => {
    let msg;
    try { msg = JSON.parse(e.data); } catch { return; }
    onMessage(msg);
  };
  ws.onclose = () => {
    ws = null;
    poll.pending = false;
    setConn("reconnecting", "Reconnecting…");
    render();
    // Back off up to 10 s, with some jitter so a restarted server is not hit all at once.
    const delay = Math.min(10_000, 500 * 2 ** retries++) * (0.8 + Math.random() * 0.4);
    setTimeout(connect, delay);
  };
}

function onMessage(msg) {
  switch (msg.type) {
    case "poll":
      el("question").textContent = msg.question;
      el("poll").setAttribute("aria-busy", "false");
      poll.options = msg.options;
      applyTally(msg);
      break;
    case "tally":
      applyTally(msg);
      break;
    case "voted":
      poll.voted = msg.option;
      poll.pending = false;
      announce(`Your vote for “${labelOf(msg.option)}” was counted.`);
      render();
      break;
    case "error":
      poll.pending = false;
      showNotice(msg.message || "The server refused that.");
      render();
      break;
  }
}

function applyTally(t) {
  if (t.version < poll.version) return;  // older than what is on screen
  poll.version = t.version;
  poll.votes = t.votes;
  poll.total = t.total;
  render();
}

function vote(id) {
  if (!ws || ws.readyState !== WebSocket.OPEN || poll.voted || poll.pending) return;
  poll.pending = true;
  ws.send(JSON.stringify({ type: "vote", option: id }));
  render();
}

const labelOf = (id) => poll.options.find((o) => o.id === id)?.label ?? id;

// Rebuilds the list: a button per option, its bar as wide as its share.
function render() {
  const canVote = ws && ws.readyState === WebSocket.OPEN && !poll.voted && !poll.pending;
  const rows = poll.options.map(({ id, label }) => {
    const count = poll.votes[id] ?? 0;
    const share = poll.total ? Math.round((count / poll.total) * 100) : 0;
    let li = optionsList.querySelector(`li[data-option="${CSS.escape(id)}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.testid = "poll-option";
      li.dataset.option = id;
      li.innerHTML = '<button type="button" class="vote" data-testid="vote-button">' +
        '<span class="bar"></span><span class="label"></span><span class="yours" hidden>Your vote</span>' +
        '<span class="count" data-testid="option-count"></span></button>';
      li.querySelector("button").addEventListener("click", () => vote(id));
    }
    li.querySelector(".label").textContent = label;  // text, never markup
    li.dataset.count = String(count);
    li.classList.toggle("mine", poll.voted === id);
    li.querySelector(".yours").hidden = poll.voted !== id;
    li.querySelector(".bar").style.width = `${share}%`;
    li.querySelector(".count").textContent = `${count} · ${share}%`;
    const button = li.querySelector("button");
    button.disabled = !canVote;
    button.setAttribute("aria-pressed", String(poll.voted === id));
    button.setAttribute("aria-label", `${label}: ${count} vote${count === 1 ? "" : "s"}, ${share}%`);
    return li;
  });
  optionsList.replaceChildren(...rows);
  const total = el("total");
  total.dataset.total = String(poll.total);
  total.textContent = poll.options.length === 0 ? "" :
    `${poll.total} vote${poll.total === 1 ? "" : "s"} · ` +
    (poll.voted ? "thanks for voting" : poll.pending ? "sending your vote…" : canVote ? "click an option to vote" : "waiting for the server…");
}

function showNotice(text) {
  const notice = el("notice");
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, 6000);
}

function announce(text) {
  el("announcer").textContent = text;
}

connect();
