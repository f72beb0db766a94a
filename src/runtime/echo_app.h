// WSBridgeApp echo: every text and binary message goes back unchanged (the
// endpoint conformance suites are run against).
#pragma once
#include "runtime/session.h"

namespace wsb {

class EchoApp : public App {
 public:
  void on_message(Session& s, Opcode op, std::string_view payload) override {
    if (op == Opcode::Text) s.send_text(payload);
    else s.send_binary(payload);
  }
};

}  // namespace wsb
