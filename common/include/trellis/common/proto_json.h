// A message as the REST API renders it: proto3 JSON with the .proto field names and every field
// present. The gateway's transcoder prints responses with it, and services print event payloads
// and pushed notifications with it, so that they look exactly like the API's answers.
#pragma once

#include <string>

namespace google::protobuf {
class Message;
}

namespace trellis {

// Appends the message's JSON to `out`; false when it cannot be printed. Common shapes are
// written directly (protobuf's printer re-parses the message through a type resolver and was a
// third of the gateway's instructions per transcoded answer); the rest goes through protobuf's
// printer, and a test holds both outputs byte-equal.
bool print_api_json(const google::protobuf::Message& message, std::string& out);

// The direct printer alone: false (and `out` unspecified) for what it does not cover, i.e. text
// the JSON printer escapes, floating point, bytes, maps, oneofs, optional fields, and well-known
// types other than Timestamp. For tests.
bool print_api_json_directly(const google::protobuf::Message& message, std::string& out);

// protobuf's printer with the same options. For tests.
bool print_api_json_by_protobuf(const google::protobuf::Message& message, std::string& out);

namespace service {
// Throws std::runtime_error when the message cannot be printed.
std::string to_api_json(const google::protobuf::Message& message);
}  // namespace service

}  // namespace trellis
