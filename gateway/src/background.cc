#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/background.h"

#include <google/protobuf/descriptor.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

#include "trellis/common/log.h"
#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/readiness.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/transcoder.h"
#include "trellis/gateway/upstreams.h"

namespace trellis::gateway {

namespace asio = boost::asio;

struct BackgroundTasks::State : std::enable_shared_from_this<BackgroundTasks::State> {
  State(asio::io_context& io, const GatewayConfig& config, Upstreams& upstreams, RedisClient& redis,
        KeyCache& keys, Readiness& readiness)
      : config(config),
        upstreams(upstreams),
        redis(redis),
        keys(keys),
        readiness(readiness),
        jwks_timer(io),
        probe_timer(io) {}

  const GatewayConfig& config;
  Upstreams& upstreams;
  RedisClient& redis;
  KeyCache& keys;
  Readiness& readiness;
  asio::steady_timer jwks_timer;
  asio::steady_timer probe_timer;
  std::atomic<bool> stopped{false};
  std::atomic<bool> keys_loaded{false};
  const google::protobuf::Descriptor* jwks_type = nullptr;

  void fetch_jwks() {
    if (stopped) return;
    UpstreamCall call;
    call.method = config.jwks_method;
    call.timeout = std::chrono::milliseconds(2000);
    upstreams.call(config.jwks_upstream, std::move(call),
                   [self = shared_from_this()](UpstreamResult result) {
                     asio::post(self->jwks_timer.get_executor(),
                                [self, result = std::move(result)] { self->on_jwks(result); });
                   });
  }

  void on_jwks(const UpstreamResult& result) {
    bool ok = false;
    std::string detail;
    if (result.code != 0) {
      detail = "fetch failed: " + result.message;
    } else {
      std::string json;
      if (!jwks_type || !payload_to_json(jwks_type, result.payload, json)) {
        detail = "unreadable JWKS response";
      } else {
        try {
          auto key_set = jwt::KeySet::from_jwks_json(json);
          if (key_set.size() == 0) {
            detail = "JWKS has no Ed25519 key";
          } else {
            detail = std::to_string(key_set.size()) + " key(s)";
            keys.update(std::move(key_set));
            ok = true;
          }
        } catch (const std::exception& e) {
          detail = std::string("bad JWKS: ") + e.what();
        }
      }
    }
    // A failed refresh keeps the keys we had: tokens keep verifying while users restarts.
    if (ok) {
      if (!keys_loaded.exchange(true)) log::info("jwks loaded", {{"detail", detail}});
      readiness.set("jwks", true, detail);
    } else {
      log::warn("jwks refresh failed", {{"detail", detail}});
      if (!keys_loaded) readiness.set("jwks", false, detail);
    }
    // Until the first success, retry every second; then at the configured interval.
    auto delay =
        keys_loaded ? std::chrono::seconds(config.jwks_refresh_s) : std::chrono::seconds(1);
    jwks_timer.expires_after(delay);
    jwks_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->fetch_jwks();
    });
  }

  void probe() {
    if (stopped) return;
    for (const auto& name : upstreams.names()) {
      UpstreamCall call;
      call.method = "/grpc.health.v1.Health/Check";  // empty request: the whole server
      call.timeout = std::chrono::milliseconds(1000);
      upstreams.call(name, std::move(call), [self = shared_from_this(), name](UpstreamResult r) {
        // HealthCheckResponse{status: SERVING} is the two bytes 08 01.
        bool serving = r.code == 0 && r.payload == std::string("\x08\x01", 2);
        self->readiness.set("upstream:" + name, serving,
                            serving ? "serving" : (r.code == 0 ? "not serving" : r.message));
      });
    }
    redis.command({"PING"}, [self = shared_from_this()](RedisResult r) {
      bool ok = r.ok && r.reply.type == RedisReply::Type::kStatus;
      self->readiness.set_startup_requirement("redis", ok, ok ? "ok" : r.error);
    });
    probe_timer.expires_after(std::chrono::seconds(1));
    probe_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->probe();
    });
  }
};

BackgroundTasks::BackgroundTasks(asio::io_context& io, const GatewayConfig& config,
                                 Upstreams& upstreams, RedisClient& redis, KeyCache& keys,
                                 Readiness& readiness)
    : state_(std::make_shared<State>(io, config, upstreams, redis, keys, readiness)) {
  auto slash = config.jwks_method.rfind('/');
  auto full_name = config.jwks_method.substr(1);
  if (slash != std::string::npos && slash > 0) full_name[slash - 1] = '.';
  const auto* method =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full_name);
  if (method) state_->jwks_type = method->output_type();
  readiness.set("jwks", false, "not fetched yet");
  readiness.set("redis", false, "not probed yet");
  for (const auto& name : upstreams.names())
    readiness.set("upstream:" + name, false, "not probed yet");
}

BackgroundTasks::~BackgroundTasks() {
  stop();
}

void BackgroundTasks::start() {
  asio::post(state_->jwks_timer.get_executor(), [state = state_] {
    state->fetch_jwks();
    state->probe();
  });
}

void BackgroundTasks::stop() {
  if (state_->stopped.exchange(true)) return;
  asio::post(state_->jwks_timer.get_executor(), [state = state_] {
    state->jwks_timer.cancel();
    state->probe_timer.cancel();
  });
}

}  // namespace trellis::gateway
