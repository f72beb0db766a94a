// ChatEngine: presence in rooms above the presence limit (room_presence.h,
// docs/large-rooms.md). Everything here runs under the engine's lock.
#include "chat/chat_engine.h"

namespace wsb {

// A join or leave in a room above the limit: only the member concerned is
// told (its own event confirms the join or leave with its seq, as in any
// room); the history does not keep it, so a resume replays exactly what
// members saw live; everybody else gets the new count in the next update.
void ChatEngine::quiet_event(const std::string& room_name, Room& room, uint64_t seq,
                             const PeerPtr& own, std::string_view json) {
  ++stats_.quiet_events;
  room.touch(seq);
  if (own) deliver(own, make_text_frame(json));
  schedule_presence(room_name, room);
}

void ChatEngine::schedule_presence(const std::string& room_name, Room& room) {
  RoomPresence& p = room.presence();
  if (p.pending) return;  // already scheduled
  p.pending = true;
  // The first change after a quiet second goes out at the end of this
  // record (send_due_presence); later ones wait for the interval.
  presence_due_.add(room_name, p.last_update_ms);
}

void ChatEngine::send_presence_update(std::string_view room_name, Room& room) {
  ++stats_.presence_updates;
  const FramePtr frame = make_text_frame(take_presence_update(room_name, room, clock_()));
  for (const LocalMember& m : room.local_members()) deliver(m.peer, frame);
}

void ChatEngine::send_due_presence() {
  if (presence_due_.empty()) return;  // no clock read on the common path
  const int64_t now = clock_();
  if (!presence_due_.due(now)) return;
  for (const std::string& name : presence_due_.take_due(now)) {
    const auto room = rooms_.find(name);
    // Gone, or already told (the room came back to the limit meanwhile).
    if (room == rooms_.end() || !room->second.presence().pending) continue;
    send_presence_update(room->first, room->second);
  }
}

void ChatEngine::on_tick() {
  std::lock_guard<std::mutex> lock(mu_);
  send_due_presence();
}

}  // namespace wsb
