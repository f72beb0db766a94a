// permessage-deflate (RFC 7692): the offer negotiation and the inflater for
// client messages. The server never compresses what it sends (RFC 7692 lets
// either side send a message uncompressed): a chat frame is encoded once and
// shared by every receiver, which per-connection compression would undo.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace wsb {

struct DeflateAgreement {
  bool accepted = false;
  std::string response;  // the Sec-WebSocket-Extensions value to send back
};

// Picks the first acceptable permessage-deflate offer from a
// Sec-WebSocket-Extensions header (several headers joined with ", ").
// Offers with unknown or repeated parameters or bad values are declined;
// other extensions are ignored.
DeflateAgreement negotiate_deflate(std::string_view extensions_header);

// Inflates client messages, keeping the LZ77 window between them (for a
// client that takes its context over; the session makes one per message,
// since it answers client_no_context_takeover).
class Inflater {
 public:
  enum class Result { Ok, TooBig, Corrupt };
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Replaces *out with the inflated message; TooBig once it would exceed
  // max_out bytes (inflating stops there), Corrupt on invalid data.
  Result inflate(std::string_view message, size_t max_out, std::string* out);

 private:
  struct Stream;
  std::unique_ptr<Stream> z_;
};

}  // namespace wsb
