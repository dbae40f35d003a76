// Live push of notifications (GET /v1/notifications/stream): settings, wire formats and the
// per-connection outgoing queue. No Asio, no Beast: unit-tested alone, included by the filter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/gateway/http_types.h"

namespace trellis::gateway {

inline constexpr std::string_view kPushPath = "/v1/notifications/stream";
inline constexpr std::string_view kPushSubprotocol = "trellis.notifications.v1";

// The "push" block of the gateway config; defaults are the documented ones.
struct PushSettings {
  bool enabled = true;
  std::string stream = "trellis:notifications:push";  // fan-out stream all replicas follow
  std::string user_stream_prefix = "trellis:notifications:user:";  // + user id: replay source
  int heartbeat_ms = 15000;         // SSE comment / WebSocket ping interval
  int auth_timeout_ms = 5000;       // WebSocket first-message auth deadline
  int revocation_check_ms = 10000;  // re-check of the token's revocation keys
  int max_replay = 1000;            // entries replayed after Last-Event-ID / last_event_id
  int max_queued_messages = 256;    // per connection; more ends it (slow consumer)
  size_t max_queued_bytes = 1 << 20;
  int max_connections = 10000;      // streams per gateway process (503 too_many_streams)
  int max_streams_per_user = 16;    // per process (429 too_many_streams)
  size_t max_message_bytes = 4096;  // largest WebSocket message accepted from a client
};

// A Redis stream id "<ms>-<seq>".
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
};
std::optional<StreamId> parse_stream_id(std::string_view text);

// One notification as delivered: its event id (the per-user stream id) and opaque JSON. Or a
// resync signal (resync_code set, no id): the client may have missed notifications (its
// Last-Event-ID is older than the retained history, or the replay failed) and should reload
// GET /v1/notifications; live messages follow it as usual.
struct PushMessage {
  std::string id;
  std::string json;
  StreamId parsed;
  std::string_view resync_code;  // "history_truncated" | "replay_unavailable"; empty otherwise
  size_t cost() const { return id.size() + json.size() + 64; }  // bytes counted against the cap
};
using PushMessagePtr = std::shared_ptr<const PushMessage>;
// Null when the id is not a stream id or the JSON is empty.
PushMessagePtr make_push_message(std::string id, std::string json);
PushMessagePtr make_resync_message(std::string_view code);
inline constexpr std::string_view kResyncHistoryTruncated = "history_truncated";
inline constexpr std::string_view kResyncReplayUnavailable = "replay_unavailable";

// Wire formats.
std::string sse_event(const PushMessage& message);  // id:, event: notification, data:
                                                    // (a resync: event: resync, data: {"code"})
std::string sse_end_event(std::string_view code);   // event: end, data: {"code":...}
inline constexpr std::string_view kSseHeartbeat = ": heartbeat\n\n";
inline constexpr std::string_view kSseRetry = "retry: 2000\n\n";
std::string websocket_notification(const PushMessage& message);  // or {"type":"resync",...}

// Request inspection.
bool is_websocket_upgrade(const HttpRequest& request);
bool accepts_event_stream(std::string_view accept);
// Value of `name` in a query string (first occurrence, percent-decoded); nullopt when absent.
std::optional<std::string> query_parameter(std::string_view query, std::string_view name);

// Sec-WebSocket-Protocol: "trellis.notifications.v1, bearer.<token>".
struct ProtocolOffer {
  bool offers_v1 = false;  // the server then selects it in the 101 response
  std::string token;       // from a "bearer.<token>" item; empty when none
};
ProtocolOffer parse_websocket_protocols(std::string_view header);
// {"type":"auth","access_token":"<token>"} → token; empty when the text is anything else.
std::string token_from_auth_message(std::string_view text);

// The bounded outgoing queue of one connection. push() refuses (returns false) when the message
// would exceed either cap; the caller then ends the connection.
class OutboundQueue {
 public:
  OutboundQueue(size_t max_messages, size_t max_bytes)
      : max_messages_(max_messages), max_bytes_(max_bytes) {}
  bool push(PushMessagePtr message);
  // Puts replayed messages before everything queued (not counted against the caps).
  void prepend(std::vector<PushMessagePtr> messages);
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  size_t bytes() const { return bytes_; }
  PushMessagePtr pop();
  void clear();

 private:
  size_t max_messages_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  size_t head_ = 0;
  std::vector<PushMessagePtr> items_;  // no std::deque: it allocates ~600 bytes even when empty
};

}  // namespace trellis::gateway
