// Small helpers for HTTP header values, shared by the handshake and the
// extension negotiation.
#pragma once
#include <string_view>

namespace wsb {

// Strips optional whitespace (space, tab) from both ends (RFC 7230 OWS).
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace wsb
