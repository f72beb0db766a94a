// Shared-memory ring log (see shm_bus.h).
//
// Positions are byte offsets that only grow (write_pos counts every byte ever
// written); pos % capacity is the place in the ring. The readable log is
// [tail_pos, write_pos): records and padding, each starting on a word.
//
// Memory ordering, in one place:
//  - A writer evicts before it overwrites: it moves tail_pos past every
//    record the new bytes will cover, then stores the ring words with
//    release. A reader loads ring words with acquire and afterwards re-reads
//    tail_pos; if any word it saw came from an overwrite, that load
//    synchronises with the writer and the reader sees the moved tail_pos, so
//    "tail_pos <= pos after the copy" proves the copy is intact (a seqlock
//    whose sequence is the tail). Standalone fences would do the same with
//    plain copies, but ThreadSanitizer cannot model fences; per-word
//    acquire/release costs nothing on x86 and keeps TSan exact.
//  - write_pos is stored with release after the record is complete, so a
//    reader that sees write_pos sees the record, and a writer that dies
//    before that store leaves nothing visible.
#include "runtime/shm_bus.h"

#include "runtime/bus_id.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

namespace wsb {

// The shared layout. Bump kVersion whenever it changes: after a graceful
// restart a new build of the module may attach() to an old mapping.
struct ShmBusHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;
  uint64_t capacity;
  uint64_t mapping_size;
  uint64_t bus_id;  // random per create(), never changes (bus_id.h)
  pthread_mutex_t writer_mu;  // process-shared, robust
  // Writers store these under writer_mu; readers only load them.
  alignas(64) std::atomic<uint64_t> write_pos;  // end of the last committed record
  std::atomic<uint64_t> last_seq;    // seq of the last committed record
  std::atomic<uint64_t> tail_pos;    // start of the oldest readable bytes
  std::atomic<uint64_t> oldest_seq;  // seq of the oldest readable record
  std::atomic<uint64_t> next_seq;    // last seq handed out
  // Own cache line: bumped by every publish, slept on by waiting readers.
  alignas(64) std::atomic<uint32_t> futex_word;
  // Readers inside wait(), so publish can skip FUTEX_WAKE when there are none.
  // A reader killed while waiting leaves it high: only extra wake calls.
  std::atomic<uint32_t> waiters;
  // A file bus (open_file) whose parent stopped in order: 1 from
  // close_file() until the next open_file(). Added in the header's padding
  // (kHeaderSize did not change, see below): an anonymous mapping never
  // uses it, so kVersion stays and a graceful restart keeps older mappings.
  std::atomic<uint32_t> closed_cleanly;
};

namespace {

constexpr uint64_t kMagic = 0x316d687373756277ULL;  // "wbusshm1"
constexpr uint32_t kVersion = 2;  // 2: bus_id
constexpr size_t kHeaderSize = (sizeof(ShmBusHeader) + 63) & ~size_t{63};
static_assert(offsetof(ShmBusHeader, closed_cleanly) + sizeof(uint32_t) <= offsetof(ShmBusHeader, futex_word) + 64,
              "closed_cleanly must stay in the futex line's padding: the header's size is part of the layout");
// Record: word 0 = length | check << 32, word 1 = seq, then the payload
// padded to a word. Padding to the ring's end is a single word 0.
constexpr uint64_t kRecordHeader = 16;
constexpr uint32_t kPadLength = 0xFFFFFFFFu;
constexpr uint32_t kPadCheck = 0x50414421u;
// How often one read() may restart at the tail when lapped while copying,
// so a reader racing a much faster writer still returns.
constexpr size_t kMaxRepositions = 8;

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared atomics must be address-free, i.e. lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
                  sizeof(std::atomic<uint32_t>) == sizeof(uint32_t),
              "the futex word must be a plain 32-bit integer");

uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }
uint64_t record_size(uint64_t len) { return kRecordHeader + align8(len); }

// Tells a record header from stale or foreign bytes; the seqlock check is
// what guarantees consistency, this catches a broken invariant.
uint32_t record_check(uint64_t seq, uint32_t len) {
  return (static_cast<uint32_t>(seq) * 0x9E3779B1u) ^
         static_cast<uint32_t>(seq >> 32) ^ (len * 0x85EBCA6Bu) ^ 0x57534252u;
}

long futex_call(std::atomic<uint32_t>* word, int op, uint32_t value,
                const timespec* timeout) {
  // No FUTEX_PRIVATE_FLAG: waiters and wakers live in different processes.
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value,
                   timeout, nullptr, 0);
}

}  // namespace

class ShmBus::WriterLock {
 public:
  explicit WriterLock(ShmBus& bus) : bus_(bus), locked_(bus.lock_writer() == 0) {}
  ~WriterLock() {
    if (locked_) pthread_mutex_unlock(&bus_.header_->writer_mu);
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  bool locked() const { return locked_; }

 private:
  ShmBus& bus_;
  const bool locked_;
};

namespace {

// The ring's bytes and the whole mapping (header + ring, whole pages) for a
// requested ring size; false when out of range.
bool sizes_for(size_t bytes, uint64_t* capacity, size_t* mapping) {
  if (bytes < ShmBus::kMinCapacity || bytes > (SIZE_MAX >> 2)) return false;
  *capacity = align8(bytes);
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t granule = page > 0 ? static_cast<size_t>(page) : 4096;
  *mapping = (kHeaderSize + *capacity + granule - 1) / granule * granule;
  return true;
}

// The writers' mutex, new: process-shared and robust. 0 or an errno.
int init_writer_mutex(pthread_mutex_t* mu) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) {
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    // Robust: a child killed mid-publish (MaxConnectionsPerChild, a crash,
    // SIGKILL on stop) must not wedge the bus for every other child.
    if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(mu, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  return rc;
}

// Is this mapping of `bytes` a complete bus of this layout? (attach() and
// open_file() ask the same question.)
bool is_bus(const void* base, size_t bytes) {
  if (base == nullptr || bytes < kHeaderSize) return false;
  const auto* h = static_cast<const ShmBusHeader*>(base);
  return h->magic == kMagic && h->version == kVersion && h->header_size == kHeaderSize &&
         h->mapping_size == bytes && h->capacity >= ShmBus::kMinCapacity && h->capacity % 8 == 0 &&
         h->capacity <= bytes - kHeaderSize && h->bus_id != 0;
}

}  // namespace

std::unique_ptr<ShmBus> ShmBus::create(size_t bytes, std::string* error) {
  auto fail = [error](std::string message) {
    if (error) *error = std::move(message);
    return std::unique_ptr<ShmBus>();
  };
  uint64_t capacity = 0;
  size_t mapping = 0;
  if (!sizes_for(bytes, &capacity, &mapping)) return fail("shm bus: ring size out of range");
  // Anonymous + shared: no file to clean up, and fork() hands the very same
  // pages to every Apache child.
  void* base = ::mmap(nullptr, mapping, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED)
    return fail(std::string("shm bus: mmap: ") + std::strerror(errno));
  std::string why;
  if (!initialize(base, capacity, mapping, &why)) {
    ::munmap(base, mapping);
    return fail(why);
  }
  return std::make_unique<ShmBus>(Key{}, base, mapping);
}

// A new bus in zeroed memory (an anonymous mapping or a truncated file).
bool ShmBus::initialize(void* base, uint64_t capacity, size_t mapping, std::string* error) {
  auto* header = static_cast<ShmBusHeader*>(base);
  std::uninitialized_value_construct_n(header, 1);
  int rc = init_writer_mutex(&header->writer_mu);
  if (rc != 0) {
    *error = std::string("shm bus: mutex: ") + std::strerror(rc);
    return false;
  }
  header->version = kVersion;
  header->header_size = kHeaderSize;
  header->capacity = capacity;
  header->mapping_size = mapping;
  header->bus_id = random_bus_id();
  header->oldest_seq.store(1, std::memory_order_relaxed);
  std::uninitialized_default_construct_n(
      reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(base) + kHeaderSize),
      capacity / 8);
  header->magic = kMagic;  // last: the mapping is now a complete bus
  return true;
}

std::unique_ptr<ShmBus> ShmBus::open_file(const std::string& path, size_t bytes, int* fd_out, bool* reopened,
                                          std::string* why_new, std::string* error) {
  *fd_out = -1;
  *reopened = false;
  int fd = -1;
  auto fail = [&](std::string message) {
    if (fd >= 0) ::close(fd);
    *error = "bus file " + path + ": " + std::move(message);
    return std::unique_ptr<ShmBus>();
  };
  uint64_t capacity = 0;
  size_t mapping = 0;
  if (!sizes_for(bytes, &capacity, &mapping)) return fail("ring size out of range");
  fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail(std::string("cannot open it: ") + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    return fail(errno == EWOULDBLOCK ? "another server uses it (or children of a stopped one still run)"
                                     : std::string("cannot lock it: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(std::string("fstat: ") + std::strerror(errno));
  void* base = MAP_FAILED;
  if (static_cast<uint64_t>(st.st_size) == mapping) {
    base = ::mmap(nullptr, mapping, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) return fail(std::string("mmap: ") + std::strerror(errno));
    auto* h = static_cast<ShmBusHeader*>(base);
    if (!is_bus(base, mapping) || h->capacity != capacity) {
      *why_new = "it does not hold a bus of this layout";
    } else if (h->closed_cleanly.load(std::memory_order_acquire) != 1) {
      *why_new = "it was not closed cleanly (the server crashed or its parent was killed)";
    } else {
      // Nobody else has it mapped (the lock), so the old mutex, whatever
      // state its last owner left it in, is simply made again; the
      // counters are recomputed from the committed records, as after a
      // writer that died.
      int rc = init_writer_mutex(&h->writer_mu);
      if (rc != 0) {
        ::munmap(base, mapping);
        return fail(std::string("mutex: ") + std::strerror(rc));
      }
      h->waiters.store(0, std::memory_order_relaxed);
      auto bus = std::make_unique<ShmBus>(Key{}, base, mapping);
      bus->repair_locked();
      h->closed_cleanly.store(0, std::memory_order_release);
      *reopened = true;
      *fd_out = fd;
      return bus;
    }
    ::munmap(base, mapping);
  } else {
    *why_new = st.st_size == 0 ? "a new file" : "it holds a bus of another WSBridgeBusSize";
  }
  // A new bus: zeroed, with its blocks reserved.
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, static_cast<off_t>(mapping)) != 0)
    return fail(std::string("ftruncate: ") + std::strerror(errno));
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(mapping));
  if (rc != 0) return fail(std::string("cannot reserve its ") + std::to_string(mapping) + " bytes: " + std::strerror(rc));
  base = ::mmap(nullptr, mapping, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return fail(std::string("mmap: ") + std::strerror(errno));
  std::string why;
  if (!initialize(base, capacity, mapping, &why)) {
    ::munmap(base, mapping);
    return fail(why);
  }
  *fd_out = fd;
  return std::make_unique<ShmBus>(Key{}, base, mapping);
}

void ShmBus::close_file(void* base, size_t bytes, int fd) {
  if (base != nullptr) {
    auto* h = static_cast<ShmBusHeader*>(base);
    // The records first, then the mark: a crash between the two leaves a
    // file that is not marked, and so not trusted.
    ::msync(base, bytes, MS_SYNC);
    h->closed_cleanly.store(1, std::memory_order_release);
    ::msync(base, kHeaderSize, MS_SYNC);
    ::munmap(base, bytes);
  }
  if (fd >= 0) ::close(fd);
}

std::unique_ptr<ShmBus> ShmBus::attach(void* base, size_t bytes) {
  if (!is_bus(base, bytes)) return nullptr;
  return std::make_unique<ShmBus>(Key{}, base, bytes);
}

void ShmBus::destroy(void* base, size_t bytes) {
  if (base != nullptr) ::munmap(base, bytes);
}

ShmBus::ShmBus(Key, void* base, size_t mapping_size)
    : base_(base),
      mapping_size_(mapping_size),
      header_(static_cast<ShmBusHeader*>(base)),
      ring_(reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(base) +
                                                     kHeaderSize)),
      capacity_(header_->capacity) {}

size_t ShmBus::max_payload() const {
  const uint64_t limit = ((capacity_ / 4) & ~uint64_t{7}) - kRecordHeader;
  return static_cast<size_t>(std::min<uint64_t>(limit, kPadLength - 1));
}

int ShmBus::lock_writer() {
  int rc = pthread_mutex_lock(&header_->writer_mu);
  if (rc == EOWNERDEAD) {
    repair_locked();
    rc = pthread_mutex_consistent(&header_->writer_mu);
  }
  // ENOTRECOVERABLE is only possible if a repairer itself failed; publish
  // then reports the bus unavailable rather than blocking.
  return rc;
}

// The previous owner died inside write_locked()/commit_locked(). Committed
// records are intact (it wrote only past write_pos, and only after moving
// tail_pos off the bytes it overwrote), but next_seq may be ahead, the
// tail_pos/oldest_seq pair may be half updated and last_seq may lag a
// committed write_pos. All three are recomputed from the committed records.
void ShmBus::repair_locked() {
  ShmBusHeader& h = *header_;
  const uint64_t end = h.write_pos.load(std::memory_order_relaxed);
  uint64_t pos = h.tail_pos.load(std::memory_order_relaxed);
  uint64_t first = 0, last = 0;
  while (pos < end) {
    uint64_t seq = 0, size = 0;
    const Peek p = peek(pos, UINT64_MAX, &seq, &size, nullptr);
    if (p == Peek::Padding) {
      pos += capacity_ - pos % capacity_;
      continue;
    }
    if (p == Peek::Corrupt) break;  // keep what could be verified
    if (first == 0) first = seq;
    last = seq;
    pos += size;
  }
  if (last == 0) last = h.last_seq.load(std::memory_order_relaxed);
  h.oldest_seq.store(first != 0 ? first : last + 1, std::memory_order_release);
  h.last_seq.store(last, std::memory_order_release);
  h.next_seq.store(last, std::memory_order_relaxed);
}

ShmBus::Reservation ShmBus::write_locked(std::string_view payload) {
  ShmBusHeader& h = *header_;
  const auto len = static_cast<uint32_t>(payload.size());
  const uint64_t size = record_size(len);
  const uint64_t wp = h.write_pos.load(std::memory_order_relaxed);
  const uint64_t room = capacity_ - wp % capacity_;
  const uint64_t start = room < size ? wp + room : wp;  // records never wrap
  const uint64_t end = start + size;

  if (end > capacity_) {
    // Evict whatever [wp, end) will overwrite from the previous lap. With a
    // record at most capacity/4, this never reaches wp, so it only reads
    // committed headers and the log never becomes empty.
    const uint64_t limit = end - capacity_;
    const uint64_t old_tail = h.tail_pos.load(std::memory_order_relaxed);
    uint64_t tail = old_tail;
    uint64_t oldest = h.oldest_seq.load(std::memory_order_relaxed);
    while (tail < limit) {
      uint64_t seq = 0, rec_size = 0;
      const Peek p = peek(tail, UINT64_MAX, &seq, &rec_size, nullptr);
      if (p == Peek::Record) {
        oldest = seq + 1;
        tail += rec_size;
      } else if (p == Peek::Padding) {
        tail += capacity_ - tail % capacity_;
      } else {  // broken invariant: drop the whole log rather than misread it
        oldest = h.next_seq.load(std::memory_order_relaxed) + 1;
        tail = start;
        break;
      }
    }
    if (tail != old_tail) {
      h.oldest_seq.store(oldest, std::memory_order_release);
      h.tail_pos.store(tail, std::memory_order_release);
    }
  }

  if (start != wp) {
    ring_[(wp % capacity_) / 8].store(uint64_t{kPadLength} | uint64_t{kPadCheck} << 32,
                                      std::memory_order_release);
  }
  const uint64_t seq = h.next_seq.load(std::memory_order_relaxed) + 1;
  h.next_seq.store(seq, std::memory_order_relaxed);
  const size_t idx = (start % capacity_) / 8;
  ring_[idx].store(uint64_t{len} | uint64_t{record_check(seq, len)} << 32,
                   std::memory_order_release);
  ring_[idx + 1].store(seq, std::memory_order_release);
  for (uint64_t i = 0; i < len; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, payload.data() + i, std::min<uint64_t>(8, len - i));
    ring_[idx + 2 + i / 8].store(word, std::memory_order_release);
  }
  return Reservation{seq, end};
}

void ShmBus::commit_locked(const Reservation& r) {
  // write_pos first: if the writer dies between the two stores, repair finds
  // the record and fixes last_seq; the other order could publish a seq that
  // the next writer would hand out again.
  header_->write_pos.store(r.end, std::memory_order_release);
  header_->last_seq.store(r.seq, std::memory_order_release);
}

void ShmBus::notify_readers() {
  // seq_cst pairs with wait(): either the waiter registered before this load
  // (and gets FUTEX_WAKE), or its futex_word load sees this increment (and
  // then its last_seq load sees the new record).
  header_->futex_word.fetch_add(1, std::memory_order_seq_cst);
  if (header_->waiters.load(std::memory_order_seq_cst) != 0)
    futex_call(&header_->futex_word, FUTEX_WAKE, INT_MAX, nullptr);
}

uint64_t ShmBus::publish(std::string_view payload) {
  if (payload.size() > max_payload()) return 0;
  Reservation r;
  {
    WriterLock lock(*this);
    if (!lock.locked()) return 0;
    r = write_locked(payload);
    commit_locked(r);
  }
  notify_readers();  // outside the lock: woken readers do not hit a held mutex
  return r.seq;
}

ShmBus::Peek ShmBus::peek(uint64_t pos, uint64_t copy_from_seq, uint64_t* seq,
                          uint64_t* size, std::string* payload) const {
  const uint64_t off = pos % capacity_;
  const size_t idx = off / 8;
  const uint64_t w0 = ring_[idx].load(std::memory_order_acquire);
  const auto len = static_cast<uint32_t>(w0);
  const auto check = static_cast<uint32_t>(w0 >> 32);
  if (len == kPadLength && check == kPadCheck) return Peek::Padding;
  // Bounds first: bytes from a lapped region may hold any length.
  if (len > max_payload() || capacity_ - off < record_size(len)) return Peek::Corrupt;
  *seq = ring_[idx + 1].load(std::memory_order_acquire);
  if (check != record_check(*seq, len)) return Peek::Corrupt;
  *size = record_size(len);
  if (payload != nullptr && *seq >= copy_from_seq) {
    payload->resize(len);
    char* dst = payload->data();
    for (uint64_t i = 0; i < len; i += 8) {
      const uint64_t word = ring_[idx + 2 + i / 8].load(std::memory_order_acquire);
      std::memcpy(dst + i, &word, std::min<uint64_t>(8, len - i));
    }
  }
  return Peek::Record;
}

BusReadResult ShmBus::read(uint64_t* cursor, std::vector<BusRecord>& out,
                           size_t max_records) {
  BusReadResult result;
  if (cursor == nullptr || max_records == 0) return result;
  std::lock_guard<std::mutex> guard(reader_mu_);
  const ShmBusHeader& h = *header_;
  uint64_t want = *cursor + 1;
  // A cursor this object did not hand out is located by scanning from the
  // oldest record, skipping records <= *cursor.
  uint64_t pos = (cache_valid_ && cache_seq_ == *cursor)
                     ? cache_pos_
                     : h.tail_pos.load(std::memory_order_acquire);
  size_t delivered = 0, repositions = 0;
  std::string payload;
  while (delivered < max_records) {
    const uint64_t end = h.write_pos.load(std::memory_order_acquire);
    if (pos >= end) break;
    uint64_t seq = 0, size = 0;
    const Peek peeked = peek(pos, want, &seq, &size, &payload);
    // The seqlock check: valid only if no writer started overwriting pos.
    const uint64_t tail = h.tail_pos.load(std::memory_order_acquire);
    if (tail > pos) {
      // Lapped. Hand out what was read; the gap is reported next call, so an
      // overrun result never has records on both sides of it.
      if (delivered > 0 || ++repositions > kMaxRepositions) break;
      pos = tail;
      continue;
    }
    if (peeked == Peek::Padding) {
      pos += capacity_ - pos % capacity_;
      continue;
    }
    if (peeked == Peek::Corrupt) break;  // unreachable while invariants hold; do not spin
    if (seq < want) {
      pos += size;
      continue;
    }
    if (seq > want) {
      if (delivered > 0) break;
      result.overrun = true;
      result.lost_from = want;
      result.lost_to = seq - 1;
    }
    out.push_back(BusRecord{seq, std::move(payload)});
    payload.clear();
    ++delivered;
    want = seq + 1;
    *cursor = seq;
    pos += size;
  }
  cache_valid_ = true;
  cache_seq_ = *cursor;
  cache_pos_ = pos;
  return result;
}

bool ShmBus::wait(uint64_t cursor, int timeout_ms) {
  ShmBusHeader& h = *header_;
  if (h.last_seq.load(std::memory_order_acquire) > cursor) return true;
  if (timeout_ms == 0) return false;
  h.waiters.fetch_add(1, std::memory_order_seq_cst);
  // The word is read before last_seq: a publish after this load changes the
  // word, so FUTEX_WAIT returns at once instead of missing that publish.
  const uint32_t word = h.futex_word.load(std::memory_order_seq_cst);
  if (h.last_seq.load(std::memory_order_seq_cst) <= cursor) {
    timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    // EINTR/EAGAIN/ETIMEDOUT all just end the wait; callers loop anyway.
    futex_call(&h.futex_word, FUTEX_WAIT, word, timeout_ms < 0 ? nullptr : &timeout);
  }
  h.waiters.fetch_sub(1, std::memory_order_seq_cst);
  return h.last_seq.load(std::memory_order_acquire) > cursor;
}

void ShmBus::wake() {
  header_->futex_word.fetch_add(1, std::memory_order_seq_cst);
  futex_call(&header_->futex_word, FUTEX_WAKE, INT_MAX, nullptr);
}

uint64_t ShmBus::last_seq() const {
  return header_->last_seq.load(std::memory_order_acquire);
}

uint64_t ShmBus::first_seq() const {
  // oldest first: it never exceeds a last_seq committed before it was stored.
  const uint64_t oldest = header_->oldest_seq.load(std::memory_order_acquire);
  const uint64_t last = header_->last_seq.load(std::memory_order_acquire);
  if (last == 0) return 0;
  return oldest <= last ? oldest : 0;
}

void ShmBus::lock_for_test() { lock_writer(); }

void ShmBus::abandon_publish_for_test(std::string_view payload) {
  if (payload.size() > max_payload()) return;
  if (lock_writer() == 0) write_locked(payload);
}

std::string ShmBus::id() const { return format_bus_id(header_->bus_id); }

}  // namespace wsb
