#include "chat/room.h"

#include <algorithm>
#include <iterator>

namespace wsb {

Room::Room(size_t history_size, uint64_t resume_floor, size_t shown_limit)
    : history_size_(history_size), shown_limit_(shown_limit), resume_floor_(resume_floor) {}

RoomMember* Room::find(std::string_view conn_id) {
  const auto it = index_.find(conn_id);
  return it == index_.end() ? nullptr : &*it->second;
}

std::vector<std::string> Room::member_names() const {
  std::vector<std::string> names;
  names.reserve(members_.size());
  for (const RoomMember& m : members_) names.push_back(m.name);
  return names;
}

std::vector<std::string> Room::shown_names() const {
  std::vector<std::string> names;
  const size_t n = shown_count();
  names.reserve(n);
  for (auto it = members_.begin(); names.size() < n; ++it) names.push_back(it->name);
  return names;
}

bool Room::is_shown(const RoomMember& m) const {
  // Orders increase along the list, so the shown members are exactly those
  // up to the last shown one.
  return shown_count() > 0 && m.order <= last_shown_->order;
}

void Room::drop_peer(std::string_view conn_id) {
  RoomMember* m = find(conn_id);
  if (m == nullptr) return;
  unlink_local(*m);
  m->peer.reset();
}

void Room::unlink_local(RoomMember& m) {
  if (!m.peer) return;
  // Swap with the last slot and pop: O(1), and fan-out order between
  // members does not matter (each member's own frames keep their order).
  if (m.local_slot + 1 != local_.size()) {
    LocalMember& slot = local_[m.local_slot];
    slot = std::move(local_.back());
    slot.member->local_slot = m.local_slot;
  }
  local_.pop_back();
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
  member.order = ++next_order_;
  ++name_use_[member.name];
  members_.push_back(std::move(member));
  const MemberIt it = std::prev(members_.end());
  index_.emplace(it->conn_id, it);
  if (it->peer) {
    it->local_slot = local_.size();
    local_.push_back(LocalMember{it->peer, &*it});
  }
  // Joins go to the end: only a room within the limit shows the newcomer.
  if (members_.size() <= shown_limit_) {
    last_shown_ = it;
    ++shown_version_;
  }
}

bool Room::remove(std::string_view conn_id, RoomMember* removed) {
  const auto found = index_.find(conn_id);
  if (found == index_.end()) return false;
  const MemberIt it = found->second;
  if (is_shown(*it)) {
    ++shown_version_;
    if (members_.size() > shown_limit_) {
      // The first member not shown so far moves up into the list.
      last_shown_ = std::next(last_shown_);
    } else if (it == last_shown_ && it != members_.begin()) {
      last_shown_ = std::prev(it);  // everybody is shown: the new last member
    }
  }
  unlink_local(*it);
  index_.erase(found);  // before the conn_id its key views moves out
  const auto use = name_use_.find(it->name);
  if (use != name_use_.end() && --use->second == 0) name_use_.erase(use);
  *removed = std::move(*it);
  // A list, not swap-and-pop: presence lists keep join order.
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

void Room::touch(uint64_t seq) { last_seq_ = std::max(last_seq_, seq); }

void Room::record(uint64_t seq, FramePtr frame, std::string cid_key) {
  last_seq_ = std::max(last_seq_, seq);
  if (!cid_key.empty() && history_size_ > 0) cids_.emplace(cid_key, CidOriginal{seq, frame});
  history_.push_back(HistoryEvent{seq, std::move(frame), std::move(cid_key)});
  while (history_.size() > history_size_) {
    const HistoryEvent& old = history_.front();
    evicted_upto_ = std::max(evicted_upto_, old.seq);
    if (!old.cid_key.empty()) {
      // Only the entry this event made: a later event never reuses a key
      // (the engine drops duplicates before recording).
      const auto it = cids_.find(old.cid_key);
      if (it != cids_.end() && it->second.seq == old.seq) cids_.erase(it);
    }
    history_.pop_front();
  }
}

const CidOriginal* Room::find_cid(const std::string& cid_key) const {
  const auto it = cids_.find(cid_key);
  return it == cids_.end() ? nullptr : &it->second;
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
