#include "trellis/gateway/transcoder.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <memory>

#include "trellis/common/proto_json.h"

namespace trellis::gateway {
namespace {

namespace pb = google::protobuf;

std::unique_ptr<pb::Message> new_message(const pb::Descriptor* descriptor) {
  // Generated classes are linked in; the dynamic factory covers messages that are not.
  const auto* prototype = pb::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype) return std::unique_ptr<pb::Message>(prototype->New());
  static pb::DynamicMessageFactory dynamic_factory;
  return std::unique_ptr<pb::Message>(dynamic_factory.GetPrototype(descriptor)->New());
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string form_decode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

template <class Int>
bool parse_int(const std::string& text, Int& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

// Sets one top-level scalar field from its text form; false with a message when it cannot.
bool set_scalar(pb::Message& message, const pb::FieldDescriptor& field, const std::string& value,
                std::string& problem) {
  const auto* reflection = message.GetReflection();
  auto bad = [&](std::string_view expected) {
    problem = "query parameter " + field.name() + " must be " + std::string(expected);
    return false;
  };
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_STRING:
      reflection->SetString(&message, &field, value);
      return true;
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!parse_int(value, v)) return bad("an integer");
      reflection->SetInt32(&message, &field, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!parse_int(value, v)) return bad("an integer");
      reflection->SetInt64(&message, &field, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!parse_int(value, v)) return bad("a non-negative integer");
      reflection->SetUInt32(&message, &field, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!parse_int(value, v)) return bad("a non-negative integer");
      reflection->SetUInt64(&message, &field, v);
      return true;
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      if (value == "true" || value == "1") {
        reflection->SetBool(&message, &field, true);
      } else if (value == "false" || value == "0") {
        reflection->SetBool(&message, &field, false);
      } else {
        return bad("true or false");
      }
      return true;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const auto* enum_value = field.enum_type()->FindValueByName(value);
      if (!enum_value) return bad("one of the enum names");
      reflection->SetEnum(&message, &field, enum_value);
      return true;
    }
    default:
      return bad("a scalar (this field cannot be set from the query)");
  }
}

// Protobuf's JSON parser reports e.g. "INVALID_ARGUMENT:display_nam: Cannot find field."; keep
// the part after the code, which names the field.
std::string describe_json_error(const std::string& status_text) {
  auto colon = status_text.find(':');
  auto text = colon == std::string::npos ? status_text : status_text.substr(colon + 1);
  // The parser appends a multi-line excerpt with a caret; the first line says what is wrong.
  auto newline = text.find('\n');
  if (newline != std::string::npos) text.resize(newline);
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  return text;
}

}  // namespace

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    if (!pair.empty()) {
      auto eq = pair.find('=');
      auto key = form_decode(pair.substr(0, eq));
      auto value = eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
      params[key] = value;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return params;
}

TranscodeResult request_to_proto(const Route& route, std::string_view body, std::string_view query,
                                 const std::map<std::string, std::string>& path_params) {
  TranscodeResult result;
  auto message = new_message(route.input);
  bool blank = body.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (!blank) {
    auto first = body.find_first_not_of(" \t\r\n");
    if (body[first] != '{') {
      result.error = {"malformed_json", "the request body must be a JSON object"};
      return result;
    }
    pb::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;  // a misspelt field is an error, not a silent no-op
    auto status = pb::util::JsonStringToMessage(pb::StringPiece(body.data(), body.size()),
                                                message.get(), options);
    if (!status.ok()) {
      result.error = {"malformed_json",
                      "invalid JSON body: " + describe_json_error(status.ToString())};
      return result;
    }
  }
  for (const auto& [key, value] : parse_query(query)) {
    const auto* field = route.input->FindFieldByName(key);
    // Unknown parameters are ignored (cache busters, tracking); known ones must parse.
    if (!field || field->is_repeated() ||
        field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      continue;
    }
    std::string problem;
    if (!set_scalar(*message, *field, value, problem)) {
      result.error = {"invalid_argument", problem};
      return result;
    }
  }
  for (const auto& [name, value] : path_params) {
    const auto* field = route.input->FindFieldByName(name);
    if (field) message->GetReflection()->SetString(message.get(), field, value);
  }
  if (!message->SerializeToString(&result.payload)) {
    result.error = {"invalid_argument", "request cannot be encoded"};
    return result;
  }
  result.ok = true;
  return result;
}

bool response_to_json(const Route& route, std::string_view payload, std::string& json) {
  return payload_to_json(route.output, payload, json);
}

bool payload_to_json(const pb::Descriptor* type, std::string_view payload, std::string& json) {
  auto message = new_message(type);
  if (!message->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return false;
  json.clear();
  return print_api_json(*message, json);
}

}  // namespace trellis::gateway
