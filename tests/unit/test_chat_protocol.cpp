// Names, client command parsing, server frame encoding, bus records.
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "chat/chat_names.h"
#include "chat/chat_protocol.h"
#include "chat/chat_record.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  CHECK_FALSE(d.HasParseError());
  return d;
}

std::string str(const rapidjson::Value& v, const char* key) {
  CHECK_TRUE(v.HasMember(key));
  CHECK_TRUE(v[key].IsString());
  return std::string(v[key].GetString(), v[key].GetStringLength());
}

ChatConfig small_config() {
  ChatConfig c;
  c.max_text_length = 10;
  return c;
}

ChatError parse_error(const std::string& json) {
  return parse_client_command(json, small_config()).error;
}

}  // namespace

TEST_GROUP(ChatProtocol){};

TEST(ChatProtocol, RoomNames) {
  CHECK_TRUE(is_valid_room_name("lobby"));
  CHECK_TRUE(is_valid_room_name("A-z_0.9"));
  CHECK_TRUE(is_valid_room_name(std::string(64, 'r')));
  CHECK_FALSE(is_valid_room_name(std::string(65, 'r')));
  CHECK_FALSE(is_valid_room_name(""));
  CHECK_FALSE(is_valid_room_name("a b"));
  CHECK_FALSE(is_valid_room_name("a/b"));
  CHECK_FALSE(is_valid_room_name("caf\xC3\xA9"));
  CHECK_FALSE(is_valid_room_name(std::string("a\0b", 3)));
}

TEST(ChatProtocol, UserNames) {
  CHECK_TRUE(is_valid_user_name("alice"));
  CHECK_TRUE(is_valid_user_name("Jean Pierre"));  // inner space is fine
  CHECK_TRUE(is_valid_user_name("Zoë"));
  // 32 code points of 3 bytes each: the limit counts code points, not bytes.
  std::string cjk;
  for (int i = 0; i < 32; ++i) cjk += "\xE5\x90\x8D";
  CHECK_TRUE(is_valid_user_name(cjk));
  CHECK_FALSE(is_valid_user_name(cjk + "a"));
  CHECK_TRUE(is_valid_user_name(std::string(32, 'a')));
  CHECK_FALSE(is_valid_user_name(std::string(33, 'a')));
  CHECK_TRUE(is_valid_user_name("\xF0\x9F\x98\x80"));  // U+1F600
  CHECK_FALSE(is_valid_user_name(""));
  CHECK_FALSE(is_valid_user_name("bob#2"));
  CHECK_FALSE(is_valid_user_name("a|b"));
  CHECK_FALSE(is_valid_user_name(" bob"));
  CHECK_FALSE(is_valid_user_name("bob "));
  CHECK_FALSE(is_valid_user_name("\xC2\xA0" "bob"));    // NBSP
  CHECK_FALSE(is_valid_user_name("bob\xE3\x80\x80"));   // ideographic space
  CHECK_FALSE(is_valid_user_name("bo\tb"));
  CHECK_FALSE(is_valid_user_name(std::string("bo\0b", 4)));
  CHECK_FALSE(is_valid_user_name("bo\x7F" "b"));        // DEL
  CHECK_FALSE(is_valid_user_name("bo\xC2\x85" "b"));    // C1 NEL
  CHECK_FALSE(is_valid_user_name("bo\xC2\x9F" "b"));    // C1
  CHECK_FALSE(is_valid_user_name("bo\xFF" "b"));        // invalid byte
  CHECK_FALSE(is_valid_user_name("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_user_name("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(is_valid_user_name("\xF4\x90\x80\x80"));  // > U+10FFFF
  CHECK_FALSE(is_valid_user_name("ab\xE5\x90"));        // truncated
}

TEST(ChatProtocol, TextLength) {
  CHECK(check_text("", 10) == TextCheck::Empty);
  CHECK(check_text("0123456789", 10) == TextCheck::Ok);
  CHECK(check_text("0123456789a", 10) == TextCheck::TooLong);
  CHECK(check_text("\xE5\x90\x8D\xE5\x90\x8D", 6) == TextCheck::Ok);  // bytes count
  CHECK(check_text("\xE5\x90\x8D\xE5\x90\x8D", 5) == TextCheck::TooLong);
  CHECK(check_text("\xED\xB0\x80", 10) == TextCheck::BadUtf8);
}

TEST(ChatProtocol, GuestNames) {
  STRCMP_EQUAL("guest-123-4", guest_name("123-4").c_str());
  CHECK_TRUE(is_valid_user_name(guest_name("123-4")));
  CHECK_TRUE(is_valid_user_name(guest_name(std::string(100, '9'))));
}

TEST(ChatProtocol, ParsesEveryCommand) {
  ParsedCommand p =
      parse_client_command(R"({"type":"join","room":"r1","name":"bob","since":42,"x":[1]})",
                           small_config());
  CHECK(p.error == ChatError::None);
  CHECK(p.command.type == CommandType::Join);
  STRCMP_EQUAL("r1", p.command.room.c_str());
  CHECK_TRUE(p.command.has_name);
  STRCMP_EQUAL("bob", p.command.name.c_str());
  CHECK_TRUE(p.command.has_since);
  CHECK_EQUAL(42u, p.command.since);

  p = parse_client_command(R"({"type":"join","room":"r1"})", small_config());
  CHECK(p.error == ChatError::None);
  CHECK_FALSE(p.command.has_name);
  CHECK_FALSE(p.command.has_since);

  p = parse_client_command(R"({"room":"r","type":"leave"})", small_config());
  CHECK(p.error == ChatError::None);
  CHECK(p.command.type == CommandType::Leave);

  p = parse_client_command(R"({"type":"message","room":"r","text":"hi \"you\""})", small_config());
  CHECK(p.error == ChatError::None);
  STRCMP_EQUAL("hi \"you\"", p.command.text.c_str());

  p = parse_client_command(R"({"type":"direct","to":"alice","text":"psst"})", small_config());
  CHECK(p.error == ChatError::None);
  CHECK(p.command.type == CommandType::Direct);
  STRCMP_EQUAL("alice", p.command.to.c_str());
}

TEST(ChatProtocol, ErrorCodes) {
  CHECK(parse_error("") == ChatError::BadJson);
  CHECK(parse_error("{") == ChatError::BadJson);
  CHECK(parse_error("[]") == ChatError::BadJson);
  CHECK(parse_error("null") == ChatError::BadJson);
  CHECK(parse_error("\"join\"") == ChatError::BadJson);
  CHECK(parse_error(R"({"type":"join","room":"r"} x)") == ChatError::BadJson);
  CHECK(parse_error(R"({"type":"join","room":"r\udc00"})") == ChatError::BadRoom);
  CHECK(parse_error("{}") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":7})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"dance"})") == ChatError::UnknownType);
  CHECK(parse_error(R"({"type":"JOIN","room":"r"})") == ChatError::UnknownType);
  CHECK(parse_error(R"({"type":"join"})") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":"join","room":5})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"join","room":"a b"})") == ChatError::BadRoom);
  CHECK(parse_error(R"({"type":"join","room":""})") == ChatError::BadRoom);
  CHECK(parse_error(R"({"type":"join","room":"r","name":null})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"join","room":"r","name":"a#1"})") == ChatError::BadName);
  CHECK(parse_error(R"({"type":"join","room":"r","name":""})") == ChatError::BadName);
  CHECK(parse_error(R"({"type":"join","room":"r","since":-1})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"join","room":"r","since":1.5})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"join","room":"r","since":1e30})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"join","room":"r","since":"5"})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"message","room":"r"})") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":"message","room":"r","text":""})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"message","room":"r","text":["x"]})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"message","room":"r","text":"01234567890"})") == ChatError::TooLong);
  CHECK(parse_error(R"({"type":"message","room":"r","text":"\udc00"})") == ChatError::BadField);
  CHECK(parse_error(R"({"type":"message","text":"x"})") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":"direct","text":"x"})") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":"direct","to":"a|b","text":"x"})") == ChatError::BadName);
  CHECK(parse_error(R"({"type":"direct","to":"bob"})") == ChatError::MissingField);
  CHECK(parse_error(R"({"type":"leave","room":false})") == ChatError::BadField);
}

TEST(ChatProtocol, HostileInputNeverCrashes) {
  std::vector<std::string> inputs = {
      std::string(100000, '['),
      std::string(100000, '{'),
      // Valid and deep: the parser is iterative, so this costs heap, not stack.
      R"({"type":"join","room":"r","x":)" + std::string(100000, '[') + std::string(100000, ']') +
          "}",
      "{\"type\":\"join\",\"room\":\"r\",\"name\":\"" + std::string(1 << 16, 'a') + "\"}",
      std::string("{\"type\":\"message\",\"room\":\"r\",\"text\":\"a\\u0000b\"}"),
      std::string("{\"type\":\"join\0\",\"room\":\"r\"}", 27),
      "{\"type\":\"join\",\"room\":\"\xFF\"}",
      "{\"type\":\"join\",\"room\":\"r\",\"since\":18446744073709551616}",
      "{\"type\":\"join\",\"room\":\"r\",\"since\":NaN}",
      "{\"type\":\"join\",\"type\":\"leave\",\"room\":\"r\"}",
  };
  for (const std::string& in : inputs) {
    const ParsedCommand p = parse_client_command(in, small_config());
    if (p.error != ChatError::None) CHECK_FALSE(p.reason.empty());
  }
  // An embedded NUL in a text is a legal JSON string byte.
  CHECK(parse_client_command(inputs[2], small_config()).error == ChatError::None);
  const ParsedCommand p = parse_client_command(inputs[4], small_config());
  CHECK(p.error == ChatError::None);
  CHECK_EQUAL(3u, p.command.text.size());
}

TEST(ChatProtocol, EncodesServerFrames) {
  rapidjson::Document d = parse(encode_message_event("r", "bob", "a\"b\n\xE5\x90\x8D", 7, 1234));
  STRCMP_EQUAL("message", str(d, "type").c_str());
  STRCMP_EQUAL("r", str(d, "room").c_str());
  STRCMP_EQUAL("bob", str(d, "from").c_str());
  STRCMP_EQUAL("a\"b\n\xE5\x90\x8D", str(d, "text").c_str());
  CHECK_EQUAL(7u, d["seq"].GetUint64());
  CHECK_EQUAL(1234, d["ts"].GetInt64());

  d = parse(encode_system_event("r", "leave", "bob#2", 8, 99));
  STRCMP_EQUAL("system", str(d, "type").c_str());
  STRCMP_EQUAL("leave", str(d, "event").c_str());
  STRCMP_EQUAL("bob#2", str(d, "name").c_str());

  d = parse(encode_presence("r", {"a", "b"}, "b"));
  STRCMP_EQUAL("presence", str(d, "type").c_str());
  CHECK_EQUAL(2u, d["members"].Size());
  STRCMP_EQUAL("b", str(d, "you").c_str());

  d = parse(encode_welcome("guest-1-1", "1-1", 42, {{"lobby", 3}}));
  STRCMP_EQUAL("welcome", str(d, "type").c_str());
  STRCMP_EQUAL("1-1", str(d, "id").c_str());
  CHECK_EQUAL(42, d["pid"].GetInt64());
  STRCMP_EQUAL("lobby", str(d["rooms"][0], "room").c_str());
  CHECK_EQUAL(3u, d["rooms"][0]["members"].GetUint64());

  d = parse(encode_direct("a", "b", "hi", 5));
  STRCMP_EQUAL("direct", str(d, "type").c_str());
  STRCMP_EQUAL("b", str(d, "to").c_str());

  d = parse(encode_error(ChatError::NotJoined, "nope", "r"));
  STRCMP_EQUAL("not-joined", str(d, "code").c_str());
  STRCMP_EQUAL("r", str(d, "room").c_str());
  CHECK_FALSE(parse(encode_error(ChatError::BadJson, "x")).HasMember("room"));
}

TEST(ChatProtocol, EncodesPresenceOfLargeRooms) {
  // Within the limit: no count, the frame rooms always had.
  CHECK(encode_presence("r", {"a", "b"}, "b") ==
        "{\"type\":\"presence\",\"room\":\"r\",\"members\":[\"a\",\"b\"],\"you\":\"b\"}");
  CHECK(encode_presence("r", {"a", "b"}, "b", 2) == encode_presence("r", {"a", "b"}, "b"));
  // Above it: the first names, the count, truncated.
  CHECK(encode_presence("r", {"a", "b"}, "z", 5000) ==
        "{\"type\":\"presence\",\"room\":\"r\",\"members\":[\"a\",\"b\"],\"you\":\"z\","
        "\"count\":5000,\"truncated\":true}");
  // Updates: no "you"; members only when given.
  CHECK(encode_presence_update("r", 5001, true, nullptr) ==
        "{\"type\":\"presence\",\"room\":\"r\",\"count\":5001,\"truncated\":true}");
  const std::vector<std::string> names = {"b", "c"};
  rapidjson::Document d = parse(encode_presence_update("r", 2, false, &names));
  CHECK_EQUAL(2u, d["count"].GetUint64());
  CHECK_FALSE(d["truncated"].GetBool());
  CHECK_EQUAL(2u, d["members"].Size());
  CHECK_FALSE(d.HasMember("you"));
}

TEST(ChatProtocol, TextWithNulSurvivesEncoding) {
  const std::string text("a\0b", 3);
  rapidjson::Document d = parse(encode_message_event("r", "bob", text, 1, 1));
  CHECK_EQUAL(3u, d["text"].GetStringLength());
}

TEST(ChatProtocol, HistorySplicesEventsVerbatim) {
  const std::string e1 = encode_message_event("r", "bob", "hi", 1, 10);
  const std::string e2 = encode_system_event("r", "join", "amy", 2, 11);
  const std::string h = encode_history("r", {e1, e2}, false);
  CHECK(h.find(e1) != std::string::npos);
  CHECK(h.find(e2) != std::string::npos);
  rapidjson::Document d = parse(h);
  STRCMP_EQUAL("history", str(d, "type").c_str());
  CHECK_EQUAL(2u, d["messages"].Size());
  CHECK_FALSE(d["complete"].GetBool());
  STRCMP_EQUAL("hi", str(d["messages"][0], "text").c_str());
  CHECK_EQUAL(0u, parse(encode_history("r", {}, true))["messages"].Size());
}

TEST(ChatProtocol, ErrorCodeNamesAreDistinct) {
  const ChatError all[] = {
      ChatError::BadJson, ChatError::UnknownType, ChatError::MissingField, ChatError::BadField,
      ChatError::BadRoom, ChatError::BadName, ChatError::TooLong, ChatError::NotJoined,
      ChatError::AlreadyJoined, ChatError::TooManyRooms, ChatError::RateLimited,
      ChatError::NoSuchUser, ChatError::HistoryLost, ChatError::Unavailable,
  };
  for (ChatError a : all)
    for (ChatError b : all)
      if (a != b) CHECK(std::string(error_code_name(a)) != error_code_name(b));
  STRCMP_EQUAL("history-lost", error_code_name(ChatError::HistoryLost));
}

TEST(ChatProtocol, RecordsRoundTrip) {
  ChatRecord j;
  j.type = RecordType::Join;
  j.room = "r";
  j.conn = "100-1";
  j.user = "bob";
  j.name = "bobby";
  j.pid = 100;
  j.ts = 5;
  j.has_since = true;
  j.since = 0;
  ChatRecord out;
  CHECK_TRUE(parse_record(encode_record(j), &out));
  CHECK(out.type == RecordType::Join);
  STRCMP_EQUAL("100-1", out.conn.c_str());
  STRCMP_EQUAL("bob", out.user.c_str());
  STRCMP_EQUAL("bobby", out.name.c_str());
  CHECK_EQUAL(100, out.pid);
  CHECK_TRUE(out.has_since);
  CHECK_EQUAL(0u, out.since);

  ChatRecord api;
  api.type = RecordType::Msg;
  api.room = "r";
  api.from = "server";
  api.text = "hello";
  api.ts = 9;
  CHECK_TRUE(parse_record(encode_record(api), &out));
  CHECK_TRUE(out.conn.empty());
  STRCMP_EQUAL("server", out.from.c_str());

  ChatRecord gone;
  gone.type = RecordType::Gone;
  gone.pid = 77;
  CHECK_TRUE(parse_record(encode_record(gone), &out));
  CHECK(out.type == RecordType::Gone);
  CHECK_EQUAL(77, out.pid);
}

TEST(ChatProtocol, MalformedRecordsAreRejected) {
  ChatRecord out;
  const char* const bad[] = {
      "", "[]", "{}", R"({"t":"join","ts":1})", R"({"t":"nope","ts":1})",
      R"({"t":"leave","room":"r","conn":"c"})",                       // no ts
      R"({"t":"leave","room":"a b","conn":"c","ts":1})",              // bad room
      R"({"t":"msg","room":"r","text":"x","ts":1})",                  // neither conn nor from
      R"({"t":"msg","room":"r","conn":"c","text":"x","ts":1})",       // member msg without user/pid
      R"({"t":"join","room":"r","conn":"c","user":"u","name":"n","pid":1,"ts":1,"since":-1})",
      R"({"t":"gone","pid":"x","ts":1})",
      R"({"t":"direct","conn":"c","from":"a","to":"","text":"x","ts":1})",
  };
  for (const char* b : bad) CHECK_FALSE(parse_record(b, &out));
}
