#include "trellis/gateway/status_mapping.h"

#include <grpcpp/support/status_code_enum.h>
#include <gtest/gtest.h>

namespace trellis::gateway {
namespace {

TEST(StatusMapping, FollowsTheCanonicalTable) {
  using grpc::StatusCode;
  const std::pair<StatusCode, int> table[] = {
      {StatusCode::OK, 200},
      {StatusCode::CANCELLED, 499},
      {StatusCode::UNKNOWN, 500},
      {StatusCode::INVALID_ARGUMENT, 400},
      {StatusCode::DEADLINE_EXCEEDED, 504},
      {StatusCode::NOT_FOUND, 404},
      {StatusCode::ALREADY_EXISTS, 409},
      {StatusCode::PERMISSION_DENIED, 403},
      {StatusCode::RESOURCE_EXHAUSTED, 429},
      {StatusCode::FAILED_PRECONDITION, 400},
      {StatusCode::ABORTED, 409},
      {StatusCode::OUT_OF_RANGE, 400},
      {StatusCode::UNIMPLEMENTED, 501},
      {StatusCode::INTERNAL, 500},
      {StatusCode::UNAVAILABLE, 503},
      {StatusCode::DATA_LOSS, 500},
      {StatusCode::UNAUTHENTICATED, 401},
  };
  for (auto [code, http] : table) {
    EXPECT_EQ(http_status_for_grpc(static_cast<int>(code)), http) << static_cast<int>(code);
  }
  EXPECT_EQ(http_status_for_grpc(99), 500);
}

TEST(StatusMapping, ErrorCodesAreStableSnakeCase) {
  EXPECT_EQ(error_code_for_grpc(grpc::StatusCode::ALREADY_EXISTS), "already_exists");
  EXPECT_EQ(error_code_for_grpc(grpc::StatusCode::UNAUTHENTICATED), "unauthenticated");
  EXPECT_EQ(error_code_for_grpc(grpc::StatusCode::PERMISSION_DENIED), "permission_denied");
  EXPECT_EQ(error_code_for_grpc(99), "internal");
}

}  // namespace
}  // namespace trellis::gateway
