// Live push fan-out of one gateway process: one reader follows the push stream in Redis (XREAD
// BLOCK on its own connection, keeping its position across reconnects) and hands every entry to
// the local stream sessions of that user. Sessions register here (bounded in total and per user)
// and are ended here on shutdown. Thread-safe; no Beast, no Asio in this header.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "trellis/common/metrics.h"
#include "trellis/gateway/push_protocol.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct RedisOptions;
class RedisClient;
class Readiness;

enum class PushTransport { kSse, kWebSocket };
std::string_view to_string(PushTransport transport);

// Why a stream ended; the label of gateway_push_disconnects_total{reason}.
enum class PushEnd {
  kClientClosed,     // the client went away (or a write failed)
  kTokenExpired,     // exp reached
  kTokenRevoked,     // logout / session revoked
  kSlowConsumer,     // outgoing queue over its cap
  kShutdown,         // gateway draining
  kAuthFailed,       // WebSocket first-message auth: missing, invalid, timeout
  kAuthUnavailable,  // Redis could not answer the revocation check (fail closed)
  kProtocol,         // binary or oversized message, heartbeat timeout
  kTooManyStreams,   // a cap reached after the upgrade (first-message auth)
};
std::string_view to_string(PushEnd reason);

// What the hub needs from a connection. Both calls come from any thread and only enqueue.
class PushSession {
 public:
  virtual ~PushSession() = default;
  virtual void deliver(PushMessagePtr message) = 0;
  virtual void end(PushEnd reason) = 0;
};

enum class PushAdmission { kAdmitted, kTooManyStreams, kTooManyForUser, kDraining };

class PushHub {
 public:
  // `redis` is the shared client (replay reads, revocation checks); the reader gets its own
  // connection built from `reader_options`.
  // With `readiness`, /readyz waits until the reader knows its position in the stream (a
  // startup requirement: a later Redis loss only degrades it).
  PushHub(boost::asio::io_context& io, const RedisOptions& reader_options, RedisClient& redis,
          PushSettings settings, metrics::Registry& registry, Readiness* readiness = nullptr);
  ~PushHub();
  PushHub(const PushHub&) = delete;
  PushHub& operator=(const PushHub&) = delete;

  void start();  // connects the reader; a no-op when push is disabled
  void stop();
  // Shutdown: refuses new streams and ends every open one (WebSocket 1001, SSE end of body).
  void drain();

  // A new connection (authenticated or not yet): checks max_connections. The session created for
  // it decrements admission_counter() when destroyed (the counter outlives the hub if need be).
  PushAdmission admit();
  std::shared_ptr<std::atomic<int>> admission_counter() const { return total_; }
  // Binds an admitted session to its user (checks max_streams_per_user); from then on it gets
  // that user's messages. unbind() is idempotent.
  PushAdmission bind(const std::string& user_id, const std::shared_ptr<PushSession>& session);
  void unbind(const std::string& user_id, const PushSession* session);
  // A session not bound to a user yet (WebSocket waiting for its auth message): ended by drain()
  // too. Forgotten by itself once the session is gone.
  void track_unbound(const std::shared_ptr<PushSession>& session);

  // Hands one entry of the push stream to the user's local sessions (public for tests).
  void dispatch(const std::string& user_id, PushMessagePtr message);

  const PushSettings& settings() const { return settings_; }
  RedisClient& redis() { return redis_; }
  bool draining() const { return draining_; }

  // Metrics.
  void stream_opened(PushTransport transport) {
    streams_.with({std::string(to_string(transport))}).add(1);
  }
  void stream_closed(PushTransport transport) {
    streams_.with({std::string(to_string(transport))}).add(-1);
  }
  void message_sent(PushTransport transport) {
    messages_.with({std::string(to_string(transport))}).inc();
  }
  void disconnected(PushEnd reason) { disconnects_.with({std::string(to_string(reason))}).inc(); }
  int open_streams() const { return total_->load(); }

 private:
  struct Reader;
  struct Registry;
  PushSettings settings_;
  RedisClient& redis_;
  Readiness* readiness_;
  std::shared_ptr<Reader> reader_;
  std::unique_ptr<Registry> registry_;
  std::shared_ptr<std::atomic<int>> total_ = std::make_shared<std::atomic<int>>(0);
  std::atomic<bool> draining_{false};
  metrics::Family<metrics::Gauge>& streams_;
  metrics::Family<metrics::Counter>& messages_;
  metrics::Family<metrics::Counter>& disconnects_;
};

}  // namespace trellis::gateway
