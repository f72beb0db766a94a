// pusher-load: load for a Pusher Channels server (mod_wsbridge's
// `WSBridgeApp pusher`, soketi, ...) on 127.0.0.1, for scripts/bench-pusher.sh.
//
//   pusher-load fanout   --env DIR/pusher.env --port P --subs 100 --rate 1000 --duration 10
//   pusher-load fanout   ... --subs 500 --rate 0 --batch 10        (saturation, closed loop)
//   pusher-load client   ... --subs 100 --senders 10 --sender-rate 9
//   pusher-load presence ... --subs 100
//
// Prints one human line and one JSON line (the last line). Exit status 0,
// or 2 when the clients could not be set up, 3 when --max-time ran out.
// Every option: pusher-load --help.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "pusher_load.h"

using namespace pl;

namespace {

const char* kUsage = R"(usage: pusher-load fanout|client|presence [options]

  --env FILE          PUSHER_APP_ID / _KEY / _SECRET / PUSHER_PORT (shell syntax)
  --app-id ID --key KEY --secret SECRET
  --host H            127.0.0.1
  --port P            WebSocket port (ws://H:P/app/KEY); --api-port P for the HTTP API (default: the same)
  --subs N            subscribers / presence members (100)
  --duration S        measured seconds (10)      --warmup S (1)      --drain S (3)
  fanout:   --rate R  events/s offered, open loop (1000); 0 = saturation, closed loop
            --batch B events per request (1: POST /events; 2-10: POST /batch_events)
            --http-conns N   API connections (4); in saturation each is one slot
  client:   --senders N (10)  --sender-rate R events/s each (9)
  --size B            bytes of event data (64)
  --threads N         receiving threads (1)
  --server-pid PID    (repeatable) CPU of PID and its descendants;  --pid-file FILE (same, from a file)
  --channel NAME      (default: per scenario, with a random suffix)
  --label TEXT        --max-time S (90)  --max-events N (2000000)
)";

void die(const std::string& m) {
  std::cerr << "pusher-load: " << m << "\n" << kUsage;
  exit(64);
}

void read_env(const std::string& file, Options* o) {
  std::ifstream f(file);
  if (!f) die("cannot read " + file);
  std::string line;
  while (std::getline(f, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'')) v = v.substr(1, v.size() - 2);
    if (k == "PUSHER_APP_ID") o->app_id = v;
    if (k == "PUSHER_APP_KEY") o->key = v;
    if (k == "PUSHER_APP_SECRET") o->secret = v;
    if (k == "PUSHER_PORT" && !o->port) o->port = atoi(v.c_str());
  }
}

int read_pid_file(const std::string& f) {
  std::ifstream in(f);
  int pid = 0;
  in >> pid;
  if (pid <= 0) die("no pid in " + f);
  return pid;
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    std::cout << kUsage;
    exit(argc < 2 ? 64 : 0);
  }
  std::string sc = argv[1];
  if (sc == "fanout") o.scenario = Scenario::Fanout;
  else if (sc == "client") o.scenario = Scenario::Client;
  else if (sc == "presence") o.scenario = Scenario::Presence;
  else die("unknown scenario " + sc);
  std::string env;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--env") env = val();
    else if (a == "--app-id") o.app_id = val();
    else if (a == "--key") o.key = val();
    else if (a == "--secret") o.secret = val();
    else if (a == "--host") o.host = val();
    else if (a == "--port") o.port = atoi(val().c_str());
    else if (a == "--api-port") o.api_port = atoi(val().c_str());
    else if (a == "--subs") o.subs = atoi(val().c_str());
    else if (a == "--duration") o.duration = atof(val().c_str());
    else if (a == "--warmup") o.warmup = atof(val().c_str());
    else if (a == "--drain") o.drain = atof(val().c_str());
    else if (a == "--rate") o.rate = atof(val().c_str());
    else if (a == "--batch") o.batch = atoi(val().c_str());
    else if (a == "--http-conns") o.http_conns = atoi(val().c_str());
    else if (a == "--senders") o.senders = atoi(val().c_str());
    else if (a == "--sender-rate") o.sender_rate = atof(val().c_str());
    else if (a == "--size") o.size = atoi(val().c_str());
    else if (a == "--threads") o.threads = atoi(val().c_str());
    else if (a == "--server-pid") o.server_pids.push_back(atoi(val().c_str()));
    else if (a == "--pid-file") o.server_pids.push_back(read_pid_file(val()));
    else if (a == "--channel") o.channel = val();
    else if (a == "--label") o.label = val();
    else if (a == "--max-time") o.max_time = atof(val().c_str());
    else if (a == "--nchan") o.nchan = true;
    else if (a == "--max-events") o.max_events = size_t(atoll(val().c_str()));
    else die("unknown option " + a);
  }
  if (!env.empty()) read_env(env, &o);
  if (!o.api_port) o.api_port = o.port;
  if (o.nchan && o.scenario != Scenario::Fanout) die("--nchan has only the fanout scenario");
  if (!o.port || (!o.nchan && (o.key.empty() || o.secret.empty() || o.app_id.empty()))) die("need --port and the app (--env or --app-id/--key/--secret)");
  if (o.subs < 1 || o.threads < 1 || o.threads > o.subs) die("bad --subs / --threads");
  if (o.batch < 1 || o.batch > 10) die("--batch is 1 to 10 (the API's limit per batch)");
  if (o.http_conns < 1 || o.http_conns > 256) die("--http-conns is 1 to 256");
  if (o.senders < 1 || o.senders > o.subs) die("--senders must be 1 to --subs");
  if (o.sender_rate <= 0) die("--sender-rate must be > 0");
  if (o.size < 32 || o.size > 10000) die("--size is 32 to 10000");
  if (o.channel.empty()) {
    std::mt19937 rng(std::random_device{}());
    std::string suffix = std::to_string(rng() % 1000000);
    o.channel = o.scenario == Scenario::Fanout ? "bench-fanout-" + suffix
                : o.scenario == Scenario::Client ? "private-bench-" + suffix : "presence-bench-" + suffix;
  }
  return o;
}

void sleep_until(int64_t t) {
  int64_t now = now_ns();
  if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
}

std::string fmt(double v, int prec = 2) {
  char b[64];
  snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o += '\\'; o += c; }
    else if (uint8_t(c) < 0x20) { o += ' '; }
    else o += c;
  }
  return o + "\"";
}

struct Sample {
  double server = 0, machine = 0, self = 0;
  int64_t t = 0;
  static Sample take(const Options& o) {
    Sample s;
    s.t = now_ns();
    s.server = o.server_pids.empty() ? 0 : tree_cpu_seconds(o.server_pids);
    s.machine = machine_busy_seconds();
    s.self = self_cpu_seconds();
    return s;
  }
};

void on_alarm(int) {
  const char m[] = "pusher-load: --max-time reached, giving up\n";
  ssize_t w = write(2, m, sizeof m - 1);
  (void)w;
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  Shared g;
  g.o = parse(argc, argv);
  const Options& o = g.o;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm(unsigned(o.max_time));

  // The event table.
  if (o.scenario == Scenario::Fanout && o.rate > 0)
    g.cap = std::min(o.max_events, size_t(o.rate * (o.warmup + o.duration + 1)) + 1000);
  else if (o.scenario == Scenario::Client)
    g.cap = std::min(o.max_events, size_t(o.senders * o.sender_rate * (o.warmup + o.duration + 1)) + 1000);
  else
    g.cap = o.scenario == Scenario::Presence ? 1 : o.max_events;
  g.count.reset(new std::atomic<uint32_t>[g.cap]);
  for (size_t i = 0; i < g.cap; i++) g.count[i].store(0, std::memory_order_relaxed);
  if (o.scenario == Scenario::Fanout && o.rate <= 0) {
    g.slot_of.reset(new std::atomic<uint16_t>[g.cap]);
    g.slot_left.reset(new std::atomic<int>[Shared::kSlots]);
    for (int i = 0; i < Shared::kSlots; i++) g.slot_left[i].store(0);
  }
  g.expect = uint32_t(o.scenario == Scenario::Client ? o.subs - 1 : o.subs);
  g.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  // Connect everybody (subscribed, or for presence: connected and signed).
  const int64_t setup_start = now_ns();
  std::vector<WorkerStats> ws(size_t(o.threads));
  std::vector<std::thread> threads;
  for (int t = 0, first = 0; t < o.threads; t++) {
    int n = o.subs / o.threads + (t < o.subs % o.threads ? 1 : 0);
    threads.emplace_back(run_worker, std::ref(g), first, n, &ws[size_t(t)]);
    first += n;
  }
  const int64_t setup_deadline = setup_start + 30'000'000'000LL;
  while (g.ready.load() < o.subs && g.failed.load() == 0 && now_ns() < setup_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double setup_s = double(now_ns() - setup_start) / 1e9;
  auto fail_setup = [&](const std::string& why) {
    g.stop = true;
    for (auto& t : threads) t.join();
    std::string e = g.first_error.empty() ? why : why + ": " + g.first_error;
    std::cout << o.label << " FAILED: " << e << "\n";
    std::cout << "{\"scenario\":\"" << argv[1] << "\",\"failed\":true,\"error\":" << jstr(e) << "}\n";
    exit(2);
  };
  if (g.ready.load() < o.subs)
    fail_setup(std::to_string(g.ready.load()) + " of " + std::to_string(o.subs) + " clients ready after " + fmt(setup_s, 1) + " s");

  std::ostringstream js, human;
  human << (o.label.empty() ? std::string(argv[1]) : o.label) << ": ";
  js << "{\"scenario\":\"" << argv[1] << "\",\"label\":" << jstr(o.label) << ",\"subs\":" << o.subs
     << ",\"setup_s\":" << fmt(setup_s, 3);

  TriggerStats ts;
  if (o.scenario == Scenario::Presence) {
    // Everybody joins at once; then everybody leaves at once.
    const Sample a = Sample::take(o);
    const int64_t tj = now_ns() + 50'000'000;
    g.t_join = tj;
    const int64_t join_deadline = tj + 15'000'000'000LL;
    while (g.presence_done.load() < o.subs && now_ns() < join_deadline && g.failed.load() == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // late frames of the join
    const int64_t tl = now_ns() + 20'000'000;
    g.t_leave = tl;
    sleep_until(tl);
    // Quiet for 500 ms (no member_removed), at most 10 s.
    const int64_t leave_deadline = tl + 10'000'000'000LL;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int64_t now = now_ns(), last = g.last_presence_ns.load();
      if (now >= leave_deadline || (now - std::max(last, tl) > 500'000'000LL)) break;
    }
    const Sample b = Sample::take(o);
    g.stop = true;
    for (auto& t : threads) t.join();
    std::vector<int64_t> joined;
    uint64_t join_frames = 0, leave_frames = 0, removed = 0, errors = 0;
    int64_t last_removed = 0;
    for (auto& w : ws) {
      for (int64_t t : w.joined_ns)
        if (t) joined.push_back(t - tj);
      join_frames += w.join_frames;
      leave_frames += w.leave_frames;
      removed += w.removed_frames;
      errors += w.pusher_errors + w.subscription_errors + w.closed;
      last_removed = std::max(last_removed, w.last_removed_ns);
    }
    std::sort(joined.begin(), joined.end());
    const double all_ms = joined.size() == size_t(o.subs) ? double(joined.back()) / 1e6 : -1;
    const double p50_ms = joined.empty() ? -1 : double(joined[joined.size() / 2]) / 1e6;
    const double leave_ms = last_removed ? double(last_removed - tl) / 1e6 : -1;
    const double n = o.subs;
    human << o.subs << " members: everyone saw everyone after " << fmt(all_ms, 1) << " ms (median member "
          << fmt(p50_ms, 1) << " ms), " << fmt(double(join_frames) / n, 1) << " frames per member joining, "
          << fmt(double(leave_frames) / n, 1) << " leaving (last member_removed after " << fmt(leave_ms, 1)
          << " ms), server CPU " << fmt((b.server - a.server) * 1000, 0) << " ms";
    if (errors) human << ", " << errors << " errors (" << g.first_error << ")";
    js << ",\"members\":" << o.subs << ",\"joined\":" << joined.size() << ",\"join_all_ms\":" << fmt(all_ms, 2)
       << ",\"join_p50_ms\":" << fmt(p50_ms, 2) << ",\"leave_ms\":" << fmt(leave_ms, 2)
       << ",\"frames_per_member_join\":" << fmt(double(join_frames) / n, 2)
       << ",\"frames_per_member_leave\":" << fmt(double(leave_frames) / n, 2)
       << ",\"frames_per_member\":" << fmt(double(join_frames + leave_frames) / n, 2)
       << ",\"member_removed_frames\":" << removed << ",\"server_cpu_ms\":" << fmt((b.server - a.server) * 1000, 1)
       << ",\"errors\":" << errors << ",\"first_error\":" << jstr(g.first_error) << "}";
    std::cout << human.str() << "\n" << js.str() << "\n";
    return 0;
  }

  // fanout / client: a warm-up, the measured window, then the drain.
  const int64_t start = now_ns() + 20'000'000;
  const int64_t t0 = start + int64_t(o.warmup * 1e9), t1 = t0 + int64_t(o.duration * 1e9);
  g.t0 = t0;
  g.t1 = t1;
  g.t_start = start;
  std::thread trigger;
  if (o.scenario == Scenario::Fanout) trigger = std::thread(run_trigger, std::ref(g), &ts);
  sleep_until(t0);
  const Sample a = Sample::take(o);
  sleep_until(t1);
  const Sample b = Sample::take(o);
  if (trigger.joinable()) trigger.join();
  const int64_t drain_end = t1 + int64_t(o.drain * 1e9);
  while (g.done_window.load() < g.sent_window.load() && now_ns() < drain_end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  g.stop = true;
  for (auto& t : threads) t.join();

  WorkerStats all;
  int64_t busiest = 0;
  for (auto& w : ws) {
    all.latency.merge(w.latency);
    all.arrived_in_window += w.arrived_in_window;
    all.window_deliveries += w.window_deliveries;
    all.dups += w.dups;
    all.other_frames += w.other_frames;
    all.pusher_errors += w.pusher_errors;
    all.rate_limited += w.rate_limited;
    all.subscription_errors += w.subscription_errors;
    all.closed += w.closed;
    all.client_sent += w.client_sent;
    all.max_send_lag_ns = std::max(all.max_send_lag_ns, w.max_send_lag_ns);
    busiest = std::max(busiest, w.window_cpu_ns);
  }
  const double win = double(b.t - a.t) / 1e9;
  const uint64_t sent = g.sent_window.load();
  const double expected = double(sent) * g.expect;
  const double ratio = expected > 0 ? double(all.window_deliveries) / expected : 0;
  const double per_sec = double(all.arrived_in_window) / win;
  const double srv = b.server - a.server;
  const double srv_us = all.arrived_in_window ? srv * 1e6 / double(all.arrived_in_window) : 0;
  const double client_cores = (b.self - a.self) / win, machine_cores = (b.machine - a.machine) / win;
  const double busiest_share = double(busiest) / 1e9 / win;
  const double trigger_share = double(ts.window_cpu_ns) / 1e9 / win;
  auto ms = [](int64_t us) { return double(us) / 1000.0; };
  const Histogram& L = all.latency;
  const uint64_t errors = all.pusher_errors + all.subscription_errors + all.closed + ts.non2xx + ts.lost;
  const double offered = o.scenario == Scenario::Fanout ? o.rate * o.subs : o.senders * o.sender_rate * (o.subs - 1);

  human << int64_t(per_sec) << " deliveries/s";
  if (offered > 0) human << " of " << int64_t(offered) << " offered";
  human << ", ratio " << fmt(ratio, 4) << ", p50 " << fmt(ms(L.percentile(50)), 2) << " ms, p99 "
        << fmt(ms(L.percentile(99)), 2) << " ms, max " << fmt(ms(L.max()), 1) << " ms; server "
        << fmt(srv / win, 2) << " cores, " << fmt(srv_us, 2) << " us/delivery; client " << fmt(client_cores, 2)
        << " cores (busiest receiver " << int(busiest_share * 100) << "%); machine " << fmt(machine_cores, 2) << " cores";
  if (busiest_share > 0.9) human << " CLIENT-BOUND";
  if (o.scenario == Scenario::Fanout)
    human << "; " << ts.requests << " requests, " << sent << " events in the window";
  if (errors || all.rate_limited || ts.stalled) {
    human << "; errors " << errors << " (rate-limited " << all.rate_limited << ", stalled " << ts.stalled << ")";
    if (!g.first_error.empty()) human << " first: " << g.first_error;
    if (!ts.first_bad.empty()) human << " http: " << ts.first_bad;
  }
  js << ",\"mode\":\"" << (o.scenario == Scenario::Client ? "client" : o.rate > 0 ? "rate" : "saturate")
     << "\",\"rate\":" << o.rate << ",\"batch\":" << o.batch << ",\"http_conns\":" << o.http_conns
     << ",\"senders\":" << o.senders << ",\"sender_rate\":" << o.sender_rate << ",\"size\":" << o.size
     << ",\"duration\":" << fmt(win, 3) << ",\"events_in_window\":" << sent << ",\"expected_per_event\":" << g.expect
     << ",\"delivered\":" << all.arrived_in_window << ",\"delivered_per_sec\":" << fmt(per_sec, 1)
     << ",\"offered_per_sec\":" << fmt(offered, 1) << ",\"delivery_ratio\":" << fmt(ratio, 5)
     << ",\"latency_ms\":{\"p50\":" << fmt(ms(L.percentile(50)), 3) << ",\"p90\":" << fmt(ms(L.percentile(90)), 3)
     << ",\"p99\":" << fmt(ms(L.percentile(99)), 3) << ",\"max\":" << fmt(ms(L.max()), 3) << ",\"n\":" << L.count()
     << "},\"server_cpu_s\":" << fmt(srv, 3) << ",\"server_cpu_cores\":" << fmt(srv / win, 3)
     << ",\"server_cpu_us_per_delivery\":" << fmt(srv_us, 3) << ",\"client_cpu_cores\":" << fmt(client_cores, 3)
     << ",\"busiest_receiver_share\":" << fmt(busiest_share, 3) << ",\"trigger_thread_share\":" << fmt(trigger_share, 3)
     << ",\"machine_busy_cores\":" << fmt(machine_cores, 3)
     << ",\"http\":{\"requests\":" << ts.requests << ",\"ok\":" << ts.ok << ",\"non2xx\":" << ts.non2xx
     << ",\"lost\":" << ts.lost << ",\"connects\":" << ts.reconnects << ",\"stalled\":" << ts.stalled
     << ",\"max_lag_ms\":" << fmt(double(ts.max_lag_ns) / 1e6, 2) << "},\"client_events_sent\":" << all.client_sent
     << ",\"max_send_lag_ms\":" << fmt(double(all.max_send_lag_ns) / 1e6, 2)
     << ",\"errors\":{\"total\":" << errors << ",\"pusher_error\":" << all.pusher_errors << ",\"rate_limited\":"
     << all.rate_limited << ",\"subscription_error\":" << all.subscription_errors << ",\"closed\":" << all.closed
     << ",\"duplicates\":" << all.dups << ",\"other_frames\":" << all.other_frames << "},\"first_error\":"
     << jstr(g.first_error + (ts.first_bad.empty() ? "" : " http " + ts.first_bad)) << "}";
  std::cout << human.str() << "\n" << js.str() << "\n";
  return 0;
}
