#include "apache/pusher_webhooks.h"

#include <ap_listen.h>
#include <http_log.h>
#include <apr_network_io.h>

#include <cstring>
#include <set>

#include "apache/config.h"

APLOG_USE_MODULE(wsbridge);

namespace wsb {

namespace {

constexpr int kTimeoutMs = 5000;  // one POST, connect to last header

// A local path goes to this server's own plain-HTTP listener (loopback when
// it listens on every address), with the Host of the server that configured
// it, so the request is routed like any other (see README, design).
bool local_listener(server_rec* s, std::string* host, int* port) {
  const ap_listen_rec* pick = nullptr;
  for (const ap_listen_rec* lr = ap_listeners; lr; lr = lr->next) {
    if (!lr->bind_addr || (lr->protocol && strcasecmp(lr->protocol, "http") != 0)) continue;
    if (!pick) pick = lr;
    if (s->port && lr->bind_addr->port == s->port) {
      pick = lr;
      break;
    }
  }
  if (!pick) return false;
  char* ip = nullptr;
  apr_sockaddr_ip_get(&ip, pick->bind_addr);
  std::string addr = ip ? ip : "";
  if (addr.empty() || addr == "0.0.0.0") addr = "127.0.0.1";
  else if (addr == "::") addr = "::1";
  *host = addr;
  *port = pick->bind_addr->port;
  return true;
}

}  // namespace

std::unique_ptr<WebhookDispatcher> start_pusher_webhooks(server_rec* main) {
  std::vector<WebhookTarget> targets;
  std::set<std::string> seen;  // a vhost that inherits the main server's webhooks sends them once
  // https: WSBridgePusherWebhookCA's files were loaded with the
  // configuration (config.cpp); the system's store is made here, once.
  std::shared_ptr<const TlsClientContext> system_cas;
  auto trust_for = [&](const char* ca, std::string* why) -> std::shared_ptr<const TlsClientContext> {
    if (ca) {  // loaded with the configuration; a file that did not load stopped the start
      std::shared_ptr<const TlsClientContext> loaded = loaded_webhook_ca(ca);
      if (!loaded) *why = std::string("WSBridgePusherWebhookCA ") + ca + " was not loaded";
      return loaded;
    }
    if (!system_cas) system_cas = TlsClientContext::create("", why);
    return system_cas;
  };
  for (server_rec* s = main; s; s = s->next) {
    const ServerConfig* sc = server_config(s);
    if (!sc->pusher_webhooks) continue;
    const auto* defs = reinterpret_cast<const PusherWebhookDef*>(sc->pusher_webhooks->elts);
    for (int i = 0; i < sc->pusher_webhooks->nelts; ++i) {
      const PusherWebhookDef& d = defs[i];
      const PusherAppDef* app = find_pusher_app(sc, nullptr, d.app_id);
      if (!app) continue;
      std::string id = std::string(app->id) + '\n' + d.target + '\n' + std::to_string(d.events) + '\n' +
                       app->secret + '\n' + (sc->webhook_ca ? sc->webhook_ca : "");
      if (!seen.insert(id).second) continue;
      WebhookUrl url;
      std::string why;
      if (!parse_webhook_url(d.target, &url, &why)) continue;  // checked at config time
      WebhookTarget t;
      t.ns = std::string("pusher/") + app->id;
      t.app_key = app->key;
      t.secret = app->secret;
      t.url = d.target;
      t.events = d.events;
      t.path = url.path;
      if (url.local) {
        server_rec* owner = d.server ? d.server : s;
        if (!local_listener(owner, &t.host, &t.port)) {
          ap_log_error(APLOG_MARK, APLOG_ERR, 0, main,
                       "wsbridge: WSBridgePusherWebhook %s %s: this server has no plain-HTTP listener to "
                       "send the local path to; this webhook is off", d.app_id, d.target);
          continue;
        }
        t.host_header = owner->server_hostname ? owner->server_hostname : "localhost";
        if (owner->port && owner->port != 80) t.host_header += ":" + std::to_string(owner->port);
      } else {
        t.host = url.host;
        t.port = url.port;
        t.host_header = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
        if (url.port != (url.tls ? 443 : 80)) t.host_header += ":" + std::to_string(url.port);
        if (url.tls) {
          t.tls = trust_for(sc->webhook_ca, &why);
          if (!t.tls) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, main, "wsbridge: WSBridgePusherWebhook %s %s: %s; this webhook is off",
                         d.app_id, d.target, why.c_str());
            continue;
          }
        }
      }
      targets.push_back(std::move(t));
    }
  }
  if (targets.empty()) return nullptr;
  auto log = [main](bool error, const std::string& line) {
    ap_log_error(APLOG_MARK, error ? APLOG_ERR : APLOG_WARNING, 0, main, "wsbridge: %s", line.c_str());
  };
  return std::make_unique<WebhookDispatcher>(std::move(targets), WebhookPolicy(), kTimeoutMs, log);
}

}  // namespace wsb
