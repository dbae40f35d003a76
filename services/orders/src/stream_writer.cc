#include "trellis/orders/stream_writer.h"

#include <hiredis/hiredis.h>

#include "trellis/common/tracing.h"

namespace trellis::orders {

StreamWriter::StreamWriter(RedisConfig config, std::string stream, int64_t max_length)
    : config_(std::move(config)),
      stream_(std::move(stream)),
      max_length_(std::to_string(max_length)) {}

StreamWriter::~StreamWriter() {
  disconnect();
}

void StreamWriter::disconnect() {
  if (context_) redisFree(context_);
  context_ = nullptr;
}

bool StreamWriter::connect(std::string& error) {
  if (context_) return true;
  timeval timeout{config_.timeout_ms / 1000, (config_.timeout_ms % 1000) * 1000};
  context_ = redisConnectWithTimeout(config_.host.c_str(), config_.port, timeout);
  if (!context_ || context_->err) {
    error = context_ ? context_->errstr : "cannot allocate a redis context";
    disconnect();
    return false;
  }
  redisSetTimeout(context_, timeout);
  return true;
}

size_t StreamWriter::append(const std::vector<OutboxEvent>& events, std::string& error) {
  if (events.empty()) return 0;
  tracing::ChildSpan span("redis XADD", tracing::SpanKind::kClient, {{"db.system", "redis"}});
  if (!connect(error)) return 0;
  for (const auto& event : events) {
    auto event_id = std::to_string(event.id);
    const std::string* values[] = {&event_id, &event.type, &event.user_id, &event.order_id,
                                   &event.payload};
    const char* names[] = {"event_id", "type", "user_id", "order_id", "payload"};
    std::vector<const char*> argv = {"XADD", stream_.c_str(),     "MAXLEN",
                                     "~",    max_length_.c_str(), "*"};
    std::vector<size_t> lengths = {4, stream_.size(), 6, 1, max_length_.size(), 1};
    for (size_t i = 0; i < 5; ++i) {
      argv.push_back(names[i]);
      lengths.push_back(std::char_traits<char>::length(names[i]));
      argv.push_back(values[i]->data());
      lengths.push_back(values[i]->size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      error = "cannot queue XADD";
      disconnect();
      span.set_error();
      return 0;
    }
  }
  size_t acknowledged = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
      error = context_->err ? context_->errstr : "no reply";
      break;
    }
    auto* reply = static_cast<redisReply*>(raw);
    bool ok = reply->type == REDIS_REPLY_STRING;  // the new entry's id
    if (!ok) error = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected XADD reply";
    freeReplyObject(reply);
    if (!ok) break;
    ++acknowledged;
  }
  if (acknowledged < events.size()) {
    // Replies may still be pending on this connection: start over on a new one.
    disconnect();
    span.set_error();
  }
  return acknowledged;
}

}  // namespace trellis::orders
