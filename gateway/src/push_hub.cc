#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/push_hub.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "trellis/common/log.h"
#include "trellis/gateway/readiness.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {

namespace asio = boost::asio;

std::string_view to_string(PushTransport transport) {
  return transport == PushTransport::kSse ? "sse" : "websocket";
}

std::string_view to_string(PushEnd reason) {
  switch (reason) {
    case PushEnd::kClientClosed:
      return "client_closed";
    case PushEnd::kTokenExpired:
      return "token_expired";
    case PushEnd::kTokenRevoked:
      return "token_revoked";
    case PushEnd::kSlowConsumer:
      return "slow_consumer";
    case PushEnd::kShutdown:
      return "shutdown";
    case PushEnd::kAuthFailed:
      return "auth_failed";
    case PushEnd::kAuthUnavailable:
      return "auth_unavailable";
    case PushEnd::kProtocol:
      return "protocol";
    case PushEnd::kTooManyStreams:
      return "too_many_streams";
  }
  return "unknown";
}

// user id → that user's sessions in this process.
struct PushHub::Registry {
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::weak_ptr<PushSession>>> by_user;
  std::vector<std::weak_ptr<PushSession>> unbound;
  size_t unbound_live_estimate = 0;
};

// The one XREAD BLOCK loop of this process, on its own Redis connection.
struct PushHub::Reader : std::enable_shared_from_this<PushHub::Reader> {
  Reader(asio::io_context& io, std::shared_ptr<RedisClient> redis, PushHub& hub)
      : redis(std::move(redis)), hub(hub), retry_timer(io) {}

  std::shared_ptr<RedisClient> redis;
  PushHub& hub;
  asio::steady_timer retry_timer;
  std::atomic<bool> stopped{false};
  // Position in the stream; empty until resolved. Kept across reconnects so that entries added
  // during a Redis blip are still read (as long as MAXLEN has not trimmed them).
  std::string last_id;

  bool healthy = false;

  void report(bool ok, const std::string& detail) {
    if (ok == healthy || !hub.readiness_) {
      healthy = ok;
      return;
    }
    healthy = ok;
    hub.readiness_->set_startup_requirement("push", ok, detail);
  }

  void retry_later(std::string error = {}) {
    if (!error.empty()) report(false, "push stream reader: " + error);
    // Fast while starting (the connection is usually up within milliseconds), then calmer.
    retry_timer.expires_after(std::chrono::milliseconds(last_id.empty() ? 50 : 500));
    retry_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->next();
    });
  }

  void next() {
    if (stopped) return;
    if (last_id.empty()) return resolve_start();
    redis->command(
        {"XREAD", "COUNT", "500", "BLOCK", "1000", "STREAMS", hub.settings_.stream, last_id},
        [self = shared_from_this()](RedisResult result) { self->on_read(result); });
  }

  // "$" resolved once to a concrete id: the newest entry now (or 0-0 for a missing stream), so
  // that a reconnect before the first entry arrives cannot skip anything.
  void resolve_start() {
    redis->command(
        {"XREVRANGE", hub.settings_.stream, "+", "-", "COUNT", "1"},
        [self = shared_from_this()](RedisResult result) {
          if (self->stopped) return;
          if (!result.ok || result.reply.type != RedisReply::Type::kArray) {
            return self->retry_later(result.ok ? result.reply.str : result.error);
          }
          self->last_id = "0-0";
          if (!result.reply.elements.empty() && !result.reply.elements[0].elements.empty()) {
            self->last_id = result.reply.elements[0].elements[0].str;
          }
          self->report(true, "following " + self->hub.settings_.stream);
          log::info("live push follows its stream",
                    {{"stream", self->hub.settings_.stream}, {"from", self->last_id}});
          self->next();
        });
  }

  void on_read(const RedisResult& result) {
    if (stopped) return;
    if (!result.ok || result.reply.type == RedisReply::Type::kError) {
      return retry_later(result.ok ? result.reply.str : result.error);
    }
    report(true, "following " + hub.settings_.stream);
    // [[stream, [[id, [field, value, ...]], ...]]]; nil when nothing arrived in time.
    for (const auto& per_stream : result.reply.elements) {
      if (per_stream.elements.size() != 2) continue;
      for (const auto& entry : per_stream.elements[1].elements) {
        if (entry.elements.size() != 2) continue;
        last_id = entry.elements[0].str;
        const auto& fields = entry.elements[1].elements;
        const std::string* user = nullptr;
        const std::string* id = nullptr;
        const std::string* json = nullptr;
        for (size_t f = 0; f + 1 < fields.size(); f += 2) {
          if (fields[f].str == "user_id") user = &fields[f + 1].str;
          if (fields[f].str == "id") id = &fields[f + 1].str;
          if (fields[f].str == "notification") json = &fields[f + 1].str;
        }
        if (!user || !id || !json || user->empty()) continue;
        if (auto message = make_push_message(*id, *json)) hub.dispatch(*user, std::move(message));
      }
    }
    next();
  }
};

PushHub::PushHub(asio::io_context& io, const RedisOptions& reader_options, RedisClient& redis,
                 PushSettings settings, metrics::Registry& registry, Readiness* readiness)
    : settings_(std::move(settings)),
      redis_(redis),
      readiness_(settings_.enabled ? readiness : nullptr),
      registry_(std::make_unique<Registry>()),
      streams_(registry.gauge("gateway_push_streams", "Open live-push streams", {"transport"})),
      messages_(registry.counter("gateway_push_messages_total",
                                 "Notifications written to live-push streams", {"transport"})),
      disconnects_(registry.counter("gateway_push_disconnects_total",
                                    "Live-push streams ended, by reason", {"reason"})) {
  auto options = reader_options;
  options.command_timeout_ms = 5000;  // longer than XREAD's BLOCK
  reader_ = std::make_shared<Reader>(io, RedisClient::create(io, options), *this);
  streams_.with({"sse"}).set(0);
  streams_.with({"websocket"}).set(0);
  if (readiness_) readiness_->set_startup_requirement("push", false, "starting");
}

PushHub::~PushHub() {
  stop();
}

void PushHub::start() {
  if (!settings_.enabled) return;
  reader_->redis->start();
  reader_->retry_later();  // the first read waits for the connection through the retry path
}

void PushHub::stop() {
  if (reader_->stopped.exchange(true)) return;
  reader_->retry_timer.cancel();
  reader_->redis->stop();
}

void PushHub::drain() {
  draining_ = true;
  std::vector<std::shared_ptr<PushSession>> all;
  {
    std::lock_guard lock(registry_->mutex);
    for (auto& [user, sessions] : registry_->by_user) {
      for (auto& weak : sessions) {
        if (auto session = weak.lock()) all.push_back(std::move(session));
      }
    }
    for (auto& weak : registry_->unbound) {
      if (auto session = weak.lock()) all.push_back(std::move(session));
    }
  }
  for (auto& session : all) session->end(PushEnd::kShutdown);
}

PushAdmission PushHub::admit() {
  if (draining_) return PushAdmission::kDraining;
  int current = total_->load();
  do {
    if (current >= settings_.max_connections) return PushAdmission::kTooManyStreams;
  } while (!total_->compare_exchange_weak(current, current + 1));
  return PushAdmission::kAdmitted;
}

PushAdmission PushHub::bind(const std::string& user_id,
                            const std::shared_ptr<PushSession>& session) {
  std::lock_guard lock(registry_->mutex);
  if (draining_) return PushAdmission::kDraining;  // under the lock: drain() sees all or refuses
  auto& sessions = registry_->by_user[user_id];
  std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
  if (static_cast<int>(sessions.size()) >= settings_.max_streams_per_user) {
    if (sessions.empty()) registry_->by_user.erase(user_id);
    return PushAdmission::kTooManyForUser;
  }
  sessions.push_back(session);
  return PushAdmission::kAdmitted;
}

void PushHub::unbind(const std::string& user_id, const PushSession* session) {
  std::lock_guard lock(registry_->mutex);
  auto it = registry_->by_user.find(user_id);
  if (it == registry_->by_user.end()) return;
  std::erase_if(it->second, [session](const auto& weak) {
    auto strong = weak.lock();
    return !strong || strong.get() == session;
  });
  if (it->second.empty()) registry_->by_user.erase(it);
}

void PushHub::track_unbound(const std::shared_ptr<PushSession>& session) {
  std::lock_guard lock(registry_->mutex);
  auto& unbound = registry_->unbound;
  // Forget finished sessions now and then so the list stays as long as the live ones.
  if (unbound.size() >= 2 * registry_->unbound_live_estimate + 64) {
    std::erase_if(unbound, [](const auto& weak) { return weak.expired(); });
    registry_->unbound_live_estimate = unbound.size();
  }
  unbound.push_back(session);
}

void PushHub::dispatch(const std::string& user_id, PushMessagePtr message) {
  std::vector<std::shared_ptr<PushSession>> targets;
  {
    std::lock_guard lock(registry_->mutex);
    auto it = registry_->by_user.find(user_id);
    if (it == registry_->by_user.end()) return;
    for (auto& weak : it->second) {
      if (auto session = weak.lock()) targets.push_back(std::move(session));
    }
  }
  for (auto& session : targets) session->deliver(message);
}

}  // namespace trellis::gateway
