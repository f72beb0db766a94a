// The Lua scripts of the Redis log and the small reply helpers (see
// redis_link.h; the Link class itself is defined inline there).
#include "runtime/redis_link.h"

namespace wsb {
namespace {

// Every script gets KEYS = seq, log, id (the bus id, see kIdScript).

// KEYS = seq, log; ARGV = payload, maxlen, floor. The counter moves only
// after the XADD succeeded, so a refused record (OOM) leaves no hole. The
// floor (the newest seq the caller has seen) keeps numbering going forward
// when Redis lost the counter; if only the counter was lost, the log's top
// entry says where to continue. string.format keeps numbers integral.
constexpr const char* kPublishScript = R"lua(
local seq = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[3])) + 1
local ok = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('0-%d', seq), 'p', ARGV[1])
if type(ok) == 'table' and ok.err then
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
  local top_seq = top and tonumber(string.match(top[1], '^0%-(%d+)$') or '0') or 0
  if top_seq < seq then return ok end
  seq = top_seq + 1
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], string.format('0-%d', seq), 'p', ARGV[1])
end
redis.call('SET', KEYS[1], string.format('%d', seq))
return seq
)lua";

// KEYS = seq, log, id; ARGV = first wanted id, count, candidate bus id.
// Counter and records in one atomic view, so "counter past the cursor but
// no record" means lost; the bus id comes along (made from the candidate if
// Redis has none: first use, or Redis lost its data), so every reader
// notices a new bus at its next read.
constexpr const char* kReadScript = R"lua(
local id = redis.call('GET', KEYS[3])
if not id then
  redis.call('SET', KEYS[3], ARGV[3])
  id = ARGV[3]
end
return {redis.call('GET', KEYS[1]) or '0', redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2]), id}
)lua";

// KEYS = seq, log; ARGV = floor. Raises the counter, never lowers it.
constexpr const char* kRaiseScript = R"lua(
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if last < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return last
)lua";

// KEYS = seq, log, id; ARGV = candidate bus id. The bus id, made once (the
// first caller's candidate wins) and shared by every server on this Redis.
constexpr const char* kIdScript = R"lua(
local id = redis.call('GET', KEYS[3])
if id then return id end
redis.call('SET', KEYS[3], ARGV[1])
return ARGV[1]
)lua";

}  // namespace

const char* const kScriptText[kScripts] = {kPublishScript, kReadScript, kRaiseScript, kIdScript};

timeval to_timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

bool to_u64(std::string_view s, uint64_t* out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string_view reply_text(const redisReply* r) {
  const bool text = r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                          r->type == REDIS_REPLY_ERROR);
  return text ? std::string_view(r->str, r->len) : std::string_view();
}

bool reply_u64(const redisReply* r, uint64_t* out) {
  if (!r || r->type != REDIS_REPLY_INTEGER) return to_u64(reply_text(r), out);
  *out = static_cast<uint64_t>(std::max<long long>(0, r->integer));
  return true;
}

}  // namespace wsb
