// The JSON protocol between the browser and the server (docs/chat-protocol.md):
// parsing and validating client commands, and encoding server frames. Pure
// functions; the session and the engine decide what to send when.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_config.h"
#include "runtime/frame.h"

namespace wsb {

// The "code" of an error frame. Stable strings: pages switch on them.
enum class ChatError {
  None,
  BadJson,        // not a JSON object
  UnknownType,    // "type" is not one of the commands
  MissingField,   // a required field is absent
  BadField,       // a field has the wrong JSON type or an empty/invalid value
  BadRoom,        // room name breaks the rules
  BadName,        // user name breaks the rules
  TooLong,        // text longer than max_text_length bytes
  NotJoined,      // leave/message for a room the connection is not in
  AlreadyJoined,  // join for a room the connection is already in
  TooManyRooms,   // connection's or server's room limit reached
  RateLimited,    // command refused by the rate limit
  NoSuchUser,     // direct to a user who is not connected
  HistoryLost,    // the server fell behind the bus; events may be missing
  Unavailable,    // the bus refused the event (full/down); try again
  BadCid,         // "cid" is not 1-64 printable ASCII characters
};

const char* error_code_name(ChatError code);

enum class CommandType { Unknown, Join, Leave, Message, Direct };

struct ClientCommand {
  CommandType type = CommandType::Unknown;
  std::string room;
  std::string name;  // join, optional
  std::string text;  // message, direct
  std::string to;    // direct
  std::string cid;   // message, direct: the client's id for exactly-once (optional)
  bool has_name = false;
  bool has_since = false;
  uint64_t since = 0;  // join: last seq the client saw (resume)
  bool has_cid = false;
  bool has_bus = false;
  std::string bus;     // join: the id of the bus that numbered since (16 hex digits)
};

// A client message id (a "cid", or the publish API's Idempotency-Key):
// 1-64 characters of printable ASCII (0x21-0x7e, no space).
constexpr size_t kMaxCidLength = 64;
bool is_valid_cid(std::string_view cid);

struct ParsedCommand {
  ClientCommand command;  // command.type is set as soon as "type" is known
  ChatError error = ChatError::None;
  std::string reason;  // human-readable, for the error frame
};

// Validates one client frame completely (fields, names, text length).
// Unknown extra fields are ignored. Never throws, whatever the input.
ParsedCommand parse_client_command(std::string_view json, const ChatConfig& config);

// --- server -> client frames (JSON text of one object) ---------------------

struct RoomCount {
  std::string room;
  size_t members = 0;
};

// bus: the bus id (runtime/bus_id.h), written only when not empty.
std::string encode_welcome(std::string_view you, std::string_view conn_id, long pid,
                           const std::vector<RoomCount>& rooms, std::string_view bus = {});
// cid: the sender's client id, written only when not empty.
std::string encode_message_event(std::string_view room, std::string_view from,
                                 std::string_view text, uint64_t seq, int64_t ts,
                                 std::string_view cid = {});
// event is "join" or "leave".
std::string encode_system_event(std::string_view room, std::string_view event,
                                std::string_view name, uint64_t seq, int64_t ts);
// count > members.size(): a room above the presence limit, whose members
// are only the first names; "count" and "truncated": true are added.
std::string encode_presence(std::string_view room, const std::vector<std::string>& members,
                            std::string_view you, size_t count = 0);
// The folded presence update of a room above the presence limit (or just
// back at it): the member count, and the shown names only when they changed
// (members == nullptr: omitted, the receiver keeps its list).
std::string encode_presence_update(std::string_view room, size_t count, bool truncated,
                                   const std::vector<std::string>* members);
// events are message/system objects exactly as they were sent live, spliced
// in unparsed.
std::string encode_history(std::string_view room, const std::vector<std::string_view>& events,
                           bool complete);
std::string encode_direct(std::string_view from, std::string_view to, std::string_view text,
                          int64_t ts, std::string_view cid = {});
// room is added only when the error concerns one room (empty = omitted).
std::string encode_error(ChatError code, std::string_view reason, std::string_view room = {});

// One WebSocket text frame holding json, ready to share between receivers.
FramePtr make_text_frame(std::string_view json);

}  // namespace wsb
