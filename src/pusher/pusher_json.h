// JSON helpers shared by the Pusher parsers and renderers (RapidJSON).
// Kept inside src/pusher/ so the Pusher adapter does not depend on the chat
// application's helpers.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace wsb::pusher_json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Parsing is iterative, but serializing a value back (Accept) recurses, and
// client data is re-serialized; so nesting is bounded before parsing. Real
// Pusher payloads are a few levels deep.
constexpr size_t kMaxDepth = 64;

// True if no array/object in text nests deeper than max_depth (strings are
// skipped; text need not be valid JSON, the parser decides that).
bool depth_within(std::string_view text, size_t max_depth = kMaxDepth);

// Parses text as one JSON value with valid UTF-8 and bounded depth.
bool parse(std::string_view text, rapidjson::Document* doc);

// Compact JSON of a value.
std::string to_json(const rapidjson::Value& value);

enum class Field { Ok, Missing, WrongType };
// A string member; JSON null counts as Missing (some clients serialize
// absent optional fields as null).
Field get_string(const rapidjson::Value& obj, const char* key, std::string* out);

inline std::string_view view(const rapidjson::Value& s) {
  return std::string_view(s.GetString(), s.GetStringLength());
}
inline void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void write_field(Writer& w, const char* key, std::string_view s) {
  w.Key(key);
  write_string(w, s);
}
// json must be one valid JSON value (produced by to_json or a renderer).
inline void write_raw(Writer& w, std::string_view json) {
  w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}
inline std::string take(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace wsb::pusher_json
