#include "trellis/common/trace.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "trellis/common/digest.h"

namespace trellis::trace {
namespace {

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

// xoshiro256** (Blackman and Vigna), one per thread, seeded from the OS generator.
class IdGenerator {
 public:
  IdGenerator() {
    do {
      if (RAND_bytes(reinterpret_cast<unsigned char*>(state_.data()), sizeof(state_)) != 1) {
        throw std::runtime_error("RAND_bytes failed");
      }
    } while (state_[0] == 0 && state_[1] == 0 && state_[2] == 0 && state_[3] == 0);
  }

  uint64_t next() {
    auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
    uint64_t result = rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  std::array<uint64_t, 4> state_{};
};

}  // namespace

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return trellis::to_hex(raw);
}

std::string random_uuid() {
  auto hex = random_hex(16);
  hex[12] = '4';                                                    // version 4
  hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];  // RFC 4122 variant
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string random_id_hex(size_t bytes) {
  thread_local IdGenerator generator;
  if (bytes == 0) return "";
  unsigned char on_stack[64];  // ids are 8 or 16 bytes: no allocation for them
  std::vector<unsigned char> on_heap(bytes > sizeof(on_stack) ? bytes : 0);
  unsigned char* raw = on_heap.empty() ? on_stack : on_heap.data();
  std::string out;
  do {
    for (size_t i = 0; i < bytes; i += 8) {
      auto word = generator.next();
      std::memcpy(raw + i, &word, std::min<size_t>(8, bytes - i));
    }
    out = trellis::to_hex(std::string_view(reinterpret_cast<const char*>(raw), bytes));
  } while (all_zero(out));  // W3C trace context: an all-zero id is invalid
  return out;
}

std::string TraceContext::traceparent() const {
  std::string out;
  out.reserve(3 + trace_id.size() + 1 + span_id.size() + 3);  // one allocation: once per request
  out.append("00-").append(trace_id).append("-").append(span_id).append(sampled ? "-01" : "-00");
  return out;
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
    context->trace_id = random_id_hex(16);
    context->sampled = true;
  }
  context->span_id = random_id_hex(8);
  return std::move(*context);
}

bool is_well_formed_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

std::string new_request_id() {
  return random_id_hex(16);
}

}  // namespace trellis::trace
