// Channel subscriptions of the local connections of one process, by app
// namespace ("grip" for the backend bridge's GRIP channels): the part of the
// channel engine that needs no bus record per (un)subscribe, because only
// local deliveries depend on it. The engine applies publish records in bus
// order and hands each frame, encoded once, to every subscriber here.
// Not thread-safe: the engine's lock covers it.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/peer.h"

namespace wsb {

class ChannelSubscriptions {
 public:
  // At most this many channels per connection (a backend's subscribe flood
  // stops there; further subscribes are refused and counted).
  static constexpr size_t kMaxPerConnection = 1024;

  enum class Result { Added, Already, TooMany };
  Result subscribe(std::string_view ns, std::string_view channel, const std::string& conn_id, PeerPtr peer);
  bool unsubscribe(std::string_view ns, std::string_view channel, const std::string& conn_id);
  // Every subscription of the connection (it closed).
  size_t remove_connection(const std::string& conn_id);

  // The peers subscribed to ns/channel, in subscription order.
  const std::vector<std::pair<std::string, PeerPtr>>* subscribers(std::string_view ns,
                                                                  std::string_view channel) const;
  size_t channel_count() const { return channels_.size(); }
  size_t subscription_count() const { return total_; }
  size_t channels_of(const std::string& conn_id) const;

 private:
  static std::string key(std::string_view ns, std::string_view channel);
  // ns + '\n' + channel -> (conn_id, peer) in subscription order
  std::map<std::string, std::vector<std::pair<std::string, PeerPtr>>, std::less<>> channels_;
  std::unordered_map<std::string, std::vector<std::string>> by_conn_;  // conn -> keys
  size_t total_ = 0;
};

}  // namespace wsb
