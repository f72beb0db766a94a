// publish_from_http: the HTTP publish API's statuses and the record it writes.
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "chat/chat_record.h"
#include "chat/publish_api.h"
#include "runtime/bus.h"

// Last: it includes <CppUTest/TestHarness.h>, and CppUTest redefines new,
// which breaks placement new in headers after it.
#include "chat_test_support.h"

using namespace wsb;
using namespace wsb_test;

TEST_GROUP(ChatPublishApi) {
  ChatConfig cfg;
  MemoryBus bus;
  PublishResult post(const std::string& body) { return publish_from_http(body, bus, cfg, 777); }
};

TEST(ChatPublishApi, AcceptedWithSeqAndDefaultSender) {
  bus.records.push_back("earlier");
  const PublishResult r = post(R"({"room":"news","text":"deploy done"})");
  CHECK_EQUAL(202, r.http_status);
  CHECK_EQUAL(2u, r.seq);
  CHECK_TRUE(r.error.empty());
  ChatRecord rec;
  CHECK_TRUE(parse_record(bus.records.back(), &rec));
  CHECK(rec.type == RecordType::Msg);
  STRCMP_EQUAL("news", rec.room.c_str());
  STRCMP_EQUAL("server", rec.from.c_str());
  STRCMP_EQUAL("deploy done", rec.text.c_str());
  CHECK_TRUE(rec.conn.empty());
  CHECK_EQUAL(777, rec.ts);
  STRCMP_EQUAL(R"({"seq":2})", publish_response_body(r).c_str());
}

TEST(ChatPublishApi, CustomSender) {
  CHECK_EQUAL(202, post(R"({"room":"news","text":"x","from":"Build Bot"})").http_status);
  ChatRecord rec;
  CHECK_TRUE(parse_record(bus.records.back(), &rec));
  STRCMP_EQUAL("Build Bot", rec.from.c_str());
}

TEST(ChatPublishApi, BadRequests) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "bad-json"},
      {"room=news&text=x", "bad-json"},
      {"[]", "bad-json"},
      {"{\"room\":\"news\",\"text\":\"\xFF\"}", "bad-json"},  // not UTF-8
      {R"({"text":"x"})", "missing-field"},
      {R"({"room":"news"})", "missing-field"},
      {R"({"room":1,"text":"x"})", "bad-field"},
      {R"({"room":"news","text":false})", "bad-field"},
      {R"({"room":"news","text":""})", "bad-field"},
      {R"({"room":"news","text":"\udc00"})", "bad-field"},
      {R"({"room":"no/slash","text":"x"})", "bad-room"},
      {R"({"room":"news","text":"x","from":7})", "bad-field"},
      {R"({"room":"news","text":"x","from":"a#b"})", "bad-name"},
      {R"({"room":"news","text":"x","from":""})", "bad-name"},
  };
  for (const auto& tc : cases) {
    const PublishResult r = post(tc.first);
    CHECK_EQUAL(400, r.http_status);
    CHECK_EQUAL(std::string(tc.second), r.error);
    CHECK_FALSE(r.reason.empty());
  }
  CHECK_TRUE(bus.records.empty());
}

TEST(ChatPublishApi, TooLongIs413) {
  cfg.max_text_length = 4;
  const PublishResult r = post(R"({"room":"news","text":"12345"})");
  CHECK_EQUAL(413, r.http_status);
  STRCMP_EQUAL("too-long", r.error.c_str());
  CHECK_EQUAL(202, post(R"({"room":"news","text":"1234"})").http_status);
}

TEST(ChatPublishApi, BusRefusalIs503) {
  bus.refuse = true;
  const PublishResult r = post(R"({"room":"news","text":"x"})");
  CHECK_EQUAL(503, r.http_status);
  STRCMP_EQUAL("unavailable", r.error.c_str());
  rapidjson::Document d;
  const std::string body = publish_response_body(r);
  d.Parse(body.c_str());
  STRCMP_EQUAL("unavailable", d["error"].GetString());
  CHECK_TRUE(d["reason"].IsString());
}
