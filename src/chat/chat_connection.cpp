#include "chat/chat_connection.h"

#include <chrono>
#include <utility>

#include "chat/chat_names.h"
#include "chat/chat_record.h"
#include "runtime/bus_id.h"
#include "protocol/opcode.h"

namespace wsb {

ChatConnection::ChatConnection(const ChatConfig& config, Bus& bus, ChatEngine& engine,
                               std::string conn_id, std::string base_name, bool name_fixed,
                               PeerPtr self, long pid, PendingPublishes* pending)
    : config_(config),
      bus_(bus),
      pending_(pending),
      engine_(engine),
      conn_id_(std::move(conn_id)),
      base_(base_name.empty() ? guest_name(conn_id_) : base_name),
      base_settled_(!base_name.empty()),
      name_fixed_(name_fixed),
      self_(std::move(self)),
      pid_(pid),
      limiter_(config.rate_per_sec, config.rate_burst) {}

ChatConnection::~ChatConnection() {
  if (!opened_ || closed_) return;
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  close(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

FramePtr ChatConnection::open(int64_t /*now_ms*/) {
  engine_.attach(conn_id_, base_, self_);
  opened_ = true;
  // The low 32 bits of the owner key are the process id (see chat_record.h).
  return make_text_frame(
      encode_welcome(base_, conn_id_, pid_ & 0xffffffffL, engine_.room_list(), bus_.id()));
}

ChatConnection::Action ChatConnection::on_text(std::string_view json, int64_t now_ms) {
  if (!opened_ || closed_) return {};
  const ParsedCommand p = parse_client_command(json, config_);
  // Everything but leave costs a token, malformed frames included: error
  // replies must not be a way around the limit. Leave stays free so a
  // throttled page can still tidy up.
  if (p.command.type != CommandType::Leave) {
    if (!limiter_.allow(now_ms)) {
      ++strikes_;
      Action a = error(ChatError::RateLimited, "too many commands, slow down");
      a.rate_limited = true;
      if (config_.rate_strikes != 0 && strikes_ >= config_.rate_strikes) {
        a.close = true;
        a.close_code = close_code::kPolicyViolation;
        a.close_reason = "rate limit exceeded";
      }
      return a;
    }
    strikes_ = 0;
  }
  if (p.error != ChatError::None) return error(p.error, p.reason);
  switch (p.command.type) {
    case CommandType::Join: return join(p.command, now_ms);
    case CommandType::Leave: return leave(p.command, now_ms);
    case CommandType::Message: return message(p.command, now_ms);
    case CommandType::Direct: return direct(p.command, now_ms);
    case CommandType::Unknown: break;
  }
  return error(ChatError::UnknownType, "unknown command");
}

ChatConnection::Action ChatConnection::join(const ClientCommand& c, int64_t now_ms) {
  if (rooms_.count(c.room) != 0)
    return error(ChatError::AlreadyJoined, "already in this room", c.room);
  if (rooms_.size() >= config_.max_rooms_per_connection)
    return error(ChatError::TooManyRooms,
                 "at most " + std::to_string(config_.max_rooms_per_connection) +
                     " rooms per connection",
                 c.room);
  // A token's uid is the name everywhere; others may pick one per room,
  // and the first one picked becomes their user name for direct messages.
  const bool pick = !name_fixed_ && c.has_name;
  const std::string base = !base_settled_ && pick ? c.name : base_;
  ChatRecord r;
  r.type = RecordType::Join;
  r.room = c.room;
  r.conn = conn_id_;
  r.user = base;
  r.name = pick ? c.name : base;
  r.pid = pid_;
  r.ts = now_ms;
  r.has_since = c.has_since;
  r.since = c.since;
  if (c.has_since && c.has_bus && !same_bus_id(c.bus, bus_.id())) {
    // Numbered by another bus (e.g. before a hard restart): this bus's seq
    // says nothing about what the client missed. Not sent at all, so an
    // engine of an older build answers the plain history too.
    r.has_since = false;
    r.since = 0;
    r.foreign_since = true;
  }
  if (base != base_) {
    // Before publishing, so a direct to the new name finds this connection
    // as soon as the join is visible anywhere.
    base_ = base;
    engine_.rename(conn_id_, base_);
  }
  base_settled_ = true;
  if (!publish(r)) return error(ChatError::Unavailable, "the server is busy, try again", c.room);
  rooms_.emplace(c.room, std::string());
  return {};
}

ChatConnection::Action ChatConnection::leave(const ClientCommand& c, int64_t now_ms) {
  if (rooms_.count(c.room) == 0) return error(ChatError::NotJoined, "not in this room", c.room);
  ChatRecord r;
  r.type = RecordType::Leave;
  r.room = c.room;
  r.conn = conn_id_;
  r.ts = now_ms;
  // Kept on failure: close() retries, so no ghost member stays behind.
  if (!publish(r)) return error(ChatError::Unavailable, "the server is busy, try again", c.room);
  rooms_.erase(c.room);
  return {};
}

ChatConnection::Action ChatConnection::message(const ClientCommand& c, int64_t now_ms) {
  const auto joined = rooms_.find(c.room);
  if (joined == rooms_.end()) return error(ChatError::NotJoined, "not in this room", c.room);
  // Only a hint for engines that missed our join (ChatEngine::apply_msg).
  // Cached once known: a member's name in a room never changes, and the
  // engine's lock is the hub's.
  if (joined->second.empty()) joined->second = engine_.member_name(conn_id_, c.room);
  ChatRecord r;
  r.type = RecordType::Msg;
  r.room = c.room;
  r.conn = conn_id_;
  r.user = base_;
  r.pid = pid_;
  r.from = joined->second;
  r.text = c.text;
  r.cid = c.cid;
  r.ts = now_ms;
  if (!publish(r)) return error(ChatError::Unavailable, "the server is busy, try again", c.room);
  return {};
}

ChatConnection::Action ChatConnection::direct(const ClientCommand& c, int64_t now_ms) {
  if (c.has_cid) {
    // A resend of a direct this engine already applied: the original, even
    // if the recipient went offline since. A race with the first copy still
    // on the bus is settled by the engines (apply_direct).
    Action a;
    a.reply = engine_.direct_original(base_, c.to, c.cid);
    if (a.reply) return a;
  }
  if (!engine_.user_online(c.to)) return error(ChatError::NoSuchUser, "no such user is online");
  ChatRecord r;
  r.type = RecordType::Direct;
  r.conn = conn_id_;
  r.from = base_;
  r.to = c.to;
  r.text = c.text;
  r.cid = c.cid;
  r.ts = now_ms;
  if (!publish(r)) return error(ChatError::Unavailable, "the server is busy, try again");
  return {};
}

void ChatConnection::close(int64_t now_ms) {
  if (closed_) return;
  closed_ = true;
  for (const auto& joined : rooms_) {
    ChatRecord r;
    r.type = RecordType::Leave;
    r.room = joined.first;
    r.conn = conn_id_;
    r.ts = now_ms;
    // Refused (a Redis outage): the hub publishes it once the bus is back;
    // without that the member would stay listed until its process exits.
    std::string payload = encode_record(r);
    if (bus_.publish(payload) == 0 && pending_) pending_->add(std::move(payload));
  }
  rooms_.clear();
  if (opened_) engine_.detach(conn_id_);
}

ChatConnection::Action ChatConnection::error(ChatError code, std::string_view reason,
                                             std::string_view room) {
  Action a;
  a.reply = make_text_frame(encode_error(code, reason, room));
  return a;
}

bool ChatConnection::publish(const ChatRecord& record) {
  return bus_.publish(encode_record(record)) != 0;
}

}  // namespace wsb
