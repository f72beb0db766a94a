#include "chat/chat_engine.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "protocol/frame_encoder.h"
#include "runtime/clock.h"

namespace wsb {

ChatEngine::ChatEngine(const ChatConfig& config, std::function<int64_t()> clock)
    : config_(config),
      clock_(clock ? std::move(clock) : std::function<int64_t()>(monotonic_ms)),
      presence_due_(config.presence_interval_ms) {}

void ChatEngine::attach(const std::string& conn_id, const std::string& base_name, PeerPtr peer) {
  std::lock_guard<std::mutex> lock(mu_);
  LocalConn& c = local_[conn_id];
  if (!c.base.empty()) count(local_by_user_, c.base, false);
  c.base = base_name;
  c.peer = std::move(peer);
  count(local_by_user_, c.base, true);
}

void ChatEngine::rename(const std::string& conn_id, const std::string& base_name) {
  std::lock_guard<std::mutex> lock(mu_);
  LocalConn* c = local(conn_id);
  if (c == nullptr || c->base == base_name) return;
  count(local_by_user_, c->base, false);
  c->base = base_name;
  count(local_by_user_, c->base, true);
}

void ChatEngine::detach(const std::string& conn_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = local_.find(conn_id);
  if (it == local_.end()) return;
  // The member entries stay until the leave records are applied (every
  // engine must remove them in bus order); only the local delivery stops.
  for (const auto& joined : it->second.rooms) {
    const auto room = rooms_.find(joined.first);
    if (room == rooms_.end()) continue;
    room->second.drop_peer(conn_id);
  }
  count(local_by_user_, it->second.base, false);
  local_.erase(it);
}

void ChatEngine::apply(uint64_t seq, std::string_view payload) {
  std::lock_guard<std::mutex> lock(mu_);
  if (seq <= stats_.last_seq) {
    ++stats_.records_skipped;
    return;
  }
  if (seq > stats_.last_seq + 1) note_gap(stats_.last_seq + 1, seq - 1);
  stats_.last_seq = seq;
  ChatRecord r;
  if (!parse_record(payload, &r)) {
    ++stats_.records_skipped;
    return;
  }
  ++stats_.events_applied;
  switch (r.type) {
    case RecordType::Join: apply_join(seq, r); break;
    case RecordType::Leave: apply_leave(seq, r); break;
    case RecordType::Msg: apply_msg(seq, r); break;
    case RecordType::Direct: apply_direct(r); break;
    case RecordType::Gone: apply_gone(seq, r); break;
    case RecordType::Sync: apply_sync(seq); break;
    case RecordType::Present: apply_present(r); break;
    case RecordType::Publish: apply_publish(r); break;
    case RecordType::PusherSubscribe:
    case RecordType::PusherLeave:
    case RecordType::PusherTerminate:
      apply_pusher(r);
      break;
  }
  if (pusher_ && pusher_->has_hooks()) hooks_pending_.store(true, std::memory_order_release);
  send_due_presence();
}

ChannelSubscriptions::Result ChatEngine::subscribe(const std::string& conn_id, std::string_view ns,
                                                   std::string_view channel, PeerPtr peer) {
  std::lock_guard<std::mutex> lock(mu_);
  return channels_.subscribe(ns, channel, conn_id, std::move(peer));
}

bool ChatEngine::unsubscribe(const std::string& conn_id, std::string_view ns, std::string_view channel) {
  std::lock_guard<std::mutex> lock(mu_);
  return channels_.unsubscribe(ns, channel, conn_id);
}

void ChatEngine::unsubscribe_all(const std::string& conn_id) {
  std::lock_guard<std::mutex> lock(mu_);
  channels_.remove_connection(conn_id);
}

// One frame per record, shared by every subscriber (encode once).
void ChatEngine::apply_publish(const ChatRecord& r) {
  ++stats_.publishes_applied;
  if (r.kind == PublishKind::Event) {  // a Pusher channel event (cache channels keep it)
    if (pusher_) pusher_->apply_event(r, local_pid_);
    return;
  }
  const auto* subs = channels_.subscribers(r.ns, r.channel);
  if (!subs) return;
  if (r.kind == PublishKind::Close) {
    for (const auto& s : *subs) s.second->close(r.code, r.data);
    return;
  }
  static constexpr Opcode kOps[] = {Opcode::Text, Opcode::Binary, Opcode::Ping, Opcode::Pong};
  FramePtr frame = make_frame(encode_frame(kOps[static_cast<int>(r.kind)], r.data));
  for (const auto& s : *subs) deliver(s.second, frame);
}

std::vector<std::string> ChatEngine::take_outbox() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.swap(outbox_);
  outbox_pending_.store(false, std::memory_order_release);
  return out;
}

namespace {
// Present answers are split so one stays far below any bus's record limit.
constexpr size_t kPresentPerRecord = 50;
// After an overrun, at most one sync request per this many records: a
// process that keeps falling behind must not flood the bus with answers.
constexpr uint64_t kSyncRequestSpacing = 10000;
constexpr size_t kMaxLeftUnknown = 100000;
}  // namespace

void ChatEngine::want_sync(uint64_t seq) {
  if (sync_requested_ && seq < last_sync_request_ + kSyncRequestSpacing) return;
  sync_requested_ = true;
  last_sync_request_ = seq;
  ++stats_.sync_requests;
  ChatRecord r;
  r.type = RecordType::Sync;
  r.ts = wall_clock_ms();
  outbox_.push_back(encode_record(r));
  outbox_pending_.store(true, std::memory_order_release);
}

void ChatEngine::apply_sync(uint64_t seq) {
  // Every local member as of this record, in bus order: joins after it are
  // on the bus for the asker to read itself.
  ChatRecord r;
  r.type = RecordType::Present;
  r.base = seq;
  auto flush = [&] {
    if (r.members.empty()) return;
    r.ts = wall_clock_ms();
    outbox_.push_back(encode_record(r));
    outbox_pending_.store(true, std::memory_order_release);
    r.members.clear();
  };
  for (const auto& c : local_) {
    for (const auto& joined : c.second.rooms) {
      const auto room = rooms_.find(joined.first);
      const RoomMember* m = room == rooms_.end() ? nullptr : room->second.find(c.first);
      if (m == nullptr) continue;
      r.members.push_back(PresentMember{joined.first, m->conn_id, m->user, m->name, m->pid});
      if (r.members.size() == kPresentPerRecord) flush();
    }
  }
  flush();
}

void ChatEngine::apply_present(const ChatRecord& r) {
  // An engine that has seen every record knows all of this already.
  if (!gap_seen_) return;
  std::set<std::string> changed;
  for (const PresentMember& p : r.members) {
    const auto left = left_unknown_.find(p.conn);
    if (left != left_unknown_.end() && left->second > r.base) continue;  // left after the snapshot
    Room* room = find_or_create_room(p.room);
    if (room == nullptr || room->find(p.conn) != nullptr) continue;
    RoomMember m;
    m.conn_id = p.conn;
    m.name = p.name;  // the name every other engine uses
    m.user = p.user;
    m.pid = p.pid;
    if (LocalConn* c = local(p.conn)) m.peer = c->peer;
    add_member(p.room, *room, std::move(m));
    changed.insert(p.room);
  }
  // Local members were given a list without these: send it again (above
  // the presence limit: one folded update for all).
  for (const std::string& name : changed) {
    Room& room = rooms_.find(name)->second;
    if (room.truncated()) {
      schedule_presence(name, room);
      continue;
    }
    const std::vector<std::string> names = room.member_names();
    for (const LocalMember& m : room.local_members())
      deliver(m.peer, make_text_frame(encode_presence(name, names, m.member->name)));
    room.presence().sent_version = room.shown_version();
  }
}

void ChatEngine::on_overrun(uint64_t lost_from, uint64_t lost_to) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_to < lost_from || lost_to <= stats_.last_seq) return;
  note_gap(lost_from, lost_to);
  stats_.last_seq = lost_to;
}

void ChatEngine::note_gap(uint64_t lost_from, uint64_t lost_to) {
  // Before the first record this is a late start (the bus had already
  // dropped its oldest records when this process began reading): the
  // floors must rise, but no connection here has seen anything it could
  // have missed, so nobody is told.
  const bool late_start = stats_.last_seq == 0;
  if (!late_start) ++stats_.overruns;
  gap_seen_ = true;
  want_sync(lost_to);
  resume_floor_ = std::max(resume_floor_, lost_to);
  for (auto& room : rooms_) room.second.mark_lost_upto(lost_to);
  if (late_start || local_.empty()) return;
  // Every local connection, not only current members: a join of its own
  // may be among the lost records. One frame for all of them.
  const FramePtr frame = make_text_frame(encode_error(
      ChatError::HistoryLost, "the server fell behind: events " + std::to_string(lost_from) +
                                  " to " + std::to_string(lost_to) +
                                  " were lost; reconnect and resume to resync"));
  for (const auto& c : local_) deliver(c.second.peer, frame);
}

void ChatEngine::apply_join(uint64_t seq, const ChatRecord& r) {
  LocalConn* joiner = local(r.conn);
  Room* room = find_or_create_room(r.room);
  if (room == nullptr) {
    if (joiner != nullptr)
      deliver(joiner->peer, make_text_frame(encode_error(
                                ChatError::TooManyRooms, "the server has too many rooms", r.room)));
    return;
  }
  if (room->find(r.conn) != nullptr) return;  // a repeated join changes nothing

  RoomMember m;
  m.conn_id = r.conn;
  m.name = room->free_name(r.name);
  m.user = r.user;
  m.pid = r.pid;
  if (joiner != nullptr) {
    // since >= the join's own seq cannot come from this bus (the client saw
    // a previous bus, e.g. before a server restart): send the plain history.
    // A since from another bus (r.foreign_since, the connection compared
    // bus ids) is not sent: the client missed an unknown amount.
    const bool has_since = r.has_since && r.since < seq;
    HistoryWindow w = room->history(has_since, r.since);
    if (r.foreign_since) w.complete = false;
    deliver(joiner->peer, make_text_frame(encode_history(r.room, w.events, w.complete)));
    m.peer = joiner->peer;
  }
  const std::string name = m.name;
  add_member(r.room, *room, std::move(m));
  std::string event = encode_system_event(r.room, "join", name, seq, r.ts);
  if (room->truncated()) {
    quiet_event(r.room, *room, seq, joiner != nullptr ? joiner->peer : nullptr, event);
  } else {
    record_and_broadcast(*room, seq, std::move(event));
    room->presence().sent_version = room->shown_version();  // the event told everybody
  }
  if (joiner != nullptr) deliver(joiner->peer, make_text_frame(joiner_presence(r.room, *room, name)));
}

void ChatEngine::apply_leave(uint64_t seq, const ChatRecord& r) {
  const auto room = rooms_.find(r.room);
  if (room == rooms_.end() || room->second.find(r.conn) == nullptr) {
    if (gap_seen_) {
      if (left_unknown_.size() >= kMaxLeftUnknown) left_unknown_.clear();
      left_unknown_[r.conn] = seq;
    }
    return;
  }
  remove_member(room->first, room->second, r.conn, seq, r.ts);
}

void ChatEngine::apply_msg(uint64_t seq, const ChatRecord& r) {
  std::string from = r.from;
  Room* room = nullptr;
  if (r.conn.empty()) {
    // The publish API posts into rooms nobody has joined yet: the message
    // waits in the history for the first joiner.
    room = find_or_create_room(r.room);
    if (room == nullptr) return;
  } else {
    const auto it = rooms_.find(r.room);
    room = it == rooms_.end() ? nullptr : &it->second;
    const RoomMember* sender = room == nullptr ? nullptr : room->find(r.conn);
    if (sender != nullptr) {
      from = sender->name;
    } else {
      // Not a member here. With a complete record sequence the join was
      // refused or never sent: drop. After a gap (late start, overrun) the
      // join may simply be unknown here; the publisher's engine saw it and
      // its name for the sender is in "from", so adopt the sender silently
      // rather than lose the conversation.
      if (!gap_seen_ || r.from.empty()) return;
      room = find_or_create_room(r.room);
      if (room == nullptr) return;
      RoomMember m;
      m.conn_id = r.conn;
      m.name = r.from;
      m.user = r.user;
      m.pid = r.pid;
      if (LocalConn* c = local(r.conn)) m.peer = c->peer;
      add_member(r.room, *room, std::move(m));
      if (room->truncated()) schedule_presence(r.room, *room);  // the count changed
    }
  }
  std::string key;
  if (!r.cid.empty()) {
    // Exactly-once: the first record with (user, cid) in this room wins, in
    // bus order, in every engine alike. A repeat publishes nothing; its
    // sender gets the original back.
    key = room_cid_key(r.user, r.cid);
    if (const CidOriginal* original = room->find_cid(key)) {
      answer_duplicate(r.conn, original->frame);
      return;
    }
  }
  record_and_broadcast(*room, seq, encode_message_event(r.room, from, r.text, seq, r.ts, r.cid),
                       std::move(key));
}

void ChatEngine::answer_duplicate(const std::string& conn_id, const FramePtr& original) {
  ++stats_.cid_duplicates;
  if (conn_id.empty()) return;  // the publish API reads cid_seq instead
  if (LocalConn* c = local(conn_id)) deliver(c->peer, original);
}

void ChatEngine::apply_direct(const ChatRecord& r) {
  // Directs are not room events: no history, delivered to whoever is
  // connected now. A linear pass is fine: directs are rare next to room
  // traffic and local_ is one process's connections.
  FramePtr frame;
  if (!r.cid.empty()) {
    const std::string key = direct_cid_key(r.from, r.to, r.cid);
    if (const CidOriginal* original = direct_cids_.find(key)) {
      answer_duplicate(r.conn, original->frame);
      return;
    }
    frame = make_text_frame(encode_direct(r.from, r.to, r.text, r.ts, r.cid));
    direct_cids_.add(key, CidOriginal{0, frame});
  }
  for (const auto& c : local_) {
    if (c.second.base != r.to && c.second.base != r.from) continue;
    if (!frame) frame = make_text_frame(encode_direct(r.from, r.to, r.text, r.ts));
    deliver(c.second.peer, frame);
  }
}

void ChatEngine::apply_gone(uint64_t seq, const ChatRecord& r) {
  if (pusher_) pusher_->apply_gone(r.pid, local_pid_, r.by);  // its Pusher sockets left too
  // Every leave of a dead process shares the gone record's seq. Members
  // attached here are alive whatever the record says (a reused pid).
  for (auto& room : rooms_) {
    std::vector<std::string> dead;
    for (const RoomMember& m : room.second.members()) {
      if (m.pid == r.pid && local_.count(m.conn_id) == 0) dead.push_back(m.conn_id);
    }
    for (const std::string& conn : dead) remove_member(room.first, room.second, conn, seq, r.ts);
  }
}

Room* ChatEngine::find_or_create_room(const std::string& name) {
  const auto it = rooms_.find(name);
  if (it != rooms_.end()) return &it->second;
  if (rooms_.size() >= config_.max_rooms && !forget_idle_room()) return nullptr;
  return &rooms_
              .emplace(std::piecewise_construct, std::forward_as_tuple(name),
                       std::forward_as_tuple(config_.history_size, resume_floor_,
                                             config_.presence_limit))
              .first->second;
}

bool ChatEngine::forget_idle_room() {
  // The empty room idle the longest (ties: first by name) — a pure function
  // of the applied records, so every engine forgets the same one.
  RoomMap::iterator victim = rooms_.end();
  for (auto it = rooms_.begin(); it != rooms_.end(); ++it) {
    if (!it->second.members().empty()) continue;
    if (victim == rooms_.end() || it->second.last_seq() < victim->second.last_seq()) victim = it;
  }
  if (victim == rooms_.end()) return false;
  resume_floor_ = std::max({resume_floor_, victim->second.last_seq(),
                            victim->second.evicted_upto()});
  rooms_.erase(victim);
  return true;
}

void ChatEngine::add_member(const std::string& room_name, Room& room, RoomMember member) {
  count(members_by_user_, member.user, true);
  if (LocalConn* c = local(member.conn_id)) c->rooms[room_name] = member.name;
  room.add(std::move(member));
}

void ChatEngine::remove_member(const std::string& room_name, Room& room,
                               const std::string& conn_id, uint64_t seq, int64_t ts) {
  const RoomMember* m = room.find(conn_id);
  if (m == nullptr) return;
  // Broadcast before removing: the leaver's other frames confirm the leave
  // with its seq, like the join event confirms a join.
  const bool quiet = room.truncated();
  std::string event = encode_system_event(room_name, "leave", m->name, seq, ts);
  if (quiet) {
    quiet_event(room_name, room, seq, m->peer, event);
  } else {
    record_and_broadcast(room, seq, std::move(event));
  }
  RoomMember removed;
  room.remove(conn_id, &removed);
  count(members_by_user_, removed.user, false);
  if (LocalConn* c = local(conn_id)) c->rooms.erase(room_name);
  if (!quiet) {
    room.presence().sent_version = room.shown_version();  // the event told everybody
  } else if (!room.truncated()) {
    // Back at the limit: join and leave events resume with the next one, so
    // every list must be whole (and known to be) before it, not a second later.
    send_presence_update(room_name, room);
  }
}

void ChatEngine::record_and_broadcast(Room& room, uint64_t seq, std::string json, std::string cid_key) {
  // Encoded once; every member's queue shares the same bytes.
  const FramePtr frame = make_text_frame(json);
  room.record(seq, frame, std::move(cid_key));
  for (const LocalMember& m : room.local_members()) deliver(m.peer, frame);
}

ChatEngine::LocalConn* ChatEngine::local(const std::string& conn_id) {
  const auto it = local_.find(conn_id);
  return it == local_.end() ? nullptr : &it->second;
}

void ChatEngine::deliver(const PeerPtr& peer, const FramePtr& frame) {
  if (peer && peer->deliver(frame)) {
    ++stats_.frames_delivered;
  } else {
    ++stats_.deliveries_refused;
  }
}

void ChatEngine::count(std::unordered_map<std::string, size_t>& counts, const std::string& key,
                       bool up) {
  if (up) {
    ++counts[key];
    return;
  }
  const auto it = counts.find(key);
  if (it != counts.end() && --it->second == 0) counts.erase(it);
}

std::vector<RoomCount> ChatEngine::room_list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RoomCount> list;
  for (const auto& room : rooms_) {
    if (!room.second.members().empty())
      list.push_back(RoomCount{room.first, room.second.members().size()});
  }
  return list;
}

bool ChatEngine::user_online(std::string_view base_name) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key(base_name);
  return members_by_user_.count(key) != 0 || local_by_user_.count(key) != 0;
}

std::string ChatEngine::member_name(const std::string& conn_id, std::string_view room) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto c = local_.find(conn_id);
  if (c == local_.end()) return {};
  const auto r = c->second.rooms.find(room);
  return r == c->second.rooms.end() ? std::string() : r->second;
}

uint64_t ChatEngine::cid_seq(std::string_view room, std::string_view user, std::string_view cid) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = rooms_.find(room);
  if (it == rooms_.end()) return 0;
  const CidOriginal* original = it->second.find_cid(room_cid_key(user, cid));
  return original ? original->seq : 0;
}

FramePtr ChatEngine::direct_original(std::string_view from, std::string_view to, std::string_view cid) const {
  std::lock_guard<std::mutex> lock(mu_);
  const CidOriginal* original = direct_cids_.find(direct_cid_key(from, to, cid));
  return original ? original->frame : nullptr;
}

ChatEngineStats ChatEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ChatEngineStats s = stats_;
  s.direct_cids = direct_cids_.size();
  s.rooms = rooms_.size();
  s.local_connections = local_.size();
  s.channels = channels_.channel_count();
  s.subscriptions = channels_.subscription_count();
  return s;
}

}  // namespace wsb
