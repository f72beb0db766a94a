// Exactly-once delivery of client messages (docs/chat-protocol.md, "Message
// ids"). A client tags a message or direct with a "cid"; a resend with the
// same cid after a reconnect must not publish twice. Publishes of the same
// cid from different connections, children or servers can race, so the
// decision is made where everything is ordered: the bus. Every engine
// applies the same records in the same order and keeps the same index, so
// "the first record with the key wins, later ones are duplicates" gives the
// same answer in every process, with no lock between them.
//
// Rooms keep the index inside their history (Room::record): a cid is
// remembered exactly as long as its event can be replayed by a resume.
// Directs have no history: RecentCids keeps a bounded window of the newest.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "runtime/frame.h"

namespace wsb {

// The original event of a cid: its seq (0 for directs) and the frame that
// went out live, which is what a duplicate's sender gets back.
struct CidOriginal {
  uint64_t seq = 0;
  FramePtr frame;
};

// The dedupe key of a room message: (user, cid). user is the sender's user
// name (a token's uid, or the name the connection settled on); "" for the
// publish API, whose keys are its Idempotency-Keys. Valid user names are
// never empty and never hold '\n', so keys of different users cannot meet.
std::string room_cid_key(std::string_view user, std::string_view cid);
// The dedupe key of a direct: (from, to, cid).
std::string direct_cid_key(std::string_view from, std::string_view to, std::string_view cid);

// A bounded first-in-first-out map key -> original: at most max_entries
// keys and max_bytes of frames (the oldest go first). A pure function of
// the add() sequence, so every engine forgets the same keys.
class RecentCids {
 public:
  RecentCids(size_t max_entries, size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  const CidOriginal* find(const std::string& key) const;
  // A key already present keeps its first original (the first one wins).
  void add(const std::string& key, CidOriginal original);
  size_t size() const { return map_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  void evict_oldest();

  const size_t max_entries_;
  const size_t max_bytes_;
  std::unordered_map<std::string, CidOriginal> map_;
  std::deque<std::string> order_;  // keys, oldest first
  size_t bytes_ = 0;
};

}  // namespace wsb
