// A message as the REST API renders it: proto3 JSON with the .proto field names and every field
// present (the gateway's transcoder prints responses with the same options). For event payloads
// and pushed notifications, so that they look exactly like the API's answers.
#pragma once

#include <string>

namespace google::protobuf {
class Message;
}

namespace trellis::service {

// Throws std::runtime_error when the message cannot be printed.
std::string to_api_json(const google::protobuf::Message& message);

}  // namespace trellis::service
