// Presence in rooms above the presence limit (WSBridgePresenceLimit,
// docs/large-rooms.md).
//
// Up to the limit a room behaves as it always did: every join and leave is
// a `system` event to every member and in the history, and a joiner's
// `presence` lists everybody. Above it a join or leave is quiet: only the
// member concerned gets its own event, the history does not keep it, and
// the other members learn the new count from one folded `presence` update
// per room at most once per interval, encoded once for all of them. The
// update lists names again only when the first `limit` names changed.
// Whether an event is quiet depends only on the member count, which every
// engine derives from the same bus records: every process keeps the same
// history, and a resume gets exactly the events a member saw live.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

class Room;

// Per room, kept in the Room.
struct RoomPresence {
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 2;
  bool pending = false;             // a quiet change the members were not told about yet
  int64_t last_update_ms = kNever;  // when the last update went out (engine clock)
  uint64_t sent_version = 0;        // the Room::shown_version() members' lists match
};

// Which rooms owe their members an update, and from when it may go out.
class PresenceSchedule {
 public:
  explicit PresenceSchedule(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // room has a change pending; its previous update went out at last_update_ms.
  void add(const std::string& room, int64_t last_update_ms);
  bool empty() const { return due_.empty(); }
  bool due(int64_t now_ms) const { return !due_.empty() && now_ms >= next_due_; }
  // The rooms whose update may go out at now_ms, removed from the schedule.
  std::vector<std::string> take_due(int64_t now_ms);

 private:
  int64_t interval_ms_;
  std::map<std::string, int64_t, std::less<>> due_;  // room -> earliest send time
  int64_t next_due_ = std::numeric_limits<int64_t>::max();
};

// The presence frame for a joiner (JSON): every name while the room is
// within the limit (byte for byte what rooms always sent), otherwise the
// first names in join order, "count" and "truncated": true.
std::string joiner_presence(std::string_view room_name, const Room& room, std::string_view you);

// The folded update every member of room_name gets (JSON), and the room's
// presence bookkeeping updated as sent at now_ms.
std::string take_presence_update(std::string_view room_name, Room& room, int64_t now_ms);

}  // namespace wsb
