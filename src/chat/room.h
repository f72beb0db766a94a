// One room's state inside a ChatEngine: members in join order and the
// recent events for history/resume. Not thread-safe: the engine's lock
// covers it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chat/cid_index.h"
#include "chat/room_presence.h"
#include "runtime/frame.h"
#include "runtime/peer.h"

namespace wsb {

struct RoomMember {
  std::string conn_id;
  std::string name;  // effective name in this room ("bob", "bob#2")
  std::string user;  // the connection's base name
  long pid = 0;      // owning process (for "gone" records)
  PeerPtr peer;      // set only when the connection is local to this process
  uint64_t order = 0;  // set by Room::add: increases in join order
  size_t local_slot = 0;  // position in Room::local_members() while peer is set
};

// A member attached to this process: what a broadcast walks.
struct LocalMember {
  PeerPtr peer;
  RoomMember* member;
};

// A room event as it went out live: the frame every member got, kept once
// for history too (the JSON is the frame's payload).
struct HistoryEvent {
  uint64_t seq = 0;
  FramePtr frame;  // an unmasked server text frame
  std::string cid_key;  // room_cid_key of a message with a cid, else empty
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
  // shown_limit: how many names a presence frame lists (WSBridgePresenceLimit).
  Room(size_t history_size, uint64_t resume_floor,
       size_t shown_limit = std::numeric_limits<size_t>::max());
  // Not copyable or movable: the member index points into the list.
  Room(const Room&) = delete;
  Room& operator=(const Room&) = delete;

  // O(1): a 10,000-member room is looked up on every join, leave and message.
  RoomMember* find(std::string_view conn_id);
  const std::list<RoomMember>& members() const { return members_; }
  size_t size() const { return members_.size(); }
  // The members with a peer, in no particular order: fan-out walks this
  // compact array, not every member of every process.
  const std::vector<LocalMember>& local_members() const { return local_; }
  // The member's connection detached: no more deliveries to it.
  void drop_peer(std::string_view conn_id);
  std::vector<std::string> member_names() const;

  // The first min(size, shown_limit) names in join order: what presence
  // frames list. shown_version() changes whenever that list does (a join
  // into it, a leave out of it), so callers can tell whether members'
  // copies are stale without comparing names.
  std::vector<std::string> shown_names() const;
  uint64_t shown_version() const { return shown_version_; }
  // More members than a presence frame lists.
  bool truncated() const { return members_.size() > shown_limit_; }
  // The engine's bookkeeping of folded presence updates for this room.
  RoomPresence& presence() { return presence_; }

  // The requested name if no member uses it, else the smallest free
  // "requested#k", k >= 2. Deterministic given the member set, which is
  // what keeps names identical in every engine.
  std::string free_name(const std::string& requested) const;

  // Adds a member under member.name as given (callers use free_name first).
  void add(RoomMember member);
  // Removes the member; false if conn_id is not one.
  bool remove(std::string_view conn_id, RoomMember* removed);

  // cid_key: the event's room_cid_key (a message with a cid), or empty.
  // The key is remembered while the event stays in the history.
  void record(uint64_t seq, FramePtr frame, std::string cid_key = {});
  // The event that was recorded first with this key, if still kept.
  const CidOriginal* find_cid(const std::string& cid_key) const;
  size_t cid_count() const { return cids_.size(); }
  // Activity that is not kept in the history (a join or leave in a room
  // above the presence limit): it still counts for last_seq().
  void touch(uint64_t seq);
  uint64_t last_seq() const { return last_seq_; }

  // Events with seq > since (or all kept, without since) and whether
  // nothing between since and the first returned event was dropped.
  HistoryWindow history(bool has_since, uint64_t since) const;

  // Events up to seq may be missing (the engine's reader was overrun).
  void mark_lost_upto(uint64_t seq);
  uint64_t evicted_upto() const { return evicted_upto_; }

 private:
  using MemberIt = std::list<RoomMember>::iterator;
  size_t shown_count() const { return std::min(members_.size(), shown_limit_); }
  bool is_shown(const RoomMember& m) const;
  void unlink_local(RoomMember& m);

  size_t history_size_;
  size_t shown_limit_;
  std::list<RoomMember> members_;  // join order
  // conn_id -> member; the keys view the conn_id inside the list node.
  std::unordered_map<std::string_view, MemberIt> index_;
  std::unordered_map<std::string, size_t> name_use_;  // effective name -> members using it
  std::vector<LocalMember> local_;
  MemberIt last_shown_;  // the last of the shown members; valid while shown_count() > 0
  uint64_t next_order_ = 0;
  uint64_t shown_version_ = 0;
  RoomPresence presence_;
  std::deque<HistoryEvent> history_;
  std::unordered_map<std::string, CidOriginal> cids_;  // keys of events in history_
  uint64_t evicted_upto_ = 0;
  uint64_t resume_floor_ = 0;
  uint64_t last_seq_ = 0;
};

}  // namespace wsb
