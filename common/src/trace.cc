#include "trellis/common/trace.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>

namespace trellis::trace {
namespace {

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

}  // namespace

std::string random_hex(size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::string TraceContext::traceparent() const {
  return "00-" + trace_id + "-" + span_id + (sampled ? "-01" : "-00");
}

std::optional<TraceContext> parse_traceparent(std::string_view header) {
  // 00-<32 hex>-<16 hex>-<2 hex>
  if (header.size() != 55 || header[2] != '-' || header[35] != '-' || header[52] != '-') {
    return std::nullopt;
  }
  auto version = header.substr(0, 2);
  auto trace_id = header.substr(3, 32);
  auto parent_id = header.substr(36, 16);
  auto flags = header.substr(53, 2);
  if (version != "00" || !is_lower_hex(trace_id) || !is_lower_hex(parent_id) ||
      !is_lower_hex(flags) || all_zero(trace_id) || all_zero(parent_id)) {
    return std::nullopt;
  }
  TraceContext context;
  context.trace_id = std::string(trace_id);
  context.parent_id = std::string(parent_id);
  context.sampled = (std::stoi(std::string(flags), nullptr, 16) & 1) != 0;
  return context;
}

TraceContext continue_or_start(std::string_view incoming_traceparent) {
  auto context = parse_traceparent(incoming_traceparent);
  if (!context) {
    context = TraceContext{};
    context->trace_id = random_hex(16);
    context->sampled = true;
  }
  context->span_id = random_hex(8);
  return *context;
}

bool is_well_formed_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

std::string new_request_id() {
  return random_hex(16);
}

}  // namespace trellis::trace
