#include "trellis/gateway/status_mapping.h"

namespace trellis::gateway {

// Numbers are grpc::StatusCode values; spelled out so that this file needs no gRPC header.
int http_status_for_grpc(int code) {
  switch (code) {
    case 0:
      return 200;  // OK
    case 1:
      return 499;  // CANCELLED
    case 3:
      return 400;  // INVALID_ARGUMENT
    case 4:
      return 504;  // DEADLINE_EXCEEDED
    case 5:
      return 404;  // NOT_FOUND
    case 6:
      return 409;  // ALREADY_EXISTS
    case 7:
      return 403;  // PERMISSION_DENIED
    case 8:
      return 429;  // RESOURCE_EXHAUSTED
    case 9:
      return 400;  // FAILED_PRECONDITION
    case 10:
      return 409;  // ABORTED
    case 11:
      return 400;  // OUT_OF_RANGE
    case 12:
      return 501;  // UNIMPLEMENTED
    case 14:
      return 503;  // UNAVAILABLE
    case 16:
      return 401;  // UNAUTHENTICATED
    default:
      return 500;  // UNKNOWN, INTERNAL, DATA_LOSS and anything new
  }
}

std::string_view error_code_for_grpc(int code) {
  switch (code) {
    case 0:
      return "ok";
    case 1:
      return "cancelled";
    case 2:
      return "unknown";
    case 3:
      return "invalid_argument";
    case 4:
      return "deadline_exceeded";
    case 5:
      return "not_found";
    case 6:
      return "already_exists";
    case 7:
      return "permission_denied";
    case 8:
      return "resource_exhausted";
    case 9:
      return "failed_precondition";
    case 10:
      return "aborted";
    case 11:
      return "out_of_range";
    case 12:
      return "unimplemented";
    case 13:
      return "internal";
    case 14:
      return "unavailable";
    case 15:
      return "data_loss";
    case 16:
      return "unauthenticated";
    default:
      return "internal";
  }
}

}  // namespace trellis::gateway
