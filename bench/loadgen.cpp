// WebSocket load generator for mod_wsbridge and its peers (docs/benchmark.md).
//
//   loadgen broadcast|echo|connect [--url ws://127.0.0.1:PORT/path] [options]
//
// A run: connect every client (at most --concurrency handshakes in flight),
// join the room (chat protocol), send for --warmup + --duration seconds,
// measure over the last --duration, wait up to --drain for the measured
// messages' deliveries, close. Output: one human line, then one JSON line.
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "options.h"
#include "proc_stats.h"
#include "worker.h"

namespace lg {
namespace {

const char kUsage[] =
    "usage: loadgen broadcast|echo|connect [options]\n"
    "  --url ws://127.0.0.1:PORT/PATH  endpoint (default ws://127.0.0.1:8080/ws/chat, echo: /ws/echo);\n"
    "                      wss:// for TLS (OpenSSL; the certificate is not verified, loopback only)\n"
    "  --proto chat|raw    chat: join --room, send chat messages (default); raw: text frames,\n"
    "                      every frame sent is expected back from the server at every client\n"
    "  --clients N         connections (100)\n"
    "  --senders S         broadcast: clients that also send (10)\n"
    "  --rate R            total messages/s over all senders; 0 = closed loop (0)\n"
    "  --window W          closed loop: messages in flight per sender (1)\n"
    "  --size B            text bytes per message, >= 40 (64)\n"
    "  --duration D --warmup W --drain D   seconds (10, 1, 3)\n"
    "  --hold H            connect: seconds the idle connections are held (20)\n"
    "  --join              connect, chat: every connection joins --room on open; reports when\n"
    "                      the room settles (every presence in, then --quiet s without a frame)\n"
    "  --settle-timeout S --quiet S   connect --join: bounds (120, 1)\n"
    "  --threads T         worker threads (1)\n"
    "  --concurrency N     handshakes in flight (200)\n"
    "  --connect-timeout S per connection and for the whole connect phase (30)\n"
    "  --max-time S        hard limit for the run (derived)\n"
    "  --server-pids P,P   --pid-file F   server processes (with their children) for CPU/RSS\n"
    "  --no-self-receive   a sender does not get its own broadcast back (raw peers)\n"
    "  --no-pss            skip /proc/PID/smaps_rollup\n"
    "  --label NAME        copied into the JSON\n";

void raise_nofile(size_t need) {
  rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  rlim_t want = std::max<rlim_t>(r.rlim_cur, need);
  if (r.rlim_max < want) {
    rlimit big{want, want};
    if (setrlimit(RLIMIT_NOFILE, &big) == 0) return;
    want = r.rlim_max;
  }
  r.rlim_cur = want;
  setrlimit(RLIMIT_NOFILE, &r);
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < need)
    std::fprintf(stderr, "loadgen: RLIMIT_NOFILE is %lu, %zu connections need %zu\n",
                 static_cast<unsigned long>(r.rlim_cur), need - 64, need);
}

void sleep_until(int64_t t) {
  timespec ts{static_cast<time_t>(t / 1000000000), static_cast<long>(t % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void sleep_ms(int ms) { sleep_until(mono_ns() + int64_t{ms} * 1000000); }

double cpu_of(const rusage& r) {
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

// Small JSON object builder.
class Json {
 public:
  Json& num(const char* k, double v) {
    char b[64];
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(b, sizeof b, "%.0f", v);
    else if (std::isfinite(v)) std::snprintf(b, sizeof b, "%.6g", v);
    else std::snprintf(b, sizeof b, "null");
    return raw(k, b);
  }
  Json& str(const char* k, const std::string& v) {
    std::string e = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') e += '\\', e += c;
      else if (static_cast<unsigned char>(c) < 0x20) e += ' ';
      else e += c;
    }
    return raw(k, e + "\"");
  }
  Json& raw(const char* k, const std::string& v) {
    s_ += s_.empty() ? "{" : ",";
    s_ += "\"" + std::string(k) + "\":" + v;
    return *this;
  }
  std::string done() const { return (s_.empty() ? "{" : s_) + "}"; }

 private:
  std::string s_;
};

std::string latency_json(const Histogram& h) {
  Json j;
  j.num("count", static_cast<double>(h.count()))
      .num("p50", h.quantile(0.50) / 1e3)
      .num("p90", h.quantile(0.90) / 1e3)
      .num("p99", h.quantile(0.99) / 1e3)
      .num("p999", h.quantile(0.999) / 1e3)
      .num("max", h.max() / 1e3)
      .num("mean", h.mean() / 1e3);
  return j.done();
}

std::string ms(uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", ns / 1e6);
  return b;
}

const char* mode_name(Mode m) {
  return m == Mode::Broadcast ? "broadcast" : m == Mode::Echo ? "echo" : "connect";
}

}  // namespace

int run(const Options& o) {
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(static_cast<size_t>(o.clients) + 64);
  std::vector<int> roots = o.server_pids;
  for (const std::string& f : o.pid_files) {
    int p = read_pid_file(f);
    if (p > 0) roots.push_back(p);
    else std::fprintf(stderr, "loadgen: no pid in %s\n", f.c_str());
  }
  const bool server = !roots.empty();
  const int64_t t_begin = mono_ns();
  const int64_t deadline = t_begin + static_cast<int64_t>(o.max_time * 1e9);
  bool timed_out = false;

  ServerSnapshot idle;
  if (server) idle = snapshot(roots, o.pss);

  Shared sh;
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < o.threads; ++i) workers.emplace_back(new Worker(o, sh, i));
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  auto sum = [&](auto field) {
    long long s = 0;
    for (auto& w : workers) s += static_cast<long long>((w.get()->*field).load(std::memory_order_relaxed));
    return s;
  };

  // Connect.
  const int64_t connect_deadline =
      std::min(deadline, t_begin + static_cast<int64_t>((o.connect_timeout + 5) * 1e9));
  while (sum(&Worker::pub_done) < o.clients && mono_ns() < connect_deadline) sleep_ms(10);
  const int64_t t_connected = mono_ns();
  long long connected = sum(&Worker::pub_open);
  long long members = connected;
  if (o.mode == Mode::Broadcast && o.proto == Proto::Chat) {
    int64_t until = std::min(deadline, mono_ns() + int64_t{10000000000});
    while (sum(&Worker::pub_joined) < sum(&Worker::pub_open) && mono_ns() < until) sleep_ms(10);
    sleep_ms(500);  // let the join storm (system + presence frames) pass
    members = sum(&Worker::pub_joined);
  }

  ServerSnapshot s_a, s_b, held_snap;
  rusage ru_a{}, ru_b{};
  long long held = 0;
  int64_t t0 = 0, t1 = 0;
  double fanout = 0;
  long long sent_window = 0, recv_window = 0;
  // Connect mode: the server's CPU over the connect phase (from the idle
  // snapshot, taken before the first connect) per handshake.
  ServerSnapshot s_connected;
  rusage ru_connected{};
  int64_t settle_last_rx = 0;
  long long join_frames = 0;
  bool settled = false;
  if (o.mode == Mode::Connect) {
    if (server) s_connected = snapshot(roots, false);
    getrusage(RUSAGE_SELF, &ru_connected);
  }
  if (o.mode == Mode::Connect && o.join && connected > 0) {
    // The room settles when every member has its presence and no frame
    // has arrived anywhere for --quiet seconds (the join storm is over).
    const int64_t quiet = static_cast<int64_t>(o.quiet * 1e9);
    const int64_t until = std::min(deadline - int64_t{5000000000},
                                   mono_ns() + static_cast<int64_t>(o.settle_timeout * 1e9));
    for (;;) {
      int64_t last = 0;
      for (auto& w : workers) last = std::max(last, w->pub_last_rx.load(std::memory_order_relaxed));
      int64_t now = mono_ns();
      if (sum(&Worker::pub_joined) >= sum(&Worker::pub_open) && last > 0 && now - last >= quiet) {
        settled = true;
        settle_last_rx = last;
        break;
      }
      if (now >= until) {
        settle_last_rx = last;
        break;
      }
      sleep_ms(20);
    }
    join_frames = sum(&Worker::pub_frames);
  }
  if (o.mode == Mode::Connect) {
    int64_t until = std::min(deadline - int64_t{5000000000}, mono_ns() + static_cast<int64_t>(o.hold * 1e9));
    while (mono_ns() < until) sleep_ms(50);
    held = sum(&Worker::pub_open);
    if (server) held_snap = snapshot(roots, o.pss);
  } else if (connected > 0) {
    fanout = o.mode == Mode::Echo ? 1 : static_cast<double>(members - (o.self_receive ? 0 : 1));
    int64_t start = mono_ns() + 50000000;
    t0 = start + static_cast<int64_t>(o.warmup * 1e9);
    t1 = t0 + static_cast<int64_t>(o.duration * 1e9);
    sh.t_start.store(start);
    sh.t0.store(t0);
    sh.t1.store(t1);
    sh.phase.store(kPhaseRun, std::memory_order_release);
    sleep_until(t0);
    if (server) s_a = snapshot(roots, false);
    getrusage(RUSAGE_SELF, &ru_a);
    sleep_until(std::min(t1, deadline));
    if (server) s_b = snapshot(roots, false);
    getrusage(RUSAGE_SELF, &ru_b);
    int64_t until = std::min(deadline, t1 + static_cast<int64_t>(o.drain * 1e9));
    for (;;) {
      sent_window = sum(&Worker::pub_sent_window);
      recv_window = sum(&Worker::pub_recv_window);
      if (recv_window >= static_cast<long long>(sent_window * fanout) || mono_ns() >= until) break;
      sleep_ms(10);
    }
  }
  if (mono_ns() >= deadline) timed_out = true;
  sh.phase.store(kPhaseClose, std::memory_order_release);
  for (auto& t : threads) t.join();
  const long long joined_total = sum(&Worker::pub_joined);
  rusage ru_end;
  getrusage(RUSAGE_SELF, &ru_end);

  // Aggregate.
  WorkerStats s;
  Histogram lat, hs;
  std::vector<Worker::PidLatency> by_pid;
  s.first_connect = INT64_MAX;
  for (auto& w : workers) {
    const WorkerStats& x = w->st;
    s.sent += x.sent;
    s.recv += x.recv;
    s.arrived_window += x.arrived_window;
    s.other_frames += x.other_frames;
    s.error_frames += x.error_frames;
    s.rate_limited += x.rate_limited;
    s.connect_failed += x.connect_failed;
    s.handshake_failed += x.handshake_failed;
    s.dropped += x.dropped;
    s.server_closes += x.server_closes;
    s.proto_errors += x.proto_errors;
    s.skipped += x.skipped;
    s.stalls += x.stalls;
    s.max_send_lag = std::max(s.max_send_lag, x.max_send_lag);
    s.first_connect = std::min(s.first_connect, x.first_connect);
    s.last_handshake = std::max(s.last_handshake, x.last_handshake);
    s.first_join = std::min(s.first_join, x.first_join);
    s.last_join = std::max(s.last_join, x.last_join);
    if (s.first_error.empty()) s.first_error = x.first_error;
    if (s.tls.empty()) s.tls = x.tls;
    if (x.last_close_code) s.last_close_code = x.last_close_code;
    lat.merge(w->latency);
    hs.merge(w->handshake);
    for (const auto& bp : w->by_pid) {
      auto it = std::find_if(by_pid.begin(), by_pid.end(), [&](const Worker::PidLatency& x) { return x.pid == bp.pid; });
      if (it == by_pid.end()) {
        by_pid.emplace_back();
        it = by_pid.end() - 1;
        it->pid = bp.pid;
      }
      it->conns += bp.conns;
      it->latency.merge(bp.latency);
    }
  }
  std::sort(by_pid.begin(), by_pid.end(), [](const Worker::PidLatency& a, const Worker::PidLatency& b) { return a.pid < b.pid; });

  Json j;
  const bool chat = o.proto == Proto::Chat && o.mode != Mode::Echo;
  j.str("mode", mode_name(o.mode)).str("proto", chat ? "chat" : "raw");
  if (!o.label.empty()) j.str("label", o.label);
  j.str("url", (o.tls ? "wss://" : "ws://") + o.host + ":" + std::to_string(o.port) + o.path)
      .num("clients", o.clients)
      .num("threads", o.threads)
      .num("connected", static_cast<double>(connected))
      .num("connect_failed", static_cast<double>(s.connect_failed))
      .num("handshake_failed", static_cast<double>(s.handshake_failed));
  double hs_span = s.last_handshake > s.first_connect ? (s.last_handshake - s.first_connect) / 1e9 : 0;
  double hs_rate = hs_span > 0 ? connected / hs_span : 0;
  j.num("handshakes_per_sec", std::round(hs_rate)).raw("handshake_us", latency_json(hs).c_str());
  if (o.tls) j.str("tls", s.tls.empty() ? "none negotiated" : s.tls);
  char line[1024];
  std::string human;
  double client_cpu_window = 0;
  if (o.mode == Mode::Connect) {
    long rss0 = idle.rss_kib(), rss1 = held_snap.rss_kib();
    long pss0 = idle.pss_kib(), pss1 = held_snap.pss_kib();
    double per_rss = held > 0 && server ? static_cast<double>(rss1 - rss0) / held : 0;
    double per_pss = held > 0 && server && o.pss ? static_cast<double>(pss1 - pss0) / held : 0;
    j.num("hold_sec", o.hold).num("held", static_cast<double>(held));
    const double connect_sec = hs_span > 0 ? hs_span : 1;
    const double cli_connect = cpu_of(ru_connected);
    j.num("client_cpu_connect_cores", std::round(cli_connect / connect_sec * 1000) / 1000);
    if (server) {
      double cpu = cpu_between(idle, s_connected);
      j.num("server_cpu_connect_cores", std::round(cpu / connect_sec * 1000) / 1000)
          .num("server_cpu_us_per_handshake", connected > 0 ? std::round(cpu * 1e6 / connected * 10) / 10 : 0);
    }
    if (o.join) {
      long long members = joined_total;
      double join_all = s.last_join > s.first_join ? (s.last_join - s.first_join) / 1e6 : 0;
      double settle = settle_last_rx > s.first_join ? (settle_last_rx - s.first_join) / 1e6 : 0;
      j.num("members", static_cast<double>(members))
          .num("settled", settled ? 1 : 0)
          .num("join_all_ms", std::round(join_all))
          .num("settle_ms", std::round(settle))
          .num("join_frames", static_cast<double>(join_frames));
    }
    if (server) {
      j.num("server_processes_before", static_cast<double>(idle.procs.size()))
          .num("server_processes_after", static_cast<double>(held_snap.procs.size()))
          .num("server_threads_after", static_cast<double>(held_snap.threads()))
          .num("server_rss_kib_before", rss0)
          .num("server_rss_kib_after", rss1)
          .num("server_pss_kib_before", pss0)
          .num("server_pss_kib_after", pss1)
          .num("kib_per_conn_rss", std::round(per_rss * 10) / 10)
          .num("kib_per_conn_pss", std::round(per_pss * 10) / 10);
    }
    std::snprintf(line, sizeof line,
                  "connect: %lld/%d connected (%.0f handshakes/s, p50 %s ms, p99 %s ms), %lld held %.0f s",
                  connected, o.clients, hs_rate, ms(hs.quantile(0.5)).c_str(), ms(hs.quantile(0.99)).c_str(),
                  held, o.hold);
    human = line;
    if (o.join) {
      std::snprintf(line, sizeof line, "; %lld joined, room %s after %.0f ms (last join %.0f ms, %lld frames)",
                    joined_total, settled ? "settled" : "NOT settled",
                    settle_last_rx > s.first_join ? (settle_last_rx - s.first_join) / 1e6 : 0.0,
                    s.last_join > s.first_join ? (s.last_join - s.first_join) / 1e6 : 0.0, join_frames);
      human += line;
    }
    if (server) {
      std::snprintf(line, sizeof line, "; server RSS %ld -> %ld KiB (%.1f KiB/conn), PSS %.1f KiB/conn",
                    rss0, rss1, per_rss, per_pss);
      human += line;
      std::snprintf(line, sizeof line, "; server CPU %.0f us/handshake",
                    connected > 0 ? cpu_between(idle, s_connected) * 1e6 / connected : 0.0);
      human += line;
    }
  } else {
    double dur = t1 > t0 ? (t1 - t0) / 1e9 : 1;
    double expected = static_cast<double>(sent_window) * fanout;
    double ratio = expected > 0 ? recv_window / expected : 0;
    double delivered = dur > 0 ? s.arrived_window / dur : 0;
    client_cpu_window = cpu_of(ru_b) - cpu_of(ru_a);
    j.num("senders", o.senders)
        .num("rate", o.rate)
        .num("window", o.window)
        .num("size", static_cast<double>(o.size))
        .num("duration", dur)
        .num("members", static_cast<double>(members))
        .num("fanout", fanout)
        .num("sent", static_cast<double>(s.sent))
        .num("received_total", static_cast<double>(s.recv))
        .num("sent_window", static_cast<double>(sent_window))
        .num("sent_per_sec", std::round(sent_window / dur))
        .num("expected", expected)
        .num("received_window", static_cast<double>(recv_window))
        .num("delivery_ratio", std::round(ratio * 1e5) / 1e5)
        .num("delivered_per_sec", std::round(delivered))
        .raw("latency_us", latency_json(lat).c_str())
        .num("max_send_lag_ms", s.max_send_lag / 1e6)
        .num("skipped_sends", static_cast<double>(s.skipped))
        .num("stalls", static_cast<double>(s.stalls))
        .num("client_cpu_cores", std::round(client_cpu_window / dur * 1000) / 1000);
    std::snprintf(line, sizeof line,
                  "%s %s: %lld clients, %d senders, %s, %zu B: %.0f %s/s (ratio %.4f of %.0f expected), "
                  "latency p50 %s p90 %s p99 %s max %s ms; client CPU %.2f cores",
                  mode_name(o.mode), chat ? "chat" : "raw", connected, o.senders,
                  o.rate > 0 ? (std::to_string(static_cast<long>(o.rate)) + " msg/s").c_str()
                             : ("window " + std::to_string(o.window)).c_str(),
                  o.size, delivered, o.mode == Mode::Echo ? "round trips" : "deliveries", ratio, expected,
                  ms(lat.quantile(0.5)).c_str(), ms(lat.quantile(0.9)).c_str(), ms(lat.quantile(0.99)).c_str(),
                  ms(lat.max()).c_str(), client_cpu_window / dur);
    human = line;
    if (by_pid.size() > 1) {
      std::string arr = "[";
      human += "; by child:";
      for (const auto& bp : by_pid) {
        Json b;
        b.num("pid", static_cast<double>(bp.pid)).num("conns", bp.conns);
        std::string l = latency_json(bp.latency);
        arr += (arr.size() > 1 ? "," : "") + b.done().substr(0, b.done().size() - 1) + ",\"latency_us\":" + l + "}";
        std::snprintf(line, sizeof line, " pid %ld (%d conns) p50 %s p99 %s ms", bp.pid, bp.conns,
                      ms(bp.latency.quantile(0.5)).c_str(), ms(bp.latency.quantile(0.99)).c_str());
        human += line;
      }
      j.raw("latency_by_child", arr + "]");
    }
    if (client_cpu_window / dur > 0.9 * o.threads) human += " [CLIENT-BOUND: the load generator used its threads fully]";
    if (server) {
      double cpu = cpu_between(s_a, s_b);
      double per = s.arrived_window ? cpu * 1e6 / s.arrived_window : 0;
      j.num("server_cpu_cores", std::round(cpu / dur * 1000) / 1000)
          .num("server_cpu_us_per_msg", std::round(per * 100) / 100)
          .num("server_processes", static_cast<double>(s_b.procs.size()));
      std::snprintf(line, sizeof line, "; server CPU %.2f cores, %.2f us/msg", cpu / dur, per);
      human += line;
    }
  }
  j.num("client_cpu_sec_total", std::round(cpu_of(ru_end) * 1000) / 1000);
  Json e;
  e.num("connect_failed", static_cast<double>(s.connect_failed))
      .num("handshake_failed", static_cast<double>(s.handshake_failed))
      .num("dropped", static_cast<double>(s.dropped))
      .num("server_closes", static_cast<double>(s.server_closes))
      .num("error_frames", static_cast<double>(s.error_frames))
      .num("rate_limited", static_cast<double>(s.rate_limited))
      .num("protocol_errors", static_cast<double>(s.proto_errors))
      .num("timed_out", timed_out ? 1 : 0);
  j.raw("errors", e.done());
  if (!s.first_error.empty()) j.str("first_error", s.first_error);
  long long errs = static_cast<long long>(s.connect_failed + s.handshake_failed + s.dropped + s.server_closes +
                                          s.error_frames + s.proto_errors) + (timed_out ? 1 : 0);
  std::snprintf(line, sizeof line, "; errors %lld%s%s", errs, s.first_error.empty() ? "" : " (first: ",
                s.first_error.empty() ? "" : (s.first_error.substr(0, 120) + ")").c_str());
  human += line;
  if (o.tls) human = "[" + (s.tls.empty() ? std::string("TLS: none negotiated") : s.tls) + "] " + human;
  std::printf("%s\n%s\n", human.c_str(), j.done().c_str());
  std::fflush(stdout);
  (void)t_connected;
  return connected > 0 ? 0 : 1;
}

}  // namespace lg

int main(int argc, char** argv) {
  lg::Options o;
  std::string err = lg::parse_options(argc, argv, &o);
  if (!err.empty()) {
    std::fprintf(stderr, "loadgen: %s\n%s", err.c_str(), lg::kUsage);
    return 2;
  }
  return lg::run(o);
}
