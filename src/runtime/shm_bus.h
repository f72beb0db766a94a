// The bus for all children of one Apache server: a ring log in an anonymous
// shared mapping created in the parent's post_config and inherited by every
// forked child (DESIGN.md "Apache children").
//
// Writers (any thread, any process) serialise on a process-shared robust
// mutex in the mapping; a writer that dies holding it leaves nothing half
// visible, because a record becomes readable only when write_pos moves past
// it. Readers take no shared lock: they copy a record out and then check,
// seqlock-style, that the writer has not lapped them meanwhile. Waiting
// readers sleep on a shared futex word in the mapping.
//
// The mapping outlives these wrapper objects: Apache unloads and reloads the
// module's DSO on a graceful restart, so the parent keeps base()/
// mapping_size() in its process pool, re-wraps the mapping with attach() and
// finally unmaps it with destroy(). The header is self-describing (magic,
// version, sizes) so attach() can refuse a mapping of another layout. It
// also holds the bus id (bus_id.h), random per create().
//
// A bus can also live in a file (open_file(): WSBridgeBusFile): the same
// layout in a shared mapping of the file, so it outlives every process. The
// parent marks it closed cleanly when it stops (close_file()); the next
// start reopens it as it was (same id, seqs and records: a full stop and
// start is then like a graceful restart). A file not closed cleanly (the
// server crashed, its parent was killed) or made for another size gets a
// new bus, as an anonymous mapping would.
//
// A ShmBus object keeps one reader-side cache (the ring position that goes
// with the last cursor it returned), so that tailing costs no search. Use one
// object per reading thread for speed (attach() makes more); readers sharing
// an object are correct but serialise on a process-local mutex.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/bus.h"

namespace wsb {

struct ShmBusHeader;  // the shared layout, private to shm_bus.cpp

class ShmBus final : public Bus {
  struct Key {
    explicit Key() = default;
  };

 public:
  // Maps a new bus whose ring holds `bytes` (rounded up to 8; at least
  // kMinCapacity). Returns nullptr and sets *error on failure.
  static std::unique_ptr<ShmBus> create(size_t bytes, std::string* error);
  // Wraps a mapping made by create() (possibly by an earlier load of this
  // code); nullptr if base/bytes do not describe one.
  static std::unique_ptr<ShmBus> attach(void* base, size_t bytes);
  // Unmaps the bus. No wrapper of it may be used afterwards.
  static void destroy(void* base, size_t bytes);

  // The bus in file `path` (created 0600 if missing), its ring `bytes` as
  // for create(). The file is locked (flock) while *fd is open, so a second
  // server on the same file gets an error instead of a shared ring it does
  // not know of. *reopened: the file held this bus, closed cleanly, and it
  // continues; otherwise a new bus was made in it and *why_new says why.
  // Disk blocks are reserved up front (no SIGBUS on a full disk later).
  // Call only while no other process uses the file (the parent, at start).
  static std::unique_ptr<ShmBus> open_file(const std::string& path, size_t bytes, int* fd, bool* reopened,
                                           std::string* why_new, std::string* error);
  // Writes the mapping back to the file, marks it closed cleanly, unmaps it
  // and closes (unlocks) fd. Only once no process writes to it any more.
  static void close_file(void* base, size_t bytes, int fd);

  static constexpr size_t kMinCapacity = 256;

  ShmBus(Key, void* base, size_t mapping_size);
  ~ShmBus() override = default;  // deliberately does not unmap
  ShmBus(const ShmBus&) = delete;
  ShmBus& operator=(const ShmBus&) = delete;

  // Returns 0 when payload.size() > max_payload() or the lock is unusable.
  uint64_t publish(std::string_view payload) override;
  BusReadResult read(uint64_t* cursor, std::vector<BusRecord>& out,
                     size_t max_records) override;
  // A negative timeout waits without limit.
  bool wait(uint64_t cursor, int timeout_ms) override;
  void wake() override;
  uint64_t last_seq() const override;
  bool has_after(uint64_t cursor) const override { return last_seq() > cursor; }
  uint64_t first_seq() const override;
  // Made by create() and kept in the header: every child and every attach()
  // after a graceful restart sees the same id; a new mapping has a new one.
  std::string id() const override;

  void* base() const { return base_; }
  size_t mapping_size() const { return mapping_size_; }
  size_t capacity() const { return capacity_; }  // ring bytes
  // Largest payload publish() accepts: a whole record (header + payload,
  // padded to 8) may take at most a quarter of the ring, which bounds how
  // much one publish evicts and the padding wasted at the ring's end.
  size_t max_payload() const;

  // Test hooks for the dead-writer case; they leave the writer lock held
  // forever, so only a process that is about to be killed may call them.
  void lock_for_test();
  // Does everything publish() does except making the record visible.
  void abandon_publish_for_test(std::string_view payload);

 private:
  class WriterLock;
  struct Reservation {
    uint64_t seq = 0;
    uint64_t end = 0;  // write position just after the record
  };
  enum class Peek { Record, Padding, Corrupt };

  static bool initialize(void* base, uint64_t capacity, size_t mapping, std::string* error);
  int lock_writer();
  void repair_locked();
  Reservation write_locked(std::string_view payload);
  void commit_locked(const Reservation& r);
  void notify_readers();
  // Decodes the record or padding at pos; copies the payload into *payload
  // (if given) only when the record's seq >= copy_from_seq.
  Peek peek(uint64_t pos, uint64_t copy_from_seq, uint64_t* seq, uint64_t* size,
            std::string* payload) const;

  void* base_;
  size_t mapping_size_;
  ShmBusHeader* header_;
  std::atomic<uint64_t>* ring_;  // capacity_ / 8 words
  uint64_t capacity_;

  std::mutex reader_mu_;  // guards the cache below (process-local)
  bool cache_valid_ = false;
  uint64_t cache_seq_ = 0;  // a cursor value read() returned
  uint64_t cache_pos_ = 0;  // where the record after cache_seq_ is (or was)
};

}  // namespace wsb
