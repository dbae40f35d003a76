// gRPC status codes as HTTP statuses and stable error codes (the canonical mapping of
// google.rpc.Code, plus 499 for CANCELLED).
#pragma once

#include <string_view>

namespace trellis::gateway {

int http_status_for_grpc(int grpc_code);
// "invalid_argument", "not_found", ... for the JSON error body.
std::string_view error_code_for_grpc(int grpc_code);

}  // namespace trellis::gateway
