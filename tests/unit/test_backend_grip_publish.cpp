// GRIP publish bodies: the forms the reference run published to Pushpin,
// the 400 messages (Pushpin's wording where it has one), and our stricter
// checks.
#include <string>
#include <vector>

#include "backend/grip_publish.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

std::vector<GripItem> items_of(const std::string& body) {
  std::vector<GripItem> items;
  std::string error;
  CHECK_TRUE_TEXT(parse_grip_publish(body, &items, &error), error.c_str());
  return items;
}

std::string error_of(const std::string& body) {
  std::vector<GripItem> items{GripItem{}};
  std::string error;
  CHECK_FALSE(parse_grip_publish(body, &items, &error));
  CHECK_TRUE(items.empty());
  return error;
}

std::string ws(const std::string& format, const std::string& channel = "\"p\"") {
  return R"({"items":[{"channel":)" + channel + R"(,"formats":{"ws-message":)" + format + "}}]}";
}

}  // namespace

TEST_GROUP(BackendGripPublish){};

TEST(BackendGripPublish, TextBinaryAndTypes) {
  std::vector<GripItem> items = items_of(ws(R"({"content":"t"})"));
  CHECK_EQUAL(1u, items.size());
  STRCMP_EQUAL("p", items[0].channel.c_str());
  CHECK(items[0].kind == GripItemKind::Text);
  STRCMP_EQUAL("t", items[0].content.c_str());
  items = items_of(ws(R"({"content-bin":"AAEC"})"));
  CHECK(items[0].kind == GripItemKind::Binary);
  CHECK(items[0].content == std::string("\0\1\2", 3));
  items = items_of(ws(R"({"content-bin":"aGk=","type":"text"})"));
  CHECK(items[0].kind == GripItemKind::Text);
  items = items_of(ws(R"({"content":"x","type":"binary"})"));
  CHECK(items[0].kind == GripItemKind::Binary);
  items = items_of(ws(R"({"type":"ping"})"));
  CHECK(items[0].kind == GripItemKind::Ping);
  CHECK_TRUE(items[0].content.empty());
  items = items_of(ws(R"({"type":"pong","content":"x"})"));
  CHECK(items[0].kind == GripItemKind::Pong);
  items = items_of(ws(R"({"content":"x","action":"send"})"));
  CHECK(items[0].kind == GripItemKind::Text);
}

TEST(BackendGripPublish, SeveralItemsIdsAndFormatsOnTheItem) {
  const std::vector<GripItem> items =
      items_of(R"({"items":[{"channel":"a","formats":{"ws-message":{"content":"1"}}},)"
               R"({"channel":"b","id":"2","prev-id":"1","formats":{"ws-message":{"content":"2"}}},)"
               R"({"channel":"c","ws-message":{"content":"no formats key"}}]})");
  CHECK_EQUAL(3u, items.size());
  STRCMP_EQUAL("2", items[1].id.c_str());
  STRCMP_EQUAL("1", items[1].prev_id.c_str());
  CHECK_TRUE(items[0].id.empty());
  STRCMP_EQUAL("no formats key", items[2].content.c_str());
}

TEST(BackendGripPublish, ItemsWithoutWsMessageAreIgnored) {
  CHECK_TRUE(
      items_of(R"({"items":[{"channel":"p","formats":{"http-stream":{"content":"s"}}}]})").empty());
  CHECK_TRUE(items_of(R"({"items":[{"channel":"p","http-response":{"body":"s"}}]})").empty());
  CHECK_TRUE(items_of(ws(R"({"action":"hint"})")).empty());
  CHECK_TRUE(items_of(R"({"items":[]})").empty());
}

TEST(BackendGripPublish, Close) {
  std::vector<GripItem> items =
      items_of(ws(R"({"action":"close","code":4001,"reason":"pub bye"})"));
  CHECK(items[0].kind == GripItemKind::Close);
  CHECK_EQUAL(4001, items[0].close_code);
  STRCMP_EQUAL("pub bye", items[0].close_reason.c_str());
  items = items_of(ws(R"({"action":"close"})"));
  CHECK_EQUAL(1000, items[0].close_code);  // what Pushpin sends without a code
  CHECK_TRUE(items[0].close_reason.empty());
  items_of(ws(R"({"action":"close","reason":")" + std::string(123, 'r') + "\"}"));
}

TEST(BackendGripPublish, PushpinsBadRequestMessages) {
  STRCMP_EQUAL("Body is not valid JSON.", error_of("not json").c_str());
  STRCMP_EQUAL("Invalid format.", error_of("[]").c_str());
  STRCMP_EQUAL("Invalid format: object does not contain 'items'", error_of("{}").c_str());
  STRCMP_EQUAL("Invalid format: object contains 'items' with wrong type",
               error_of(R"({"items":{}})").c_str());
  STRCMP_EQUAL("Invalid format: publish item object does not contain a string 'channel'",
               error_of(R"({"items":[{}]})").c_str());
  STRCMP_EQUAL("Invalid format: no formats specified",
               error_of(R"({"items":[{"channel":"p"}]})").c_str());
  STRCMP_EQUAL("Invalid format: no formats specified",
               error_of(R"({"items":[{"channel":"p","formats":{}}]})").c_str());
  STRCMP_EQUAL("Invalid format: 'ws-message' does not contain 'content' or 'content-bin'",
               error_of(ws("{}")).c_str());
  STRCMP_EQUAL("Invalid format: 'ws-message' contains 'content' with wrong type",
               error_of(ws(R"({"content":1})")).c_str());
  STRCMP_EQUAL("Invalid format: 'ws-message' contains 'action' with unknown value",
               error_of(ws(R"({"action":"bogus"})")).c_str());
  STRCMP_EQUAL("Invalid format: 'ws-message' contains 'type' with unknown value",
               error_of(ws(R"({"content":"x","type":"close"})")).c_str());
}

TEST(BackendGripPublish, StricterThanPushpin) {
  // Pushpin publishes all of these (docs/backend.md).
  error_of(ws(R"({"content":"x"})", "\"\""));
  error_of(ws(R"({"content":"x"})", "\"" + std::string(257, 'c') + "\""));
  error_of(ws(R"({"content":"x"})", "\"a\\nb\""));
  STRCMP_EQUAL("Invalid format: 'ws-message' contains 'content-bin' that is not a base64 string",
               error_of(ws(R"({"content-bin":"!!"})")).c_str());
  STRCMP_EQUAL("Invalid format: 'ws-message' contains 'code' that is not a valid close code",
               error_of(ws(R"({"action":"close","code":"x"})")).c_str());
  error_of(ws(R"({"action":"close","code":1005})"));
  error_of(ws(R"({"action":"close","code":70000})"));
  error_of(ws(R"({"action":"close","code":-1})"));
  error_of(ws(R"({"action":"close","reason":")" + std::string(124, 'r') + "\"}"));
  STRCMP_EQUAL("Invalid format: 'ws-message' text content is not UTF-8",
               error_of(ws(R"({"content-bin":"/w==","type":"text"})")).c_str());
  error_of(ws(R"({"type":"ping","content":")" + std::string(126, 'p') + "\"}"));
  error_of("{\"items\":[{\"channel\":\"\xff\",\"ws-message\":{\"content\":\"x\"}}]}");
}

TEST(BackendGripPublish, WrongTypesAreBadRequests) {
  error_of(R"({"items":[1]})");
  error_of(R"({"items":[{"channel":1,"ws-message":{"content":"x"}}]})");
  error_of(R"({"items":[{"channel":"p","id":1,"ws-message":{"content":"x"}}]})");
  error_of(R"({"items":[{"channel":"p","prev-id":[],"ws-message":{"content":"x"}}]})");
  error_of(R"({"items":[{"channel":"p","formats":[]}]})");
  error_of(R"({"items":[{"channel":"p","ws-message":"x"}]})");
  error_of(ws(R"({"action":1})"));
  error_of(ws(R"({"content":"x","type":1})"));
  error_of(ws(R"({"action":"close","reason":1})"));
  // One bad item spoils the body, even after good ones.
  error_of(R"({"items":[{"channel":"p","ws-message":{"content":"x"}},{"channel":""}]})");
}
