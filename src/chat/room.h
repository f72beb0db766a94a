// One room's state inside a ChatEngine: members in join order and the
// recent events for history/resume. Not thread-safe: the engine's lock
// covers it.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/frame.h"
#include "runtime/peer.h"

namespace wsb {

struct RoomMember {
  std::string conn_id;
  std::string name;  // effective name in this room ("bob", "bob#2")
  std::string user;  // the connection's base name
  long pid = 0;      // owning process (for "gone" records)
  PeerPtr peer;      // set only when the connection is local to this process
};

// A room event as it went out live: the frame every member got, kept once
// for history too (the JSON is the frame's payload).
struct HistoryEvent {
  uint64_t seq = 0;
  FramePtr frame;  // an unmasked server text frame
  std::string_view json() const;
};

struct HistoryWindow {
  std::vector<std::string_view> events;  // valid until the room changes
  bool complete = true;
};

class Room {
 public:
  // resume_floor: the newest seq the engine may have forgotten about a room
  // of this name before creating this one (see ChatEngine::create_room).
  Room(size_t history_size, uint64_t resume_floor);

  RoomMember* find(std::string_view conn_id);
  const std::vector<RoomMember>& members() const { return members_; }
  std::vector<RoomMember>& members() { return members_; }
  std::vector<std::string> member_names() const;

  // The requested name if no member uses it, else the smallest free
  // "requested#k", k >= 2. Deterministic given the member set, which is
  // what keeps names identical in every engine.
  std::string free_name(const std::string& requested) const;

  // Adds a member under member.name as given (callers use free_name first).
  void add(RoomMember member);
  // Removes the member; false if conn_id is not one.
  bool remove(std::string_view conn_id, RoomMember* removed);

  void record(uint64_t seq, FramePtr frame);
  uint64_t last_seq() const { return last_seq_; }

  // Events with seq > since (or all kept, without since) and whether
  // nothing between since and the first returned event was dropped.
  HistoryWindow history(bool has_since, uint64_t since) const;

  // Events up to seq may be missing (the engine's reader was overrun).
  void mark_lost_upto(uint64_t seq);
  uint64_t evicted_upto() const { return evicted_upto_; }

 private:
  size_t history_size_;
  std::vector<RoomMember> members_;
  std::unordered_map<std::string, size_t> name_use_;  // effective name -> members using it
  std::deque<HistoryEvent> history_;
  uint64_t evicted_upto_ = 0;
  uint64_t resume_floor_ = 0;
  uint64_t last_seq_ = 0;
};

}  // namespace wsb
