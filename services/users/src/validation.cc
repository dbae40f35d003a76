#include "trellis/users/validation.h"

namespace trellis::users {
namespace {

// Counts UTF-8 code points; protobuf has already rejected invalid UTF-8 in string fields.
size_t utf8_length(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++count;
  }
  return count;
}

bool has_control_or_space(const std::string& text) {
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7F) return true;
  }
  return false;
}

bool has_control(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7F) return true;
  }
  return false;
}

}  // namespace

std::string check_email(const std::string& email) {
  if (email.empty()) return "email is required";
  if (email.size() > kMaxEmailBytes) return "email must be at most 254 bytes";
  if (has_control_or_space(email)) return "email must not contain spaces or control characters";
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || email.find('@', at + 1) != std::string::npos) {
    return "email must look like name@example.com";
  }
  auto domain = email.substr(at + 1);
  auto dot = domain.find('.');
  if (domain.empty() || dot == std::string::npos || dot == 0 || domain.back() == '.') {
    return "email must look like name@example.com";
  }
  return {};
}

std::string check_password(const std::string& password) {
  if (utf8_length(password) < kMinPasswordChars) return "password must be at least 8 characters";
  if (password.size() > kMaxPasswordBytes) return "password must be at most 1024 bytes";
  return {};
}

std::string check_display_name(const std::string& display_name) {
  if (display_name.empty()) return "display_name is required";
  if (utf8_length(display_name) > kMaxDisplayNameChars) {
    return "display_name must be at most 100 characters";
  }
  if (has_control(display_name)) return "display_name must not contain control characters";
  if (display_name.front() == ' ' || display_name.back() == ' ') {
    return "display_name must not start or end with a space";
  }
  return {};
}

}  // namespace trellis::users
