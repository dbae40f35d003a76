// A blocking Redis connection (hiredis 0.14) for one background thread: pipelined commands with a
// per-call timeout, replies copied into plain values. Transport failures throw RedisUnavailable
// and drop the connection; the next call reconnects.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/notifications/config.h"

struct redisContext;

namespace trellis::notifications {

struct RedisValue {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisValue> elements;

  bool is_error() const { return type == Type::kError; }
};

class RedisUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RedisConnection {
 public:
  explicit RedisConnection(RedisConfig config) : config_(std::move(config)) {}
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends every command, then reads every reply (one round trip). `timeout_ms` bounds the wait for
  // the replies (a blocking XREADGROUP needs more than config.timeout_ms); 0 = config.timeout_ms.
  // Error replies are values (is_error()); transport failures throw RedisUnavailable.
  std::vector<RedisValue> pipeline(const std::vector<std::vector<std::string>>& commands,
                                   int timeout_ms = 0);
  RedisValue command(const std::vector<std::string>& args, int timeout_ms = 0);

  void disconnect();

 private:
  void connect();

  RedisConfig config_;
  redisContext* context_ = nullptr;
};

}  // namespace trellis::notifications
