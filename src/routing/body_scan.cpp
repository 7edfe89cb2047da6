// scan_body (session_key.hpp): the few fields routing needs from an inference body, read with
// simdjson's On-Demand API. simdjson indexes the body's structure in one vectorised pass and then
// walks only the path to the wanted fields; a string routing does not want (a 1 MB prompt) is
// skipped by its index entries, never copied. nlohmann's SAX parser, which this replaced, copies
// every string token whole before it can hand it over: a 15 MiB prompt cost 15-30 MiB of
// transient memory per request (docs/RELIABILITY.md, chaos scenario 8) and ~1 ms per MB
// (bench/RESULTS.md, "Reading the body").
//
// Memory: simdjson needs SIMDJSON_PADDING readable bytes past the end. The gateway reserves them
// when it reads a body (request_reader.cpp), so a request's body is scanned in place; a body
// without them is copied once into a padded buffer. Identifiers (model, prompt_cache_key, role) are
// unescaped; text (prompt, system, message content) contributes its first bytes as written, escape
// sequences included: the same bytes on every turn of a conversation, which is all the fingerprint
// needs, and no unescaping of a long prompt.

#include <simdjson.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>

#include "llmgw/routing/session_key.hpp"

namespace llmgw::routing {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;
using simdjson::SUCCESS;

constexpr std::size_t kIdBytes = 4 * 1024;  // model and prompt_cache_key
constexpr std::size_t kRoleBytes = 64;
// Bodies up to this size reuse a per-thread parser; a larger one gets its own parser, whose
// buffers (about 5 bytes per body byte, mostly never touched) go back when it is done.
constexpr std::size_t kReusedParserBytes = 1024 * 1024;

bool is_string(od::value& value) {
  od::json_type type;
  return value.type().get(type) == SUCCESS && type == od::json_type::string;
}

bool is_type(od::value& value, od::json_type wanted) {
  od::json_type type;
  return value.type().get(type) == SUCCESS && type == wanted;
}

// Calls visit(key, value) for each field of `object`; stops at the first code visit returns
// that is not SUCCESS, and returns it.
template <typename Visit>
error_code for_each_field(od::object& object, Visit&& visit) {
  for (auto field_result : object) {
    od::field field;
    if (auto error = std::move(field_result).get(field)) {
      return error;
    }
    const od::raw_json_string key = field.key();
    od::value value = field.value();
    if (auto error = visit(key, value)) {
      return error;
    }
  }
  return SUCCESS;
}

// Calls visit(object) for each element of the array `value` that is an object (others are
// skipped); stops as for_each_field does.
template <typename Visit>
error_code for_each_object_in(od::value& value, Visit&& visit) {
  od::array array;
  if (auto error = value.get_array().get(array)) {
    return error;
  }
  for (auto element_result : array) {
    od::value element;
    if (auto error = std::move(element_result).get(element)) {
      return error;
    }
    if (!is_type(element, od::json_type::object)) {
      continue;
    }
    od::object object;
    if (auto error = element.get_object().get(object)) {
      return error;
    }
    if (auto error = visit(object)) {
      return error;
    }
  }
  return SUCCESS;
}

class Scan {
 public:
  Scan(BodyFields& out, std::size_t limit, bool model_only)
      : out_(out), limit_(limit), model_only_(model_only) {}

  // The top-level object; SUCCESS when the body is valid JSON as far as it was read (with
  // model_only, the scan ends at "model" with stopped_at_model()). What follows the object is not
  // read (Ollama's JSON decoder ignores it too).
  error_code root(od::document& document) {
    od::object object;
    if (auto error = document.get_object().get(object)) {
      return error;
    }
    return for_each_field(object, [this](const od::raw_json_string& key, od::value& value) {
      if (key == "model") {
        append_id(value, out_.model, kIdBytes);
        if (model_only_) {
          stopped_at_model_ = true;
          return simdjson::EMPTY;  // any code but SUCCESS ends the walk
        }
      } else if (key == "prompt_cache_key") {
        append_id(value, out_.prompt_cache_key, kIdBytes);
      } else if (key == "prompt") {
        append_raw(value, out_.prompt, limit_);
      } else if (key == "system") {
        return system(value);
      } else if (key == "messages" && is_type(value, od::json_type::array)) {
        return for_each_object_in(value,
                                  [this](od::object& message) { return one_message(message); });
      }
      return SUCCESS;
    });
  }

  bool stopped_at_model() const noexcept { return stopped_at_model_; }

 private:
  // Appends up to `limit` bytes (in all) of a string value to `to`, as it is written in the body
  // (escape sequences kept): the same bytes on every turn whatever the string's length, and no
  // unescaping of a long prompt. Other types are ignored.
  static void append_raw(od::value& value, std::string& to, std::size_t limit) {
    if (to.size() >= limit || !is_string(value)) {
      return;
    }
    std::string_view raw = value.raw_json_token();  // "…" and the blanks after it
    raw = raw.substr(0, raw.find_last_of('"') + 1);
    if (raw.size() >= 2) {
      to.append(raw.substr(1, std::min(limit - to.size(), raw.size() - 2)));
    }
  }

  // An identifier (model, prompt_cache_key, role): unescaped when it is at most `limit` bytes
  // long, else its raw first bytes.
  static void append_id(od::value& value, std::string& to, std::size_t limit) {
    if (!is_string(value)) {
      return;
    }
    std::string_view text;
    if (value.raw_json_token().size() <= limit + 2 && value.get_string().get(text) == SUCCESS) {
      to.append(text.substr(0, limit));
    } else {
      append_raw(value, to, limit);
    }
  }

  // "system": a string, or Anthropic's blocks [{"type":"text","text":"…"}].
  error_code system(od::value& value) {
    if (is_type(value, od::json_type::array)) {
      return text_parts(value, out_.system);
    }
    append_raw(value, out_.system, limit_);
    return SUCCESS;
  }

  // The "text" of each object in an array of content blocks, appended to `to`.
  error_code text_parts(od::value& value, std::string& to) {
    return for_each_object_in(value, [this, &to](od::object& part) {
      return for_each_field(part, [this, &to](const od::raw_json_string& key, od::value& text) {
        if (key == "text") {
          append_raw(text, to, limit_);
        }
        return SUCCESS;
      });
    });
  }

  // One element of "messages": the first user message is kept, and the first system message when
  // there is no top-level "system".
  error_code one_message(od::object& message) {
    std::string role;
    std::string content;
    const auto error =
        for_each_field(message, [&](const od::raw_json_string& key, od::value& value) {
          if (key == "role") {
            append_id(value, role, kRoleBytes);
          } else if (key == "content" && is_type(value, od::json_type::array)) {
            return text_parts(value, content);
          } else if (key == "content") {
            append_raw(value, content, limit_);
          }
          return SUCCESS;
        });
    if (error) {
      return error;
    }
    if (role == "user" && out_.first_user.empty()) {
      out_.first_user = std::move(content);
    } else if (role == "system" && out_.system.empty()) {
      out_.system = std::move(content);
    }
    return SUCCESS;
  }

  BodyFields& out_;
  std::size_t limit_;
  bool model_only_;
  bool stopped_at_model_ = false;
};

BodyFields scan_padded(simdjson::padded_string_view body, std::size_t prefix_bytes,
                       bool model_only) {
  BodyFields fields;
  thread_local od::parser reused;
  od::parser own;
  od::parser& parser = body.size() <= kReusedParserBytes ? reused : own;
  od::document document;
  if (parser.iterate(body).get(document) != SUCCESS) {
    return fields;
  }
  Scan scan(fields, prefix_bytes, model_only);
  const error_code error = scan.root(document);
  fields.valid_json = error == SUCCESS || scan.stopped_at_model();
  return fields;
}

}  // namespace

BodyFields scan_body(const std::string& body, std::size_t prefix_bytes, bool model_only) {
  if (body.capacity() >= body.size() + simdjson::SIMDJSON_PADDING) {
    return scan_padded(simdjson::padded_string_view(body.data(), body.size(), body.capacity()),
                       prefix_bytes, model_only);
  }
  return scan_body(std::string_view{body}, prefix_bytes, model_only);
}

BodyFields scan_body(std::string_view body, std::size_t prefix_bytes, bool model_only) {
  const simdjson::padded_string padded(body);
  return scan_padded(padded, prefix_bytes, model_only);
}

std::size_t body_scan_padding() noexcept {
  return simdjson::SIMDJSON_PADDING;
}

}  // namespace llmgw::routing
