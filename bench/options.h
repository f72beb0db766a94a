// Command line of the load generator (see usage() in loadgen.cpp).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace lg {

enum class Mode { Broadcast, Echo, Connect };
enum class Proto { Chat, Raw };

struct Options {
  Mode mode = Mode::Broadcast;
  Proto proto = Proto::Chat;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string path = "/ws/chat";
  bool tls = false;          // wss://: TLS through OpenSSL, certificate not verified (loopback)
  int clients = 100;
  int senders = -1;          // broadcast: default 10; echo: every client
  double rate = 0;           // total msg/s over all senders; 0 = closed loop
  int window = 1;            // closed loop: messages in flight per sender
  size_t size = 64;          // text (chat) or payload (raw/echo) bytes
  double duration = 10;      // measured seconds
  double warmup = 1;         // seconds of traffic before the measurement
  double drain = 3;          // seconds to wait for the window's stragglers
  double hold = 20;          // connect: seconds the connections stay open idle
  bool join = false;         // connect + chat: every connection joins --room on open
  double settle_timeout = 120;  // connect --join: longest wait for the room to settle
  double quiet = 1;          // connect --join: settled = no frame for this long
  double connect_timeout = 30;
  double max_time = 0;       // hard cap on the run; 0 = derived
  int threads = 1;
  int concurrency = 200;     // handshakes in flight
  std::string room = "bench";
  bool self_receive = true;  // a sender receives its own broadcast
  std::vector<int> server_pids;
  std::vector<std::string> pid_files;
  std::string label;
  bool pss = true;           // read smaps_rollup (slower with many processes)
};

inline bool parse_double(const char* s, double* out) {
  char* end;
  *out = std::strtod(s, &end);
  return end != s && *end == 0;
}

// ws:// or wss://127.0.0.1:PORT/PATH; only loopback is accepted.
inline bool parse_url(const std::string& url, Options* o) {
  o->tls = url.compare(0, 6, "wss://") == 0;
  const std::string scheme = o->tls ? "wss://" : "ws://";
  if (url.compare(0, scheme.size(), scheme) != 0) return false;
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string hostport = slash == std::string::npos ? rest : rest.substr(0, slash);
  o->path = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  o->host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  o->port = colon == std::string::npos ? (o->tls ? 443 : 80) : std::atoi(hostport.c_str() + colon + 1);
  if (o->host == "localhost") o->host = "127.0.0.1";
  return o->host == "127.0.0.1" && o->port > 0 && o->port < 65536;
}

inline void parse_pid_list(const char* s, std::vector<int>* out) {
  while (*s) {
    char* end;
    long v = std::strtol(s, &end, 10);
    if (end == s) break;
    if (v > 0) out->push_back(static_cast<int>(v));
    s = *end ? end + 1 : end;
  }
}

// Returns an error message, or an empty string.
inline std::string parse_options(int argc, char** argv, Options* o) {
  if (argc < 2) return "missing mode";
  std::string mode = argv[1];
  if (mode == "broadcast") o->mode = Mode::Broadcast;
  else if (mode == "echo") o->mode = Mode::Echo;
  else if (mode == "connect") o->mode = Mode::Connect;
  else return "unknown mode " + mode;
  if (o->mode == Mode::Echo) o->path = "/ws/echo";
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--no-self-receive") { o->self_receive = false; continue; }
    if (k == "--no-pss") { o->pss = false; continue; }
    if (k == "--join") { o->join = true; continue; }
    if (i + 1 >= argc) return "missing value for " + k;
    const char* v = argv[++i];
    double d = 0;
    bool num = parse_double(v, &d);
    if (k == "--url") { if (!parse_url(v, o)) return std::string("bad url (ws:// or wss://127.0.0.1:PORT/path only): ") + v; }
    else if (k == "--proto") {
      if (!std::strcmp(v, "chat")) o->proto = Proto::Chat;
      else if (!std::strcmp(v, "raw")) o->proto = Proto::Raw;
      else return std::string("bad --proto ") + v;
    }
    else if (k == "--room") o->room = v;
    else if (k == "--label") o->label = v;
    else if (k == "--server-pids") parse_pid_list(v, &o->server_pids);
    else if (k == "--pid-file") o->pid_files.push_back(v);
    else if (!num) return "bad number for " + k + ": " + v;
    else if (k == "--clients") o->clients = static_cast<int>(d);
    else if (k == "--senders") o->senders = static_cast<int>(d);
    else if (k == "--rate") o->rate = d;
    else if (k == "--window") o->window = static_cast<int>(d);
    else if (k == "--size") o->size = static_cast<size_t>(d);
    else if (k == "--duration") o->duration = d;
    else if (k == "--warmup") o->warmup = d;
    else if (k == "--drain") o->drain = d;
    else if (k == "--hold") o->hold = d;
    else if (k == "--settle-timeout") o->settle_timeout = d;
    else if (k == "--quiet") o->quiet = d;
    else if (k == "--connect-timeout") o->connect_timeout = d;
    else if (k == "--max-time") o->max_time = d;
    else if (k == "--threads") o->threads = static_cast<int>(d);
    else if (k == "--concurrency") o->concurrency = static_cast<int>(d);
    else return "unknown option " + k;
  }
  if (o->senders < 0) o->senders = o->mode == Mode::Echo ? o->clients : 10;
  if (o->mode == Mode::Echo) o->senders = o->clients;
  if (o->senders > o->clients) o->senders = o->clients;
  if (o->clients < 1 || o->threads < 1 || o->threads > 64 || o->window < 1 || o->concurrency < 1)
    return "clients, threads, window and concurrency must be >= 1 (threads <= 64)";
  if (o->mode != Mode::Connect && o->size < 40) return "--size must be >= 40 (the text carries a 33-byte stamp)";
  if (o->duration <= 0 || o->warmup < 0 || o->drain < 0 || o->rate < 0) return "bad duration/warmup/drain/rate";
  if (o->join && (o->mode != Mode::Connect || o->proto != Proto::Chat)) return "--join is for connect --proto chat";
  if (o->settle_timeout <= 0 || o->quiet <= 0) return "bad settle-timeout/quiet";
  if (o->max_time <= 0)
    o->max_time = o->connect_timeout + 15 + o->warmup + o->drain + (o->mode == Mode::Connect ? o->hold : o->duration) +
                  (o->join ? o->settle_timeout + o->quiet : 0);
  return "";
}

}  // namespace lg
