// The ordered log every chat event goes through (DESIGN.md "Apache
// children"). Writers append records; each record gets the next sequence
// number (1, 2, 3, ...), which is the chat's global order. Readers tail the
// log from a cursor. Implementations: ShmBus (shared memory, all children of
// one server), RedisBus (several servers).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

struct BusRecord {
  uint64_t seq = 0;
  std::string payload;
};

struct BusReadResult {
  // Records appended after the cursor, in order (at most max_records).
  // When the reader fell behind further than the log keeps, overrun is true,
  // lost_from..lost_to are the sequence numbers that can no longer be read,
  // and reading continues at the oldest record still kept.
  bool overrun = false;
  uint64_t lost_from = 0, lost_to = 0;
};

class Bus {
 public:
  virtual ~Bus() = default;
  // Appends a record; returns its sequence number, or 0 when it could not be
  // appended (record larger than the log, bus unavailable).
  virtual uint64_t publish(std::string_view payload) = 0;
  // Reads records with seq > *cursor into out (appending), advancing *cursor
  // to the last record read. Never blocks.
  virtual BusReadResult read(uint64_t* cursor, std::vector<BusRecord>& out,
                             size_t max_records) = 0;
  // Blocks until a record with seq > cursor exists, wake() is called, or
  // timeout_ms passes. Returns true if new records may be available.
  virtual bool wait(uint64_t cursor, int timeout_ms) = 0;
  // Wakes every waiter (spurious wake-ups are allowed).
  virtual void wake() = 0;
  // Sequence number of the newest record (0 if none).
  virtual uint64_t last_seq() const = 0;
  // Whether a record after cursor is known to exist, answered without I/O
  // (the hub asks it between the writes of one hand-over). False when the
  // bus cannot tell cheaply: the record then waits for the next read().
  virtual bool has_after(uint64_t /*cursor*/) const { return false; }
  // Sequence number of the oldest record still readable (0 if none).
  virtual uint64_t first_seq() const = 0;
  // This bus's identity (runtime/bus_id.h): 16 hex digits, the same for
  // every reader and writer of this log, new whenever the log starts again
  // with new numbering. "" when it cannot be known now (Redis unreachable):
  // a caller must then not trust a seq that came from outside.
  virtual std::string id() const = 0;
};

}  // namespace wsb
