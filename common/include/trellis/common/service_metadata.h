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

}  // namespace trellis::service
