// libFuzzer target for the backend bridge's parsers: the WebSocket-over-HTTP
// event stream, GRIP publish bodies, and a whole backend answer fed to a
// connection (OPEN answer, then later answers). First byte picks the part.
// Checked: no crash or leak; parsed events re-encode to what was parsed;
// a failed connection says why.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend_conn.h"
#include "backend/grip_publish.h"
#include "backend/ws_events.h"

#include "fuzz_support.h"

using namespace wsb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      std::vector<WsEvent> events;
      std::string error;
      if (parse_events(in, &events, &error)) {
        std::string again;
        for (const WsEvent& e : events) append_event(again, e);
        std::vector<WsEvent> back;
        REQUIRE(parse_events(again, &back, &error) && back.size() == events.size());
        for (size_t i = 0; i < back.size(); ++i)
          REQUIRE(back[i].type == events[i].type && back[i].content == events[i].content);
      } else {
        REQUIRE(!error.empty());
      }
      break;
    }
    case 1: {
      std::vector<GripItem> items;
      std::string error;
      if (!parse_grip_publish(in, &items, &error)) REQUIRE(!error.empty());
      break;
    }
    default: {
      // An accepted OPEN, then the input as the answer to the next request.
      BackendConfig cfg;
      cfg.sig_key = "fuzz-key-0123456789";
      BackendConnection conn(cfg, "00000000-0000-4000-8000-000000000000");
      BackendRequest open = conn.take_request(1800000000);
      BackendResponse ok;
      ok.status = 200;
      ok.headers = {{"Content-Type", "application/websocket-events"}, {"Sec-WebSocket-Extensions", "grip"}};
      ok.body = "OPEN\r\n";
      auto res = conn.on_open_response(ok, 0);
      REQUIRE(res.accepted);
      conn.push(WsEvent{WsEventType::Text, "hello"});
      if (!conn.ready()) break;
      conn.take_request(1800000000);
      BackendResponse r;
      r.status = 200;
      r.headers = {{"Content-Type", "application/websocket-events"}};
      r.body = std::string(in);
      BackendActions a = conn.on_response(r, 1);
      if (a.failed) REQUIRE(!a.fail_reason.empty());
      conn.on_timer(100000);
      break;
    }
  }
  return 0;
}
