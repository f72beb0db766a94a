#include "engine/channel_subscriptions.h"

#include <algorithm>

namespace wsb {

std::string ChannelSubscriptions::key(std::string_view ns, std::string_view channel) {
  std::string k;
  k.reserve(ns.size() + 1 + channel.size());
  k.append(ns).push_back('\n');  // channel names hold no control characters
  k.append(channel);
  return k;
}

ChannelSubscriptions::Result ChannelSubscriptions::subscribe(std::string_view ns, std::string_view channel,
                                                             const std::string& conn_id, PeerPtr peer) {
  std::string k = key(ns, channel);
  std::vector<std::string>& mine = by_conn_[conn_id];
  if (std::find(mine.begin(), mine.end(), k) != mine.end()) return Result::Already;
  if (mine.size() >= kMaxPerConnection) return Result::TooMany;
  channels_[k].emplace_back(conn_id, std::move(peer));
  mine.push_back(std::move(k));
  ++total_;
  return Result::Added;
}

bool ChannelSubscriptions::unsubscribe(std::string_view ns, std::string_view channel, const std::string& conn_id) {
  auto conn = by_conn_.find(conn_id);
  if (conn == by_conn_.end()) return false;
  std::string k = key(ns, channel);
  auto pos = std::find(conn->second.begin(), conn->second.end(), k);
  if (pos == conn->second.end()) return false;
  conn->second.erase(pos);
  if (conn->second.empty()) by_conn_.erase(conn);
  auto ch = channels_.find(k);
  if (ch != channels_.end()) {
    auto& subs = ch->second;
    subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const auto& s) { return s.first == conn_id; }),
               subs.end());
    if (subs.empty()) channels_.erase(ch);
  }
  --total_;
  return true;
}

size_t ChannelSubscriptions::remove_connection(const std::string& conn_id) {
  auto conn = by_conn_.find(conn_id);
  if (conn == by_conn_.end()) return 0;
  std::vector<std::string> keys = std::move(conn->second);
  by_conn_.erase(conn);
  for (const std::string& k : keys) {
    auto ch = channels_.find(k);
    if (ch == channels_.end()) continue;
    auto& subs = ch->second;
    subs.erase(std::remove_if(subs.begin(), subs.end(), [&](const auto& s) { return s.first == conn_id; }),
               subs.end());
    if (subs.empty()) channels_.erase(ch);
  }
  total_ -= keys.size();
  return keys.size();
}

const std::vector<std::pair<std::string, PeerPtr>>* ChannelSubscriptions::subscribers(std::string_view ns,
                                                                                     std::string_view channel) const {
  auto it = channels_.find(key(ns, channel));
  return it == channels_.end() ? nullptr : &it->second;
}

size_t ChannelSubscriptions::channels_of(const std::string& conn_id) const {
  auto it = by_conn_.find(conn_id);
  return it == by_conn_.end() ? 0 : it->second.size();
}

}  // namespace wsb
