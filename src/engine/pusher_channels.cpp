#include "engine/pusher_channels.h"

namespace wsb {

namespace {
bool is_presence(std::string_view ch) {
  return ch.rfind("presence-", 0) == 0;
}
bool is_cache(std::string_view ch) {
  for (std::string_view p : {"cache-", "private-cache-", "presence-cache-", "private-encrypted-cache-"})
    if (ch.rfind(p, 0) == 0) return true;
  return false;
}
}  // namespace

std::string PusherChannels::key(std::string_view ns, std::string_view channel) {
  std::string k(ns);
  k.push_back('\n');
  k.append(channel);
  return k;
}

void PusherChannels::attach(const std::string& socket_id, std::string_view ns, PeerPtr peer) {
  Local& l = local_[socket_id];
  l.ns.assign(ns);
  l.peer = std::move(peer);
}

void PusherChannels::detach(const std::string& socket_id) {
  // Its subscriptions stay until the pleave record is applied (every
  // process removes them in bus order); only local delivery stops.
  local_.erase(socket_id);
  subs_.remove_connection(socket_id);
}

void PusherChannels::set_user(const std::string& socket_id, std::string_view user_id) {
  auto it = local_.find(socket_id);
  if (it != local_.end()) it->second.user_id.assign(user_id);
}

void PusherChannels::report(PusherHook::Kind kind, std::string_view ns, std::string_view channel,
                            std::string_view user, bool mine) {
  if (!mine || hooks_.size() >= kMaxHooks) return;
  PusherHook h;
  h.kind = kind;
  h.ns.assign(ns);
  h.channel.assign(channel);
  h.user_id.assign(user);
  hooks_.push_back(std::move(h));
}

void PusherChannels::apply_subscribe(const ChatRecord& r, long local_pid) {
  Socket& s = sockets_[r.conn];
  if (s.channels.count(r.channel)) return;  // already subscribed: nothing changes
  s.ns = r.ns;
  s.pid = r.pid;
  const bool presence = is_presence(r.channel);
  s.channels.emplace(r.channel, presence ? r.user : std::string());
  Channel& ch = channels_[key(r.ns, r.channel)];
  const bool mine = r.pid == local_pid;
  if (ch.subscriptions++ == 0) {
    report(PusherHook::Occupied, r.ns, r.channel, "", mine);
    if (ch.cache && idle_caches_ > 0) --idle_caches_;
  }
  bool new_member = false;
  if (presence) {
    MemberState& m = ch.members[r.user];
    new_member = m.sockets++ == 0;
    if (new_member) m.info = r.data;
  }
  auto local = local_.find(r.conn);
  const auto* others = subs_.subscribers(r.ns, r.channel);
  if (new_member) {
    report(PusherHook::MemberAdded, r.ns, r.channel, r.user, mine);
    // Everyone already there hears of the new user once, however many
    // connections that user opens.
    if (others) {
      FramePtr f = render_.member_added(r.channel, PusherRender::Member{r.user, r.data});
      for (const auto& o : *others) deliver_(o.second, f);
    }
  }
  if (local == local_.end()) return;
  subs_.subscribe(r.ns, r.channel, r.conn, local->second.peer);
  std::vector<PusherRender::Member> members;
  if (presence)
    for (const auto& m : ch.members) members.push_back(PusherRender::Member{m.first, m.second.info});
  deliver_(local->second.peer, render_.subscription_succeeded(r.channel, presence ? &members : nullptr));
  if (is_cache(r.channel)) {
    if (ch.cache && r.ts - ch.cache_ts > kCacheTtlMs) ch.cache.reset();  // expired
    if (ch.cache) {
      deliver_(local->second.peer, render_.event(r.channel, ch.cache->first, ch.cache->second, ""));
    } else {
      deliver_(local->second.peer, render_.cache_miss(r.channel));
      report(PusherHook::CacheMiss, r.ns, r.channel, "", mine);
    }
  }
}

void PusherChannels::leave_channel(const std::string& socket_id, Socket& s, const std::string& channel,
                                   bool mine) {
  auto sc = s.channels.find(channel);
  if (sc == s.channels.end()) return;
  const std::string user = sc->second;
  s.channels.erase(sc);
  subs_.unsubscribe(s.ns, channel, socket_id);
  auto it = channels_.find(key(s.ns, channel));
  if (it == channels_.end()) return;
  Channel& ch = it->second;
  if (is_presence(channel)) {
    auto m = ch.members.find(user);
    if (m != ch.members.end() && --m->second.sockets == 0) {
      ch.members.erase(m);
      report(PusherHook::MemberRemoved, s.ns, channel, user, mine);
      if (const auto* others = subs_.subscribers(s.ns, channel)) {
        FramePtr f = render_.member_removed(channel, user);
        for (const auto& o : *others) deliver_(o.second, f);
      }
    }
  }
  if (--ch.subscriptions == 0) {
    report(PusherHook::Vacated, s.ns, channel, "", mine);
    // A vacated cache channel keeps its last event (bounded: see
    // kMaxIdleCaches and kCacheTtlMs); any other vacated channel goes.
    if (ch.cache && idle_caches_ < kMaxIdleCaches) ++idle_caches_;
    else channels_.erase(it);
  }
}

void PusherChannels::apply_leave(const ChatRecord& r, long local_pid) {
  leave_socket(r.conn, r.channel, true, local_pid, false);
}

// channel "" = every channel. The hooks are this process's when it owns the
// socket, or when force_mine (it reported the owner's death).
void PusherChannels::leave_socket(const std::string& socket_id, const std::string& channel, bool mine_if_owner,
                                  long local_pid, bool force_mine) {
  auto it = sockets_.find(socket_id);
  if (it == sockets_.end()) return;
  const bool mine = force_mine || (mine_if_owner && it->second.pid == local_pid);
  if (!channel.empty()) {
    leave_channel(socket_id, it->second, channel, mine);
  } else {
    std::vector<std::string> all;
    for (const auto& c : it->second.channels) all.push_back(c.first);
    for (const std::string& c : all) leave_channel(socket_id, it->second, c, mine);
  }
  if (it->second.channels.empty()) sockets_.erase(it);
}

void PusherChannels::apply_event(const ChatRecord& r, long local_pid) {
  // A client event (from "client") names its sender in conn; an HTTP API
  // event's conn is only a socket to skip.
  if (r.from == "client" && !r.conn.empty() && hooks_.size() < kMaxHooks) {
    auto s = sockets_.find(r.conn);
    if (s != sockets_.end() && s->second.pid == local_pid) {
      PusherHook h;
      h.kind = PusherHook::ClientEvent;
      h.ns = r.ns;
      h.channel = r.channel;
      h.user_id = r.user;
      h.event = r.name;
      h.data = r.data;
      h.socket_id = r.conn;
      hooks_.push_back(std::move(h));
    }
  }
  if (is_cache(r.channel)) {
    auto it = channels_.find(key(r.ns, r.channel));
    const bool occupied = it != channels_.end() && it->second.subscriptions > 0;
    // An unoccupied channel keeps an event only while few do (bounded memory).
    if (it != channels_.end() || idle_caches_ < kMaxIdleCaches) {
      if (it == channels_.end()) {
        it = channels_.emplace(key(r.ns, r.channel), Channel()).first;
        ++idle_caches_;
      } else if (!occupied && !it->second.cache) {
        ++idle_caches_;
      }
      it->second.cache = std::make_pair(r.name, r.data);
      it->second.cache_ts = r.ts;
    }
  }
  const auto* subs = subs_.subscribers(r.ns, r.channel);
  if (!subs) return;
  FramePtr f = render_.event(r.channel, r.name, r.data, r.user);
  for (const auto& s : *subs)
    if (s.first != r.conn) deliver_(s.second, f);  // the sender (socket_id) is skipped
}

void PusherChannels::apply_terminate(const ChatRecord& r) {
  for (const auto& l : local_) {
    if (l.second.ns == r.ns && !l.second.user_id.empty() && l.second.user_id == r.user)
      l.second.peer->close(4009, "connection terminated by the application");
  }
}

void PusherChannels::apply_gone(long pid, long local_pid, long reporter) {
  std::vector<std::string> dead;
  for (const auto& s : sockets_)
    if (s.second.pid == pid) dead.push_back(s.first);
  // The dead process cannot report its sockets' leaves: the one that
  // published the gone record does (nobody, for a record without "by").
  const bool mine = reporter != 0 && reporter == local_pid;
  for (const std::string& id : dead) leave_socket(id, "", false, local_pid, mine);
}

std::vector<PusherChannelInfo> PusherChannels::channels(std::string_view ns, std::string_view prefix) const {
  std::vector<PusherChannelInfo> out;
  std::string from = key(ns, prefix);
  for (auto it = channels_.lower_bound(from); it != channels_.end() && it->first.rfind(from, 0) == 0; ++it) {
    if (it->second.subscriptions == 0) continue;
    out.push_back(PusherChannelInfo{it->first.substr(ns.size() + 1), it->second.subscriptions,
                                    it->second.members.size()});
  }
  return out;
}

std::optional<PusherChannelInfo> PusherChannels::channel(std::string_view ns, std::string_view name) const {
  auto it = channels_.find(key(ns, name));
  if (it == channels_.end() || it->second.subscriptions == 0) return std::nullopt;
  return PusherChannelInfo{std::string(name), it->second.subscriptions, it->second.members.size()};
}

std::vector<std::string> PusherChannels::users(std::string_view ns, std::string_view name) const {
  std::vector<std::string> out;
  auto it = channels_.find(key(ns, name));
  if (it == channels_.end()) return out;
  for (const auto& m : it->second.members) out.push_back(m.first);
  return out;
}

bool PusherChannels::subscribed(const std::string& socket_id, std::string_view channel) const {
  auto it = sockets_.find(socket_id);
  return it != sockets_.end() && it->second.channels.count(std::string(channel)) > 0;
}

std::vector<PusherHook> PusherChannels::take_hooks() {
  std::vector<PusherHook> out;
  out.swap(hooks_);
  return out;
}

}  // namespace wsb
