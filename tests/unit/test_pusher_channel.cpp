// Pusher channel names: the documented character set and 164-character
// limit, the prefixes and what each kind allows.
#include <string>

#include "pusher/pusher_channel.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

TEST_GROUP(PusherChannel){};

TEST(PusherChannel, ClassifiesEveryPrefix) {
  CHECK(channel_kind("my-channel") == ChannelKind::Public);
  CHECK(channel_kind("private-a") == ChannelKind::Private);
  CHECK(channel_kind("private-encrypted-a") == ChannelKind::PrivateEncrypted);
  CHECK(channel_kind("presence-a") == ChannelKind::Presence);
  CHECK(channel_kind("cache-a") == ChannelKind::CachePublic);
  CHECK(channel_kind("private-cache-a") == ChannelKind::CachePrivate);
  CHECK(channel_kind("private-encrypted-cache-a") == ChannelKind::CachePrivateEncrypted);
  CHECK(channel_kind("presence-cache-a") == ChannelKind::CachePresence);
  CHECK(channel_kind("#server-to-user-alice") == ChannelKind::ServerToUser);
}

TEST(PusherChannel, PrefixesAreAnchoredAndCaseSensitive) {
  // A prefix counts only at the start (soketi's unanchored patterns make
  // "foo-private-bar" private; the protocol does not).
  CHECK(channel_kind("foo-private-bar") == ChannelKind::Public);
  CHECK(channel_kind("Private-a") == ChannelKind::Public);
  CHECK(channel_kind("presence") == ChannelKind::Public);
  CHECK(channel_kind("cachex") == ChannelKind::Public);
  // The bare prefix is a (strangely named) channel of that kind.
  CHECK(channel_kind("private-") == ChannelKind::Private);
  CHECK(channel_kind("private-encrypted-") == ChannelKind::PrivateEncrypted);
}

TEST(PusherChannel, DocumentedCharacterSet) {
  CHECK_TRUE(is_valid_channel_name("foo-bar_1234@=,.;"));  // the docs' example
  CHECK_TRUE(is_valid_channel_name("ABCxyz019"));
  CHECK_FALSE(is_valid_channel_name(""));
  for (char c : std::string(" !\"#$%&'()*+/:<>?[\\]^`{|}~")) {
    CHECK_FALSE(is_valid_channel_name(std::string("a") + c + "b"));
  }
  CHECK_FALSE(is_valid_channel_name("caf\xC3\xA9"));
  CHECK_FALSE(is_valid_channel_name(std::string("a\0b", 3)));
  CHECK_FALSE(is_valid_channel_name("a\nb"));
}

TEST(PusherChannel, MaximumLength164IncludesThePrefix) {
  const std::string ok = "presence-" + std::string(kMaxChannelNameLength - 9, 'x');
  LONGS_EQUAL(164, ok.size());
  CHECK(channel_kind(ok) == ChannelKind::Presence);
  CHECK(channel_kind(ok + "x") == ChannelKind::Invalid);
}

TEST(PusherChannel, ServerToUserChannels) {
  STRCMP_EQUAL("alice", std::string(server_to_user_id("#server-to-user-alice")).c_str());
  CHECK_TRUE(server_to_user_id("private-x").empty());
  // The user id part is any 1..128 characters without control characters:
  // ids come from the app (emails, UUIDs, names), not from the channel rules.
  CHECK(channel_kind("#server-to-user-john+doe@example.com") == ChannelKind::ServerToUser);
  CHECK(channel_kind("#server-to-user-Zo\xC3\xAB") == ChannelKind::ServerToUser);
  CHECK(channel_kind("#server-to-user-") == ChannelKind::Invalid);
  CHECK(channel_kind("#server-to-user-a\nb") == ChannelKind::Invalid);
  CHECK(channel_kind("#server-to-user-" + std::string(128, 'u')) == ChannelKind::ServerToUser);
  CHECK(channel_kind("#server-to-user-" + std::string(129, 'u')) == ChannelKind::Invalid);
  // '#' anywhere else is outside the character set.
  CHECK(channel_kind("#other") == ChannelKind::Invalid);
  CHECK(channel_kind("a#server-to-user-x") == ChannelKind::Invalid);
}

TEST(PusherChannel, WhatEachKindAllows) {
  struct Row {
    ChannelKind kind;
    bool auth, presence, cache, client_events;
  };
  const Row rows[] = {
      {ChannelKind::Public, false, false, false, false},
      {ChannelKind::Private, true, false, false, true},
      {ChannelKind::PrivateEncrypted, true, false, false, true},
      {ChannelKind::Presence, true, true, false, true},
      {ChannelKind::CachePublic, false, false, true, false},
      {ChannelKind::CachePrivate, true, false, true, true},
      {ChannelKind::CachePrivateEncrypted, true, false, true, true},
      {ChannelKind::CachePresence, true, true, true, true},
      {ChannelKind::ServerToUser, false, false, false, false},
      {ChannelKind::Invalid, false, false, false, false},
  };
  for (const Row& r : rows) {
    CHECK_EQUAL_TEXT(r.auth, needs_auth(r.kind), channel_kind_name(r.kind));
    CHECK_EQUAL_TEXT(r.presence, is_presence(r.kind), channel_kind_name(r.kind));
    CHECK_EQUAL_TEXT(r.cache, is_cache(r.kind), channel_kind_name(r.kind));
    CHECK_EQUAL_TEXT(r.client_events, allows_client_events(r.kind), channel_kind_name(r.kind));
  }
  CHECK_TRUE(is_encrypted(ChannelKind::CachePrivateEncrypted));
  CHECK_FALSE(is_encrypted(ChannelKind::Private));
}

TEST(PusherChannel, UserIdsAndCharacterCounts) {
  LONGS_EQUAL(3, utf8_length("abc"));
  LONGS_EQUAL(2, utf8_length("\xC3\xA9\xF0\x9F\x9A\x80"));  // é + rocket
  CHECK_TRUE(is_valid_user_id("1"));
  CHECK_TRUE(is_valid_user_id(std::string(128, 'a')));
  CHECK_FALSE(is_valid_user_id(std::string(129, 'a')));
  // 128 characters, 256 bytes: the limit is in characters.
  std::string wide;
  for (int i = 0; i < 128; ++i) wide += "\xC3\xA9";
  CHECK_TRUE(is_valid_user_id(wide));
  CHECK_FALSE(is_valid_user_id(""));
  CHECK_FALSE(is_valid_user_id("a\tb"));
  CHECK_FALSE(is_valid_user_id("a\x7F"));
}
