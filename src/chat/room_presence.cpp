#include "chat/room_presence.h"

#include <algorithm>

#include "chat/chat_protocol.h"
#include "chat/room.h"

namespace wsb {

void PresenceSchedule::add(const std::string& room, int64_t last_update_ms) {
  const int64_t at = last_update_ms + interval_ms_;
  auto it = due_.find(room);
  if (it == due_.end()) {
    due_.emplace(room, at);
  } else {
    it->second = std::min(it->second, at);
  }
  next_due_ = std::min(next_due_, at);
}

std::vector<std::string> PresenceSchedule::take_due(int64_t now_ms) {
  std::vector<std::string> out;
  next_due_ = std::numeric_limits<int64_t>::max();
  for (auto it = due_.begin(); it != due_.end();) {
    if (it->second <= now_ms) {
      out.push_back(it->first);
      it = due_.erase(it);
    } else {
      next_due_ = std::min(next_due_, it->second);
      ++it;
    }
  }
  return out;
}

std::string joiner_presence(std::string_view room_name, const Room& room, std::string_view you) {
  if (!room.truncated()) return encode_presence(room_name, room.member_names(), you);
  return encode_presence(room_name, room.shown_names(), you, room.size());
}

std::string take_presence_update(std::string_view room_name, Room& room, int64_t now_ms) {
  RoomPresence& p = room.presence();
  // Members' lists are the shown names as of the last update (or of the
  // last join/leave event, or of their own join, which is newer): names go
  // out again only when that list changed since.
  const bool names_changed = p.sent_version != room.shown_version();
  std::vector<std::string> names;
  if (names_changed) names = room.shown_names();
  p.pending = false;
  p.last_update_ms = now_ms;
  p.sent_version = room.shown_version();
  return encode_presence_update(room_name, room.size(), room.truncated(),
                                names_changed ? &names : nullptr);
}

}  // namespace wsb
