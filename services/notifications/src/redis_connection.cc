#include "trellis/notifications/redis_connection.h"

#include <hiredis/hiredis.h>

namespace trellis::notifications {
namespace {

timeval to_timeval(int ms) {
  return timeval{ms / 1000, (ms % 1000) * 1000};
}

RedisValue copy(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      value.type = RedisValue::Type::kString;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      value.type = RedisValue::Type::kStatus;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::kError;
      value.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      value.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      value.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i) value.elements.push_back(copy(*reply.element[i]));
      break;
    default:
      break;  // nil
  }
  return value;
}

}  // namespace

RedisConnection::~RedisConnection() {
  disconnect();
}

void RedisConnection::disconnect() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

void RedisConnection::connect() {
  if (context_) return;
  context_ =
      redisConnectWithTimeout(config_.host.c_str(), config_.port, to_timeval(config_.timeout_ms));
  if (!context_ || context_->err) {
    std::string error = context_ ? context_->errstr : "cannot allocate a redis context";
    disconnect();
    throw RedisUnavailable("redis: " + error);
  }
}

std::vector<RedisValue> RedisConnection::pipeline(
    const std::vector<std::vector<std::string>>& commands, int timeout_ms) {
  connect();
  redisSetTimeout(context_, to_timeval(timeout_ms > 0 ? timeout_ms : config_.timeout_ms));
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      disconnect();
      throw RedisUnavailable("redis: cannot queue a command");
    }
  }
  std::vector<RedisValue> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      std::string error = context_->err ? context_->errstr : "no reply";
      // Replies may still be pending on this connection: start over on a new one.
      disconnect();
      throw RedisUnavailable("redis: " + error);
    }
    auto* reply = static_cast<redisReply*>(raw);
    replies.push_back(copy(*reply));
    freeReplyObject(reply);
  }
  return replies;
}

RedisValue RedisConnection::command(const std::vector<std::string>& args, int timeout_ms) {
  return std::move(pipeline({args}, timeout_ms).front());
}

}  // namespace trellis::notifications
