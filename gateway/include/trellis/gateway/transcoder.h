// JSON <-> protobuf for any routed RPC, by descriptor (proto3 JSON mapping, original field names).
// Nothing here knows a particular service.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

struct TranscodeError {
  std::string code;     // stable: "malformed_json", "invalid_argument"
  std::string message;  // names the field when one is at fault
};

struct TranscodeResult {
  bool ok = false;
  std::string payload;  // serialized request message on success
  TranscodeError error;
};

// Builds the request message: the JSON body (an object; empty body means {}), then query
// parameters for top-level scalar fields, then path variables (which win over both).
TranscodeResult request_to_proto(const Route& route, std::string_view body, std::string_view query,
                                 const std::map<std::string, std::string>& path_params);

// Renders a response message as JSON; primitive fields are always printed so that clients see
// every field (e.g. an empty list) rather than a missing key. False if the bytes do not parse.
bool response_to_json(const Route& route, std::string_view payload, std::string& json);

// Same, for any message type (e.g. the JWKS the gateway fetches for itself).
bool payload_to_json(const google::protobuf::Descriptor* type, std::string_view payload,
                     std::string& json);

// Parses "a=1&b=x%20y" (also '+' as space); later duplicates win.
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace trellis::gateway
