// The chat state of one process: rooms, members, history. The hub thread
// applies every bus record in bus order (apply), so every process's engine
// holds the same rooms and names; each engine delivers frames only to the
// connections attached to it (the local ones).
//
// Rooms above config.presence_limit fold joins and leaves into presence
// updates (room_presence.h, docs/large-rooms.md).
//
// Threads: apply/on_overrun/on_tick run on the hub thread; attach/rename/detach and
// the queries run on session threads. One mutex covers the state and is held
// while frames are handed to Peers, so Peer::deliver must never call back
// into the engine.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chat/chat_config.h"
#include "chat/chat_protocol.h"
#include "chat/chat_record.h"
#include "chat/room.h"
#include "chat/room_presence.h"
#include "engine/channel_subscriptions.h"
#include "engine/pusher_channels.h"
#include "runtime/peer.h"

namespace wsb {

struct ChatEngineStats {
  uint64_t events_applied = 0;      // well-formed records applied
  uint64_t records_skipped = 0;     // malformed or already-applied records
  uint64_t frames_delivered = 0;    // Peer::deliver returned true
  uint64_t deliveries_refused = 0;  // Peer::deliver returned false (closed/overflowed)
  uint64_t overruns = 0;            // gaps in the record sequence after the start
  uint64_t sync_requests = 0;       // "sync" records this engine asked to publish
  uint64_t last_seq = 0;            // newest record applied
  size_t rooms = 0;
  size_t local_connections = 0;
  size_t channels = 0;              // channels with a local subscriber (GRIP)
  size_t subscriptions = 0;
  uint64_t publishes_applied = 0;   // pub records applied
  uint64_t quiet_events = 0;        // joins/leaves above the presence limit (not broadcast)
  uint64_t presence_updates = 0;    // folded presence updates made (one frame per room each)
  uint64_t cid_duplicates = 0;      // msg/direct records dropped as repeats of a cid (cid_index.h)
  size_t direct_cids = 0;           // direct cids remembered now
};

// How many direct cids every engine remembers (the newest; cid_index.h),
// and how many bytes of their frames at most.
constexpr size_t kDirectCidWindow = 4096;
constexpr size_t kDirectCidBytes = 4 * 1024 * 1024;

class ChatEngine {
 public:
  // clock: monotonic milliseconds, for the pace of presence updates
  // (empty: monotonic_ms; tests pass their own).
  explicit ChatEngine(const ChatConfig& config, std::function<int64_t()> clock = {});
  ChatEngine(const ChatEngine&) = delete;
  ChatEngine& operator=(const ChatEngine&) = delete;

  // A local connection starts/stops receiving frames. Attach before
  // publishing the connection's first record, so its own join finds it.
  void attach(const std::string& conn_id, const std::string& base_name, PeerPtr peer);
  // The connection settled its base name (first join with a name).
  void rename(const std::string& conn_id, const std::string& base_name);
  void detach(const std::string& conn_id);

  // Channel subscriptions of a local connection in app namespace ns (the
  // backend bridge's GRIP channels). Local only: a publish record reaches
  // every process, and each delivers to its own subscribers.
  ChannelSubscriptions::Result subscribe(const std::string& conn_id, std::string_view ns,
                                         std::string_view channel, PeerPtr peer);
  bool unsubscribe(const std::string& conn_id, std::string_view ns, std::string_view channel);
  void unsubscribe_all(const std::string& conn_id);

  // The Pusher protocol's channels (engine/pusher_channels.h; defined in
  // chat_engine_pusher.cpp). Records of type psub/pleave/pterm and pub
  // events are skipped until enable_pusher() gave the renderer.
  void enable_pusher(std::unique_ptr<PusherRender> render, long local_pid);  // the first call counts
  void pusher_attach(const std::string& socket_id, std::string_view ns, PeerPtr peer);
  void pusher_detach(const std::string& socket_id);
  void pusher_set_user(const std::string& socket_id, std::string_view user_id);
  std::vector<PusherChannelInfo> pusher_channels(std::string_view ns, std::string_view prefix) const;
  std::optional<PusherChannelInfo> pusher_channel(std::string_view ns, std::string_view name) const;
  std::vector<std::string> pusher_users(std::string_view ns, std::string_view name) const;
  std::vector<PusherHook> take_pusher_hooks();

  // Hub thread only, in bus order. Records at or below the last applied seq
  // are ignored; a jump past last+1 is treated as an overrun of the missing
  // range (an engine that starts reading late gets exactly that).
  void apply(uint64_t seq, std::string_view record);
  // The bus reader lost lost_from..lost_to: every local connection gets a
  // "history-lost" error and no room may claim complete history before it.
  // Before the first apply it is a late start (HubThread from cursor 0 on a
  // wrapped ring): same floors, no error frames.
  void on_overrun(uint64_t lost_from, uint64_t lost_to);
  // Hub thread, about once a second: sends the presence updates that are
  // due and had no record to carry them out (apply() sends them too).
  void on_tick();

  // Hub thread, after apply()/on_overrun(): records this engine wants
  // published — a "sync" request after it missed records, "present"
  // answers to another engine's sync. Empty most of the time.
  std::vector<std::string> take_outbox();
  // Whether take_outbox() has anything, without the engine's lock: the hub
  // asks after every record.
  bool has_outbox() const { return outbox_pending_.load(std::memory_order_acquire); }
  // Pusher webhook hooks waiting for take_pusher_hooks (one load per record).
  bool has_pusher_hooks() const { return hooks_pending_.load(std::memory_order_acquire); }

  // Rooms with at least one member, by name (for the welcome frame).
  std::vector<RoomCount> room_list() const;
  // A connection with this base name is attached here or is a member of a
  // room in any process.
  bool user_online(std::string_view base_name) const;
  // The connection's effective name in room once its join was applied
  // here ("" before, or if not a member).
  std::string member_name(const std::string& conn_id, std::string_view room) const;
  // Exactly-once (cid_index.h). The seq of the room message first applied
  // with (user, cid) while it is still in the room's history; user "" for
  // the publish API's Idempotency-Key. 0 if unknown.
  uint64_t cid_seq(std::string_view room, std::string_view user, std::string_view cid) const;
  // The frame of the direct first applied with (from, to, cid) while it is
  // in the recent window; null if unknown.
  FramePtr direct_original(std::string_view from, std::string_view to, std::string_view cid) const;
  ChatEngineStats stats() const;
  // The newest record applied (stats().last_seq without copying the rest).
  uint64_t last_seq() const;

 private:
  struct LocalConn {
    std::string base;
    PeerPtr peer;
    std::map<std::string, std::string, std::less<>> rooms;  // room -> effective name
  };
  using RoomMap = std::map<std::string, Room, std::less<>>;

  void apply_join(uint64_t seq, const ChatRecord& r);
  void apply_leave(uint64_t seq, const ChatRecord& r);
  void apply_msg(uint64_t seq, const ChatRecord& r);
  void apply_direct(const ChatRecord& r);
  void apply_gone(uint64_t seq, const ChatRecord& r);
  void apply_sync(uint64_t seq);
  void apply_present(const ChatRecord& r);
  void apply_publish(const ChatRecord& r);
  void apply_pusher(const ChatRecord& r);
  void want_sync(uint64_t seq);
  void note_gap(uint64_t lost_from, uint64_t lost_to);

  Room* find_or_create_room(const std::string& name);
  bool forget_idle_room();
  void add_member(const std::string& room_name, Room& room, RoomMember member);
  void remove_member(const std::string& room_name, Room& room, const std::string& conn_id,
                     uint64_t seq, int64_t ts);
  void record_and_broadcast(Room& room, uint64_t seq, std::string json, std::string cid_key = {});
  // A repeated cid: the original goes to the sending connection if it is
  // local here, and nowhere else.
  void answer_duplicate(const std::string& conn_id, const FramePtr& original);
  // Presence of rooms above the limit (chat_engine_presence.cpp).
  void quiet_event(const std::string& room_name, Room& room, uint64_t seq, const PeerPtr& own,
                   std::string_view json);
  void schedule_presence(const std::string& room_name, Room& room);
  void send_presence_update(std::string_view room_name, Room& room);
  void send_due_presence();
  LocalConn* local(const std::string& conn_id);
  void deliver(const PeerPtr& peer, const FramePtr& frame);
  static void count(std::unordered_map<std::string, size_t>& counts, const std::string& key,
                    bool up);

  const ChatConfig config_;
  mutable std::mutex mu_;
  RoomMap rooms_;
  std::unordered_map<std::string, LocalConn> local_;
  std::unordered_map<std::string, size_t> members_by_user_;  // all processes
  std::unordered_map<std::string, size_t> local_by_user_;
  // Newest seq this engine may have missed or forgotten (overruns, rooms
  // dropped at max_rooms): a room created later cannot promise a resume
  // from before it is complete.
  uint64_t resume_floor_ = 0;
  // After a gap, members may be unknown here; messages then carry enough to
  // adopt their sender (see apply_msg).
  bool gap_seen_ = false;
  // After a gap: leaves of members unknown here, by connection, with their
  // seq, so a "present" answer taken before such a leave cannot bring the
  // member back (see apply_present).
  std::unordered_map<std::string, uint64_t> left_unknown_;
  uint64_t last_sync_request_ = 0;  // seq at which the last sync was asked for
  bool sync_requested_ = false;
  std::function<int64_t()> clock_;
  PresenceSchedule presence_due_;
  ChannelSubscriptions channels_;
  std::unique_ptr<PusherRender> pusher_render_;
  std::unique_ptr<PusherChannels> pusher_;
  long local_pid_ = 0;
  RecentCids direct_cids_{kDirectCidWindow, kDirectCidBytes};
  std::vector<std::string> outbox_;
  std::atomic<bool> outbox_pending_{false};  // !outbox_.empty(), readable without mu_
  std::atomic<bool> hooks_pending_{false};   // pusher_->has_hooks(), readable without mu_
  ChatEngineStats stats_;
};

}  // namespace wsb
