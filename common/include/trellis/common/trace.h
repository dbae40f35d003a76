// Request identity that crosses process boundaries: the request id and the W3C trace context
// (https://www.w3.org/TR/trace-context/). The gateway continues or starts both and passes them to
// services as gRPC metadata under the same names as the HTTP headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace trellis::trace {

inline constexpr std::string_view kRequestIdHeader = "x-request-id";
inline constexpr std::string_view kTraceparentHeader = "traceparent";
inline constexpr std::string_view kTracestateHeader = "tracestate";

struct TraceContext {
  std::string trace_id;   // 32 lowercase hex, not all zero
  std::string span_id;    // 16 lowercase hex, this hop's span
  std::string parent_id;  // span id received from the caller, empty when the trace starts here
  bool sampled = false;

  // "00-<trace_id>-<span_id>-<flags>", what a callee receives.
  std::string traceparent() const;
};

// Parses a version-00 traceparent; nullopt when malformed (then a new trace starts).
std::optional<TraceContext> parse_traceparent(std::string_view header);

// Continues the caller's trace with a new span, or starts a new sampled trace.
TraceContext continue_or_start(std::string_view incoming_traceparent);

// A client-supplied request id is kept when it is 1..128 characters of [A-Za-z0-9._:-].
bool is_well_formed_request_id(std::string_view id);
// 32 random lowercase hex characters.
std::string new_request_id();
// `bytes` bytes from the OS's cryptographic generator, as lowercase hex: for secrets and token
// ids.
std::string random_hex(size_t bytes);
// `bytes` random bytes as lowercase hex, never all zero (empty for 0), from a per-thread generator
// seeded by the OS: for request, trace and span ids, which must be unique but are not secrets.
// Much cheaper than random_hex (no call into OpenSSL, whose fork check costs a getpid syscall).
std::string random_id_hex(size_t bytes);
// A random version-4 UUID in canonical text form, from random_hex.
std::string random_uuid();

}  // namespace trellis::trace
