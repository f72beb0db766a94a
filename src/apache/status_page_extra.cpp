// status-extra.js of the status page (see status_page.h): the panels for
// the Pusher webhooks, the backend bridge and the capacity. status.js hands
// it each poll's figures and its helpers with a "wsb:status" event on the
// document; this script is loaded before status.js, so it always listens in
// time. Text goes in with textContent (fillKv, node), so nothing from the
// figures is ever parsed as HTML.
#include "apache/status_page.h"

namespace wsb {

namespace {

constexpr std::string_view kExtraScript = R"js(// mod_wsbridge status page: the webhook, backend and capacity panels.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const LABELS = {
    scope: "counted by", targets: "webhook targets", sent_batches: "batches sent", sent_events: "events sent",
    failed_attempts: "failed attempts", dropped_events: "events dropped",
    requests: "requests", opens_refused: "opens refused by the backend", mean_latency: "mean request time",
    channels_here: "GRIP channels here", subscriptions_here: "GRIP subscriptions here",
    reserve: "workers kept for plain HTTP", per_child_limit: "WebSockets per child at most",
    max_connections: "WSBridgeMaxConnections", mpm_limit: "MPM workers", open_here: "open in this child",
  };

  function renderWebhooks(s, fillKv, node) {
    const dl = $("webhooks");
    $("webhooks-pid").textContent = `child ${s.pid}`;
    const w = s.webhooks;
    if (!w) {
      dl.replaceChildren(node("dd", { class: "empty" },
        "No webhook thread in this child (no WSBridgePusherWebhook, or its hub has not started)."));
      return;
    }
    fillKv(dl, { scope: `this child only (${s.pid})`, targets: w.targets, sent_batches: w.sent_batches,
      sent_events: w.sent_events, failed_attempts: w.failed_attempts, dropped_events: w.dropped_events }, LABELS);
    for (const k of ["failed_attempts", "dropped_events"]) {
      const dd = dl.querySelector(`dd[data-key="${k}"]`);
      if (dd && w[k]) dd.className = "warn";
    }
  }

  function renderBackend(s, fillKv, node) {
    const b = s.backend;
    const dl = $("backend");
    if (!b) { dl.replaceChildren(node("dd", { class: "empty" }, "No figures.")); return; }
    const mean = b.requests ? `${(b.latency_sum_us / b.requests / 1000).toFixed(1)} ms` : "";
    const failures = Object.fromEntries(Object.entries(b.failures || {}).map(([k, v]) => [`failed_${k}`, v]));
    const labels = { ...LABELS };
    for (const k of Object.keys(b.failures || {})) labels[`failed_${k}`] = `failures: ${k.replace(/_/g, " ")}`;
    fillKv(dl, { requests: b.requests, mean_latency: mean, opens_refused: b.opens_refused, ...failures,
      channels_here: b.channels_here, subscriptions_here: b.subscriptions_here }, labels);
    for (const k of Object.keys(failures)) {
      const dd = dl.querySelector(`dd[data-key="${k}"]`);
      if (dd && failures[k]) dd.className = "warn";
    }
  }

  function renderCapacity(s, fillKv, node) {
    const c = s.capacity;
    $("capacity-pid").textContent = `child ${s.pid}`;
    if (!c) { $("capacity").replaceChildren(node("dd", { class: "empty" }, "No figures.")); return; }
    fillKv($("capacity"), c, LABELS);
  }

  document.addEventListener("wsb:status", (e) => {
    const { s, fillKv, node } = e.detail;
    renderWebhooks(s, fillKv, node);
    renderBackend(s, fillKv, node);
    renderCapacity(s, fillKv, node);
  });
})();
)js";

}  // namespace

StatusAsset status_page_extra_script() {
  return {"status-extra.js", "text/javascript; charset=utf-8", kExtraScript};
}

}  // namespace wsb
