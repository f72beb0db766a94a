// Which headers cross the bridge: the client's handshake to the backend
// (compared with what Pushpin forwarded in the reference run), the
// backend's answer to the client, and the grip extension.
#include <string>

#include "backend/backend_headers.h"

// Last: CppUTest redefines new, which breaks placement new in headers after it.
#include <CppUTest/TestHarness.h>

using namespace wsb;

namespace {

std::string names(const HeaderList& headers) {
  std::string out;
  for (const auto& [k, v] : headers) out += (out.empty() ? "" : ",") + k;
  return out;
}

}  // namespace

TEST_GROUP(BackendHeaders){};

TEST(BackendHeaders, ClientHeadersAsPushpinForwardsThem) {
  // The reference run's client headers, in order.
  const HeaderList client = {{"Host", "127.0.0.1:58849"},
                             {"Upgrade", "websocket"},
                             {"Connection", "Upgrade"},
                             {"Sec-WebSocket-Key", "k"},
                             {"Sec-WebSocket-Version", "13"},
                             {"Origin", "http://example.com"},
                             {"Cookie", "a=1"},
                             {"Authorization", "Bearer t"},
                             {"Sec-WebSocket-Protocol", "chat"},
                             {"Sec-WebSocket-Extensions", "permessage-deflate"},
                             {"Meta-Evil", "1"},
                             {"Grip-Evil", "1"},
                             {"Grip-Sig", "forged"},
                             {"Connection-Id", "mine"},
                             {"X-Forwarded-For", "1.2.3.4"},
                             {"Keep-Alive", "5"},
                             {"Accept", "text/x"},
                             {"x-lower-case", "v"},
                             {"X-Dup", "1"},
                             {"X-Dup", "2"},
                             {"Content-Type", "text/x"}};
  // Pushpin also forwarded Content-Type (then added its own): we drop it.
  STRCMP_EQUAL(
      "Host,Sec-WebSocket-Key,Sec-WebSocket-Version,Origin,Cookie,Authorization,"
      "Sec-WebSocket-Protocol,X-Forwarded-For,x-lower-case,X-Dup,X-Dup",
      names(filter_client_headers(client)).c_str());
}

TEST(BackendHeaders, ClientHopByHopAndPrivateHeadersInAnyCase) {
  const HeaderList client = {{"connection", "keep-alive, Upgrade, X-Secret"},
                             {"X-Secret", "s"},
                             {"te", "trailers"},
                             {"TRANSFER-ENCODING", "chunked"},
                             {"Content-Length", "0"},
                             {"Expect", "100-continue"},
                             {"accept-encoding", "gzip"},
                             {"Proxy-Authorization", "x"},
                             {"meta-user", "x"},
                             {"GRIP-LAST", "x"},
                             {"connection-id", "x"},
                             {"Trailer", "x"},
                             {"Metadata", "kept"},
                             {"Gripper", "kept"},
                             {"User-Agent", "ua"}};
  STRCMP_EQUAL("Metadata,Gripper,User-Agent", names(filter_client_headers(client)).c_str());
}

TEST(BackendHeaders, ContentType) {
  CHECK_TRUE(is_websocket_events_type("application/websocket-events"));
  CHECK_TRUE(is_websocket_events_type("Application/WebSocket-Events"));
  CHECK_TRUE(is_websocket_events_type(" application/websocket-events ; charset=utf-8"));
  CHECK_FALSE(is_websocket_events_type("text/plain"));
  CHECK_FALSE(is_websocket_events_type("application/websocket-events-x"));
  CHECK_FALSE(is_websocket_events_type(""));
}

TEST(BackendHeaders, AnswerHeadersFor101AndForARefusal) {
  const HeaderList backend = {{"Server", "BaseHTTP"},
                              {"Date", "d"},
                              {"Content-Type", "application/websocket-events"},
                              {"Content-Length", "6"},
                              {"Sec-WebSocket-Protocol", "chat"},
                              {"X-Custom", "1"},
                              {"Set-Meta-A", "b"},
                              {"Sec-WebSocket-Extensions", "grip"},
                              {"Keep-Alive-Interval", "30"},
                              {"Set-Cookie", "s=1"},
                              {"Connection", "close"},
                              {"Transfer-Encoding", "chunked"},
                              {"Sec-WebSocket-Accept", "x"},
                              {"Upgrade", "h2c"}};
  STRCMP_EQUAL("Sec-WebSocket-Protocol,X-Custom,Set-Cookie",
               names(headers_for_client(backend, true)).c_str());
  STRCMP_EQUAL(
      "Content-Type,Sec-WebSocket-Protocol,X-Custom,Sec-WebSocket-Extensions,Set-Cookie,"
      "Sec-WebSocket-Accept",
      names(headers_for_client(backend, false)).c_str());
}

TEST(BackendHeaders, GripExtensionForms) {
  const auto grip = [](const std::string& value) {
    return find_grip_extension({{"X", "y"}, {"Sec-WebSocket-Extensions", value}});
  };
  GripExtension g = grip("grip");
  CHECK_TRUE(g.enabled);
  CHECK_FALSE(g.has_prefix);
  g = grip("grip; message-prefix=\"p:\"");
  CHECK_TRUE(g.has_prefix);
  STRCMP_EQUAL("p:", g.message_prefix.c_str());
  g = grip("grip;message-prefix=p:");
  STRCMP_EQUAL("p:", g.message_prefix.c_str());
  g = grip("grip; message-prefix=\"\"");
  CHECK_TRUE(g.has_prefix);
  STRCMP_EQUAL("", g.message_prefix.c_str());
  g = grip("permessage-deflate; x=\"a,b\", grip ; message-prefix=\"a;b,\\\"c\"");
  CHECK_TRUE(g.enabled);
  STRCMP_EQUAL("a;b,\"c", g.message_prefix.c_str());
  CHECK_TRUE(grip("grip, permessage-deflate").enabled);
  CHECK_FALSE(grip("GRIP").enabled);  // as Pushpin: the name is case-sensitive
  CHECK_FALSE(grip("gripx").enabled);
  CHECK_FALSE(grip("").enabled);
  CHECK_FALSE(find_grip_extension({{"X-Extensions", "grip"}}).enabled);
  CHECK_TRUE(
      find_grip_extension({{"sec-websocket-extensions", "a"}, {"Sec-WebSocket-Extensions", "grip"}})
          .enabled);
}

TEST(BackendHeaders, ConnectionIdIsAVersion4Uuid) {
  const std::string a = make_connection_id(), b = make_connection_id();
  CHECK_EQUAL(36u, a.size());
  CHECK(a != b);
  CHECK(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
  CHECK(a[14] == '4');
  CHECK(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
  for (char c : a) CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-');
}

TEST(BackendHeaders, CaseInsensitiveHelpers) {
  CHECK_TRUE(iequals("Set-Meta-X", "set-meta-x"));
  CHECK_FALSE(iequals("a", "ab"));
  CHECK_TRUE(istarts_with("META-user", "Meta-"));
  CHECK_FALSE(istarts_with("Met", "Meta-"));
  const HeaderList h = {{"content-type", "a"}, {"Content-Type", "b"}};
  STRCMP_EQUAL("a", find_header(h, "CONTENT-TYPE")->c_str());
  CHECK(find_header(h, "X") == nullptr);
}
