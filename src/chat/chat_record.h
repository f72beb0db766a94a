// Bus records: the chat events every engine applies in bus order. A record
// carries everything any engine needs, because engines in other processes
// know nothing about the publisher's connection. The publisher sets ts, so
// all engines agree on it.
//
//   join    {"t":"join","room","conn","user","name","pid","ts","since"?,"foreign"?}
//           user = the connection's base name (for direct/online), name =
//           the name requested in this room (suffixed by the engine on clash);
//           foreign: true when the client resumed with a since numbered by
//           another bus (its "bus" differed): no since then, and the history
//           answer says complete:false
//   leave   {"t":"leave","room","conn","ts"}
//   msg     {"t":"msg","room","conn","user","pid","from"?,"text","cid"?,"ts"}   from a member
//           {"t":"msg","room","from","text","cid"?,"ts"}                          publish API
//           cid: the client's message id (publish API: the Idempotency-Key);
//           the first msg of a room with a given (user, cid) wins, later
//           ones are duplicates every engine ignores (see ChatEngine).
//           With conn, the sender's name comes from the engine's member table;
//           "from" is then only the publisher's view of its effective name,
//           used by an engine that missed the join (see ChatEngine).
//   direct  {"t":"direct","conn","from","to","text","cid"?,"ts"}  from/to are base names
//   gone    {"t":"gone","pid","by"?,"ts"}  every member owned by process pid left;
//           by = the process that noticed and published it (it alone sends
//           the Pusher webhooks those leaves cause)
//   sync    {"t":"sync","pid","ts"}  a process that may have missed joins
//           (it started after the log dropped its oldest records, or fell
//           behind) asks every process to say who its members are
//   pub     {"t":"pub","ns","ch","k","d","code"?,"reason"?,"ts"}  a message for every
//           local subscriber of channel ch in app namespace ns ("grip": the
//           backend bridge's GRIP channels). k: text|binary|ping|pong|close;
//           d: the text, or base64 of the bytes; close: code and reason.
//           k "event" (the Pusher protocol): name = event name, d = its data
//           (JSON text), conn = a socket_id not to deliver to, user = the
//           sender's user_id (client events on presence channels), from =
//           "client" for a client event (conn is then its sender).
//   psub    {"t":"psub","ns","ch","conn","pid","user"?,"d"?,"ts"}  Pusher socket conn
//           subscribed to ch (presence: user = user_id, d = user_info JSON)
//   pleave  {"t":"pleave","ns","conn","ch"?,"pid","ts"}  it left ch, or every channel
//   pterm   {"t":"pterm","ns","user","pid","ts"}  close the user's sockets
//   present {"t":"present","base","ts","members":[{"room","conn","user","name","pid"}]}
//           one process's answer: its local members as of the sync record
//           `base` (several records when there are many). Engines that
//           have seen every record ignore it.
//
// "pid" is the owning process's key: (server tag << 32) | process id. The
// tag is random per Apache server, so two servers sharing a Redis bus never
// confuse their processes (equal pids are common in containers).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsb {

enum class RecordType { Join, Leave, Msg, Direct, Gone, Sync, Present, Publish, PusherSubscribe, PusherLeave, PusherTerminate };

// Event: a Pusher event (name, JSON data text) for channel subscribers.
enum class PublishKind : uint8_t { Text, Binary, Ping, Pong, Close, Event };

struct PresentMember {
  std::string room, conn, user, name;
  long pid = 0;
};

struct ChatRecord {
  RecordType type = RecordType::Msg;
  std::string room;
  std::string conn;
  std::string user;
  std::string name;
  std::string from;
  std::string to;
  std::string text;
  std::string cid;                       // msg, direct: the client's message id, or empty
  long pid = 0;
  long by = 0;                           // gone: the reporting process (0 = unknown)
  int64_t ts = 0;
  bool has_since = false;
  uint64_t since = 0;
  bool foreign_since = false;            // join: the client's since was another bus's
  uint64_t base = 0;                     // present: the sync record answered
  std::vector<PresentMember> members;    // present
  // pub
  std::string ns;
  std::string channel;
  PublishKind kind = PublishKind::Text;
  std::string data;                      // the message bytes (decoded)
  uint16_t code = 1000;                  // close
};

std::string encode_record(const ChatRecord& record);

// False for anything that is not a well-formed record of a known type with
// its required fields (such records are skipped, never half-applied).
bool parse_record(std::string_view payload, ChatRecord* record);

}  // namespace wsb
