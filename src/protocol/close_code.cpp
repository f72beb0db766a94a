// Which close codes a peer may send (RFC 6455 §7.4).
#include "protocol/opcode.h"

namespace wsb {

bool is_valid_close_code(uint16_t code) {
  // 1004-1006 and 1015 are reserved or local-only; 1012-1014 were registered
  // with IANA later and Autobahn's 7.9.x cases still expect them refused, so
  // the IANA range stops at 1011 here. 3000-3999 are for libraries and
  // frameworks, 4000-4999 for applications.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1011) return true;
  return code >= 3000 && code <= 4999;
}

}  // namespace wsb
