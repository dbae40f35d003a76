#include "trellis/common/proto_json.h"

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <stdexcept>

namespace trellis::service {

std::string to_api_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    throw std::runtime_error(message.GetTypeName() + " cannot be rendered as JSON");
  }
  return json;
}

}  // namespace trellis::service
