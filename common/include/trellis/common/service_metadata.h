// gRPC metadata names shared by the gateway (which sets them) and the services (which read them).
#pragma once

#include <string_view>

namespace trellis::service {

// Metadata keys set by the gateway after it verified the access token. Services trust these
// only because they are reachable from the gateway alone (network policy), never from clients.
inline constexpr std::string_view kUserIdKey = "x-trellis-user-id";
inline constexpr std::string_view kRolesKey = "x-trellis-roles";  // comma-separated
inline constexpr std::string_view kTokenIdKey = "x-trellis-token-id";
inline constexpr std::string_view kSessionIdKey = "x-trellis-session-id";
inline constexpr std::string_view kTokenExpiresKey = "x-trellis-token-expires";  // unix seconds

// The client's Idempotency-Key header (1..255 printable ASCII characters, checked by the gateway);
// services that create resources deduplicate on it per user.
inline constexpr std::string_view kIdempotencyKey = "idempotency-key";

// Trailing metadata a service may set on an error to ask the gateway for a more precise HTTP
// answer than the canonical mapping gives (e.g. 422 for a reused idempotency key). The gateway
// honours only 4xx statuses and [a-z_] codes.
inline constexpr std::string_view kHttpStatusTrailer = "x-trellis-http-status";
inline constexpr std::string_view kErrorCodeTrailer = "x-trellis-error-code";

}  // namespace trellis::service
