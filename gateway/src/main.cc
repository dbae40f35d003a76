// trellis-gateway --config FILE: the public HTTP entry point of Trellis.
#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "trellis/common/config.h"
#include "trellis/common/log.h"
#include "trellis/common/metrics.h"
#include "trellis/gateway/background.h"
#include "trellis/gateway/filter_chain.h"
#include "trellis/gateway/gateway_config.h"
#include "trellis/gateway/http_server.h"
#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/openapi.h"
#include "trellis/gateway/push_hub.h"
#include "trellis/gateway/push_protocol.h"
#include "trellis/gateway/readiness.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/response_cache.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/stream_invalidator.h"
#include "trellis/gateway/token_verifier.h"
#include "trellis/gateway/tracked_keys.h"
#include "trellis/gateway/upstreams.h"

namespace {

using namespace trellis;
using namespace trellis::gateway;
namespace asio = boost::asio;

// An io_context that can destroy the handlers still queued when run() returned while the objects
// they refer to (filters, sessions, servers) still exist; its destructor would do so only after
// them. Asio supports I/O objects that are destroyed after this shutdown.
class IoContext : public asio::io_context {
 public:
  using asio::io_context::io_context;
  void destroy_pending_handlers() { shutdown(); }
};

// Waits for in-flight requests to finish and live-push streams to close (bounded), then stops the
// io_context.
void drain(asio::io_context& io, HttpServer& server, PushHub& push,
           std::shared_ptr<asio::steady_timer> timer,
           std::chrono::steady_clock::time_point deadline) {
  if ((server.in_flight() == 0 && push.open_streams() == 0) ||
      std::chrono::steady_clock::now() >= deadline) {
    log::info("stopped", {{"abandoned_requests", server.in_flight()},
                          {"abandoned_streams", push.open_streams()}});
    io.stop();
    return;
  }
  timer->expires_after(std::chrono::milliseconds(20));
  timer->async_wait([&io, &server, &push, timer, deadline](boost::system::error_code) {
    drain(io, server, push, timer, deadline);
  });
}

int run(const std::string& config_path) {
  auto config = load_gateway_config(config_path);
  log::init("gateway", config.log_level);
  log::info("effective configuration", {{"config", config.effective_json}});
  auto routes = RouteTable::from_linked_protos();
  for (const auto& name : routes.upstreams()) {
    if (!config.upstreams.count(name)) {
      throw config::ConfigError("gateway.upstreams: routes need an upstream named " + name);
    }
  }
  // Listed as a route so that rate limits, metrics and the access log apply to it as to others.
  if (config.push.enabled) routes.add_local("GET", std::string(kPushPath));

  // One event loop per I/O thread, as nginx has one per worker: connections are spread over them
  // and loops that share nothing do not contend for one epoll set and one scheduler lock. The
  // first loop also runs everything that is not a connection (Redis clients, push hub, timers).
  IoContext io(1);
  std::vector<std::unique_ptr<IoContext>> extra_loops;
  for (int i = 1; i < config.io_threads; ++i) extra_loops.push_back(std::make_unique<IoContext>(1));
  std::vector<asio::io_context*> connection_loops = {&io};
  for (auto& loop : extra_loops) connection_loops.push_back(loop.get());
  metrics::Registry registry;
  tracing::Tracer tracer({config.otlp_endpoint, "gateway"});
  Upstreams upstreams(config.upstreams, registry);
  RedisOptions redis_options;
  redis_options.host = config.redis_host;
  redis_options.port = config.redis_port;
  redis_options.command_timeout_ms = config.redis_command_timeout_ms;
  auto redis = RedisClient::create(io, redis_options);
  redis->attach_metrics(registry, "shared");
  redis->start();
  TrackedKeys tracked(io, redis_options, redis,
                      {static_cast<size_t>(config.redis_tracked_keys),
                       config.redis_tracking_heartbeat_ms,
                       {std::string(kRevokedKeyPrefix), std::string(kCacheGenerationPrefix)}},
                      registry);
  tracked.start();
  StreamInvalidator invalidator(io, redis_options, config.cache.invalidation_streams);
  invalidator.start();
  KeyCache keys;
  Readiness readiness;
  BackgroundTasks background(io, config, upstreams, *redis, keys, readiness);
  background.start();

  // Live push: its fan-out reader has its own Redis connection (XREAD BLOCK would hold up the
  // shared, pipelined one); replay reads and revocation re-checks use the shared one.
  PushHub push(io, redis_options, *redis, config.push, registry, &readiness);
  push.start();

  GatewayServices services{config,
                           routes,
                           upstreams,
                           *redis,
                           tracked,
                           keys,
                           readiness,
                           openapi_document(),
                           registry,
                           tracer,
                           config.push.enabled ? &push : nullptr};
  auto filters = build_filter_chain(services);
  HttpServer server(io, public_listener(config), filters, connection_loops);
  server.start();
  auto admin_filters = build_admin_chain(services);
  std::unique_ptr<HttpServer> admin_server;
  if (config.admin_port >= 0) {
    ListenerSettings admin;
    admin.address = config.admin_address;
    admin.port = config.admin_port;
    admin.max_body_bytes = 0;
    admin_server = std::make_unique<HttpServer>(io, admin, admin_filters);
    admin_server->start();
    log::info("admin listening",
              {{"address", config.admin_address}, {"port", admin_server->port()}});
  }
  log::info("gateway listening", {{"address", config.listen_address},
                                  {"port", server.port()},
                                  {"routes", routes.routes().size()},
                                  {"io_threads", config.io_threads}});

  asio::signal_set signals(io, SIGTERM, SIGINT);
  auto drain_timer = std::make_shared<asio::steady_timer>(io);
  signals.async_wait([&](boost::system::error_code ec, int signal) {
    if (ec) return;
    log::info("shutting down", {{"signal", signal},
                                {"drain_delay_ms", config.drain_delay_ms},
                                {"grace_ms", config.grace_ms}});
    readiness.set_draining();
    drain_timer->expires_after(std::chrono::milliseconds(config.drain_delay_ms));
    drain_timer->async_wait([&, drain_timer](boost::system::error_code) {
      server.drain();
      if (admin_server) admin_server->drain();
      background.stop();
      invalidator.stop();
      tracked.stop();
      push.drain();  // WebSocket close 1001, SSE end of body
      push.stop();
      drain(io, server, push, std::make_shared<asio::steady_timer>(io),
            std::chrono::steady_clock::now() + std::chrono::milliseconds(config.grace_ms));
    });
  });

  // The extra loops run until the first one stops (after the drain), whether busy or not.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::vector<std::thread> threads;
  for (auto& loop : extra_loops) {
    keep_running.push_back(asio::make_work_guard(*loop));
    threads.emplace_back([&loop = *loop] { loop.run(); });
  }
  io.run();
  for (auto& loop : extra_loops) loop->stop();
  for (auto& thread : threads) thread.join();
  // Teardown in the order nothing calls into a destroyed object: gRPC callbacks of calls still
  // outstanding (abandoned requests, health probes) run on gRPC's threads, so they are cancelled
  // and awaited first; then the handlers queued on the stopped io_context are destroyed.
  if (auto left = upstreams.shutdown(std::chrono::milliseconds(2000)); left > 0) {
    // Their callbacks may still run: tearing down what they use would crash the exit, so skip
    // the teardown (requests were drained or abandoned already; nothing else is left to save).
    log::warn("upstream calls still outstanding at exit, exiting without teardown",
              {{"calls", left}});
    log::flush();       // first: the tracer may take up to its 2 s export timeout
    tracer.shutdown();  // the spans of the requests that did finish still reach the collector
    log::flush();
    std::_Exit(0);
  }
  redis->stop();
  io.destroy_pending_handlers();
  for (auto& loop : extra_loops) loop->destroy_pending_handlers();
  log::flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[++i];
  }
  if (config_path.empty()) {
    std::cerr << "usage: trellis-gateway --config FILE\n";
    return 64;
  }
  try {
    return run(config_path);
  } catch (const trellis::config::ConfigError& e) {
    trellis::log::error("invalid configuration", {{"error", e.what()}});
    return 78;
  } catch (const std::exception& e) {
    trellis::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
}
