#include "trellis/common/proto_json.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string_view>

namespace trellis {
namespace {

namespace pb = google::protobuf;

// Characters protobuf's JSON printer writes as they are (it escapes '<', '>', '&', '\'', '=' and
// others, and non-ASCII text is left to it too).
bool plain_json_text(std::string_view text) {
  for (char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == ' ' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@' ||
                 c == '+' || c == ',';
    if (!plain) return false;
  }
  return true;
}

constexpr int64_t kSecondsOfYear10000 = 253402300800LL;

class DirectPrinter {
 public:
  explicit DirectPrinter(std::string& out) : out_(out) {}

  // The top-level message: well-known types print as JSON values of their own (Empty aside), and
  // proto2's closed enums keep unknown numbers among unknown fields, which protobuf prints.
  bool root(const pb::Message& message) {
    const auto* descriptor = message.GetDescriptor();
    if (descriptor->file()->syntax() != pb::FileDescriptor::SYNTAX_PROTO3) return false;
    const auto& type = descriptor->full_name();
    if (type.rfind("google.protobuf.", 0) == 0 && type != "google.protobuf.Empty") return false;
    return this->message(message);
  }

 private:
  bool message(const pb::Message& message) {
    const auto* descriptor = message.GetDescriptor();
    const auto* reflection = message.GetReflection();
    out_ += '{';
    bool first = true;
    // protobuf appends set Timestamps (printed as strings) after the other fields, in field-number
    // order: printed in place only while that gives the same order.
    int last_timestamp_number = 0;
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const auto* field = descriptor->field(i);
      if (field->is_map() || field->containing_oneof() != nullptr) return false;
      bool is_timestamp = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE &&
                          field->message_type()->full_name() == "google.protobuf.Timestamp";
      if (is_timestamp && field->is_repeated()) return false;
      if (field->is_repeated()) {
        if (last_timestamp_number != 0) return false;
        name(field, first);
        out_ += '[';
        int size = reflection->FieldSize(message, field);
        for (int k = 0; k < size; ++k) {
          if (k > 0) out_ += ',';
          if (!value(message, field, k)) return false;
        }
        out_ += ']';
        continue;
      }
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        if (!reflection->HasField(message, field)) continue;  // unset messages are left out
      }
      if (is_timestamp) {
        if (field->number() < last_timestamp_number) return false;
        last_timestamp_number = field->number();
      } else if (last_timestamp_number != 0) {
        return false;
      }
      name(field, first);
      if (!value(message, field, -1)) return false;
    }
    out_ += '}';
    return true;
  }

  void name(const pb::FieldDescriptor* field, bool& first) {
    if (!first) out_ += ',';
    first = false;
    out_ += '"';
    out_ += field->name();
    out_ += "\":";
  }

  void quoted(std::string_view text) {
    out_ += '"';
    out_ += text;
    out_ += '"';
  }

  // One value of `field`: the singular one (index -1) or element `index` of a repeated one.
  bool value(const pb::Message& message, const pb::FieldDescriptor* field, int index) {
    const auto* r = message.GetReflection();
    bool repeated = index >= 0;
    using F = pb::FieldDescriptor;
    switch (field->cpp_type()) {
      case F::CPPTYPE_INT32:
        out_ += std::to_string(repeated ? r->GetRepeatedInt32(message, field, index)
                                        : r->GetInt32(message, field));
        return true;
      case F::CPPTYPE_UINT32:
        out_ += std::to_string(repeated ? r->GetRepeatedUInt32(message, field, index)
                                        : r->GetUInt32(message, field));
        return true;
      case F::CPPTYPE_INT64:  // 64-bit integers are strings in proto3 JSON
        quoted(std::to_string(repeated ? r->GetRepeatedInt64(message, field, index)
                                       : r->GetInt64(message, field)));
        return true;
      case F::CPPTYPE_UINT64:
        quoted(std::to_string(repeated ? r->GetRepeatedUInt64(message, field, index)
                                       : r->GetUInt64(message, field)));
        return true;
      case F::CPPTYPE_BOOL:
        out_ += (repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                    ? "true"
                    : "false";
        return true;
      case F::CPPTYPE_ENUM: {
        int number = repeated ? r->GetRepeatedEnumValue(message, field, index)
                              : r->GetEnumValue(message, field);
        const auto* known = field->enum_type()->FindValueByNumber(number);
        if (known == nullptr) return false;  // an unknown number: printed as a number there
        quoted(known->name());
        return true;
      }
      case F::CPPTYPE_STRING: {
        if (field->type() == F::TYPE_BYTES) return false;  // base64
        std::string scratch;
        const auto& text = repeated ? r->GetRepeatedStringReference(message, field, index, &scratch)
                                    : r->GetStringReference(message, field, &scratch);
        if (!plain_json_text(text)) return false;
        quoted(text);
        return true;
      }
      case F::CPPTYPE_MESSAGE: {
        const auto& inner =
            repeated ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field);
        const auto& type = inner.GetDescriptor()->full_name();
        if (type == "google.protobuf.Timestamp") return timestamp(inner);
        if (type.rfind("google.protobuf.", 0) == 0) return false;  // other well-known types
        return this->message(inner);
      }
      default:
        return false;  // float and double: protobuf's shortest-text rules
    }
  }

  // RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, as protobuf writes it.
  bool timestamp(const pb::Message& timestamp) {
    const auto* descriptor = timestamp.GetDescriptor();
    const auto* r = timestamp.GetReflection();
    int64_t seconds = r->GetInt64(timestamp, descriptor->FindFieldByNumber(1));  // seconds
    int32_t nanos = r->GetInt32(timestamp, descriptor->FindFieldByNumber(2));    // nanos
    if (seconds < 0 || seconds >= kSecondsOfYear10000 || nanos < 0 || nanos > 999999999) {
      return false;
    }
    auto time = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&time, &tm);
    char buffer[48];
    int length =
        std::snprintf(buffer, sizeof buffer, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (nanos != 0) {
      if (nanos % 1000000 == 0) {
        length += std::snprintf(buffer + length, sizeof buffer - length, ".%03d", nanos / 1000000);
      } else if (nanos % 1000 == 0) {
        length += std::snprintf(buffer + length, sizeof buffer - length, ".%06d", nanos / 1000);
      } else {
        length += std::snprintf(buffer + length, sizeof buffer - length, ".%09d", nanos);
      }
    }
    out_.append(buffer, length);
    out_ += "Z\"";
    return true;
  }

  std::string& out_;
};

}  // namespace

bool print_api_json_directly(const pb::Message& message, std::string& out) {
  return DirectPrinter(out).root(message);
}

bool print_api_json_by_protobuf(const pb::Message& message, std::string& out) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!pb::util::MessageToJsonString(message, &json, options).ok()) return false;
  out += json;
  return true;
}

bool print_api_json(const pb::Message& message, std::string& out) {
  auto start = out.size();
  if (print_api_json_directly(message, out)) return true;
  out.resize(start);
  return print_api_json_by_protobuf(message, out);
}

namespace service {

std::string to_api_json(const pb::Message& message) {
  std::string json;
  if (!print_api_json(message, json)) {
    throw std::runtime_error(message.GetTypeName() + " cannot be rendered as JSON");
  }
  return json;
}

}  // namespace service
}  // namespace trellis
