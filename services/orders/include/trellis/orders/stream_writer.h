// Appends events to one Redis Stream (XADD ... MAXLEN ~ n) over a blocking hiredis connection,
// pipelined: one round trip per batch. Used by the outbox relay's thread only (not thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/orders/config.h"

struct redisContext;

namespace trellis::orders {

struct OutboxEvent {
  int64_t id = 0;  // outbox id: the event_id consumers deduplicate on
  std::string order_id;
  std::string user_id;
  std::string type;
  std::string payload;  // JSON
};

class StreamWriter {
 public:
  StreamWriter(RedisConfig config, std::string stream, int64_t max_length);
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // XADDs the events in order with fields event_id, type, user_id, order_id, payload. Returns how
  // many Redis acknowledged: always a prefix of `events`. Fewer than all means a failure, described
  // in `error`; the connection is then dropped and the next call reconnects.
  size_t append(const std::vector<OutboxEvent>& events, std::string& error);

 private:
  bool connect(std::string& error);
  void disconnect();

  RedisConfig config_;
  std::string stream_;
  std::string max_length_;
  redisContext* context_ = nullptr;
};

}  // namespace trellis::orders
