#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/stream_invalidator.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "trellis/common/log.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {

namespace asio = boost::asio;

struct StreamInvalidator::State : std::enable_shared_from_this<StreamInvalidator::State> {
  State(asio::io_context& io, std::shared_ptr<RedisClient> redis,
        std::vector<CacheInvalidationStream> streams)
      : redis(std::move(redis)), streams(std::move(streams)), retry_timer(io) {
    // Only what happens from now on matters: older changes are bounded by the entries' TTL.
    for (size_t i = 0; i < this->streams.size(); ++i) last_ids.push_back("$");
  }

  std::shared_ptr<RedisClient> redis;
  std::vector<CacheInvalidationStream> streams;
  std::vector<std::string> last_ids;
  asio::steady_timer retry_timer;
  std::atomic<bool> stopped{false};

  void read() {
    if (stopped) return;
    std::vector<std::string> command = {"XREAD", "COUNT", "200", "BLOCK", "1000", "STREAMS"};
    for (const auto& stream : streams) command.push_back(stream.stream);
    for (const auto& id : last_ids) command.push_back(id);
    redis->command(std::move(command),
                   [self = shared_from_this()](RedisResult result) { self->on_read(result); });
  }

  void on_read(const RedisResult& result) {
    if (stopped) return;
    if (!result.ok || result.reply.type == RedisReply::Type::kError) {
      retry_timer.expires_after(std::chrono::seconds(1));
      retry_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->read();
      });
      return;
    }
    // [[stream, [[id, [field, value, ...]], ...]], ...]; nil when nothing arrived in time.
    for (const auto& per_stream : result.reply.elements) {
      if (per_stream.elements.size() != 2) continue;
      size_t index = 0;
      while (index < streams.size() && streams[index].stream != per_stream.elements[0].str) ++index;
      if (index == streams.size()) continue;
      for (const auto& entry : per_stream.elements[1].elements) {
        if (entry.elements.size() != 2) continue;
        last_ids[index] = entry.elements[0].str;
        const auto& fields = entry.elements[1].elements;
        for (size_t f = 0; f + 1 < fields.size(); f += 2) {
          if (fields[f].str != streams[index].user_field || fields[f + 1].str.empty()) continue;
          for (const auto& route : streams[index].routes) {
            redis->command({"INCR", cache_generation_key(route, fields[f + 1].str)},
                           [](RedisResult) {});
          }
        }
      }
    }
    read();
  }
};

StreamInvalidator::StreamInvalidator(asio::io_context& io, const RedisOptions& redis,
                                     std::vector<CacheInvalidationStream> streams) {
  auto options = redis;
  options.command_timeout_ms = 5000;  // longer than XREAD's BLOCK
  state_ = std::make_shared<State>(io, RedisClient::create(io, options), std::move(streams));
}

StreamInvalidator::~StreamInvalidator() {
  stop();
}

void StreamInvalidator::start() {
  if (state_->streams.empty()) return;
  state_->redis->start();
  // The first read waits for the connection through the retry path.
  state_->on_read(RedisResult{});
  log::info("cache follows event streams", {{"streams", state_->streams.size()}});
}

void StreamInvalidator::stop() {
  if (state_->stopped.exchange(true)) return;
  state_->retry_timer.cancel();
  state_->redis->stop();
}

}  // namespace trellis::gateway
