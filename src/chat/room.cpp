#include "chat/room.h"

#include <algorithm>

namespace wsb {

Room::Room(size_t history_size, uint64_t resume_floor)
    : history_size_(history_size), resume_floor_(resume_floor) {}

RoomMember* Room::find(std::string_view conn_id) {
  for (RoomMember& m : members_) {
    if (m.conn_id == conn_id) return &m;
  }
  return nullptr;
}

std::vector<std::string> Room::member_names() const {
  std::vector<std::string> names;
  names.reserve(members_.size());
  for (const RoomMember& m : members_) names.push_back(m.name);
  return names;
}

std::string Room::free_name(const std::string& requested) const {
  if (name_use_.count(requested) == 0) return requested;
  // At most members_.size() suffixes can be taken, so this ends by then.
  for (size_t k = 2;; ++k) {
    std::string candidate = requested + "#" + std::to_string(k);
    if (name_use_.count(candidate) == 0) return candidate;
  }
}

void Room::add(RoomMember member) {
  ++name_use_[member.name];
  members_.push_back(std::move(member));
}

bool Room::remove(std::string_view conn_id, RoomMember* removed) {
  const auto it = std::find_if(members_.begin(), members_.end(),
                               [&](const RoomMember& m) { return m.conn_id == conn_id; });
  if (it == members_.end()) return false;
  const auto use = name_use_.find(it->name);
  if (use != name_use_.end() && --use->second == 0) name_use_.erase(use);
  *removed = std::move(*it);
  // erase, not swap-and-pop: presence lists keep join order.
  members_.erase(it);
  return true;
}

std::string_view HistoryEvent::json() const {
  // Server frames are FIN + opcode, then a 7-bit length, or 126 + 16 bits,
  // or 127 + 64 bits, and no mask.
  const std::string& f = *frame;
  const uint8_t len7 = static_cast<uint8_t>(f[1]) & 0x7f;
  const size_t header = len7 == 127 ? 10 : len7 == 126 ? 4 : 2;
  return std::string_view(f).substr(header);
}

void Room::record(uint64_t seq, FramePtr frame) {
  last_seq_ = std::max(last_seq_, seq);
  history_.push_back(HistoryEvent{seq, std::move(frame)});
  while (history_.size() > history_size_) {
    evicted_upto_ = std::max(evicted_upto_, history_.front().seq);
    history_.pop_front();
  }
}

HistoryWindow Room::history(bool has_since, uint64_t since) const {
  HistoryWindow w;
  if (has_since) {
    // The client saw everything up to since; nothing is missing if every
    // event after it is still here and no older room of this name was
    // forgotten after it.
    w.complete = since >= std::max(evicted_upto_, resume_floor_);
  } else {
    w.complete = evicted_upto_ == 0;
  }
  for (const HistoryEvent& e : history_) {
    if (!has_since || e.seq > since) w.events.push_back(e.json());
  }
  return w;
}

void Room::mark_lost_upto(uint64_t seq) {
  evicted_upto_ = std::max(evicted_upto_, seq);
}

}  // namespace wsb
