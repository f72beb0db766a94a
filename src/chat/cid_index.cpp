#include "chat/cid_index.h"

#include <utility>

namespace wsb {

std::string room_cid_key(std::string_view user, std::string_view cid) {
  std::string key;
  key.reserve(user.size() + 1 + cid.size());
  key.append(user).append(1, '\n').append(cid);
  return key;
}

std::string direct_cid_key(std::string_view from, std::string_view to, std::string_view cid) {
  std::string key;
  key.reserve(from.size() + to.size() + 2 + cid.size());
  key.append(from).append(1, '\n').append(to).append(1, '\n').append(cid);
  return key;
}

const CidOriginal* RecentCids::find(const std::string& key) const {
  const auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

void RecentCids::add(const std::string& key, CidOriginal original) {
  if (max_entries_ == 0 || map_.count(key) != 0) return;
  const size_t size = original.frame ? original.frame->size() : 0;
  bytes_ += size;
  map_.emplace(key, std::move(original));
  order_.push_back(key);
  while (!order_.empty() && (map_.size() > max_entries_ || bytes_ > max_bytes_)) evict_oldest();
}

void RecentCids::evict_oldest() {
  const auto it = map_.find(order_.front());
  if (it != map_.end()) {
    bytes_ -= it->second.frame ? it->second.frame->size() : 0;
    map_.erase(it);
  }
  order_.pop_front();
}

}  // namespace wsb
