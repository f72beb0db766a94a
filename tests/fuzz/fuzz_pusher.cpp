// libFuzzer target for the Pusher protocol's parsers: client frames, the
// HTTP API's routes, query strings, signatures and bodies. The first byte
// picks the parser; the rest is its input. Checked: no crash, no leak, and
// documented properties (an error always has a message; a parsed subscribe
// lets only valid channel names through; a bad signature is never accepted).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pusher/pusher_api.h"
#include "pusher/pusher_api_auth.h"
#include "pusher/pusher_channel.h"
#include "pusher/pusher_protocol.h"
#include "pusher/pusher_subscribe.h"

#include "fuzz_support.h"

using namespace wsb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 6) {
    case 0: {
      PusherCommand cmd;
      PusherError err;
      if (parse_client_frame(in, ParseLimits(), &cmd, &err)) {
        if (cmd.type == PusherCommandType::Subscribe) {
          // The parser leaves the naming rules to check_subscribe, which
          // never lets an invalid name through.
          SubscribeDecision d = check_subscribe(cmd, "key", "secret-secret-secret", "1.2", nullptr);
          REQUIRE(d.ok ? is_valid_channel_name(cmd.channel) : !d.error.message.empty());
        }
      } else {
        REQUIRE(!err.message.empty());
      }
      break;
    }
    case 1: {
      ApiTarget t;
      std::string allow;
      ApiError e = route_api_request(in.substr(0, in.find(' ')), in.substr(in.find(' ') == std::string_view::npos ? 0 : in.find(' ') + 1), &t, &allow);
      REQUIRE(e.ok() || !e.message.empty());
      break;
    }
    case 2: {
      std::vector<QueryParam> params;
      if (parse_query_string(in, &params)) {
        // Whatever the parameters, a request without the right signature fails.
        ApiAuthResult r = verify_api_request("key", "secret-secret-secret", "POST", "/apps/1/events", params, "",
                                             1800000000);
        if (r.ok()) {
          const std::string* sig = find_param(params, "auth_signature");
          REQUIRE(sig && *sig == sign_api_request("secret-secret-secret", "POST", "/apps/1/events", params));
        }
      }
      break;
    }
    case 3: {
      TriggerEvent ev;
      ApiError e = parse_trigger(in, ApiLimits(), &ev);
      REQUIRE(e.ok() ? !ev.channels.empty() : !e.message.empty());
      break;
    }
    case 4: {
      std::vector<TriggerEvent> evs;
      ApiError e = parse_batch(in, ApiLimits(), &evs);
      REQUIRE(e.ok() || !e.message.empty());
      break;
    }
    default: {
      PusherCommand cmd;
      cmd.type = PusherCommandType::Signin;
      size_t nl = in.find('\n');
      cmd.auth = std::string(in.substr(0, nl));
      cmd.user_data = nl == std::string_view::npos ? "" : std::string(in.substr(nl + 1));
      SigninDecision d = check_signin(cmd, "key", "secret-secret-secret", "1.2", nullptr);
      REQUIRE(d.ok || !d.error.message.empty());
      break;
    }
  }
  return 0;
}
