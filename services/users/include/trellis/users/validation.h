// Input rules of the users API. Each returns an empty string when the value is acceptable, or a
// message naming the field, which the client receives with INVALID_ARGUMENT.
#pragma once

#include <string>

namespace trellis::users {

inline constexpr size_t kMaxEmailBytes = 254;  // RFC 5321 path limit
inline constexpr size_t kMinPasswordChars = 8;
inline constexpr size_t kMaxPasswordBytes = 1024;  // bounds hashing work per request
inline constexpr size_t kMaxDisplayNameChars = 100;

std::string check_email(const std::string& email);
std::string check_password(const std::string& password);
std::string check_display_name(const std::string& display_name);

}  // namespace trellis::users
