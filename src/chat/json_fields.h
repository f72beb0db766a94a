// Small typed accessors over RapidJSON objects, shared by the client command
// parser, the bus record parser and the publish API, so "missing" and
// "wrong type" are told apart the same way everywhere.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace wsb {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

enum class FieldStatus { Ok, Missing, WrongType };

// Parses text as one JSON object. Iterative so deeply nested input cannot
// exhaust the stack; encoding-validated because the publish API's body did
// not pass the WebSocket layer's UTF-8 check. False if it is not valid JSON
// (*is_object tells an array/number apart from a syntax error).
bool parse_json_object(std::string_view text, rapidjson::Document* doc, bool* is_object);

// Strings are returned with their length: JSON "\u0000" is a legal byte.
FieldStatus get_string(const rapidjson::Value& obj, const char* key, std::string* out);
FieldStatus get_uint64(const rapidjson::Value& obj, const char* key, uint64_t* out);
FieldStatus get_int64(const rapidjson::Value& obj, const char* key, int64_t* out);

inline void write_key(JsonWriter& w, const char* key) { w.Key(key); }
inline void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void write_field(JsonWriter& w, const char* key, std::string_view s) {
  w.Key(key);
  write_string(w, s);
}

}  // namespace wsb
