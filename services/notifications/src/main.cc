// trellis-notifications: per-user notifications made from order events, and their hand-off to the
// gateways' live streams.
//   trellis-notifications --config FILE            serve gRPC (and consume the event stream)
//   trellis-notifications --config FILE migrate    apply migrations and exit
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "trellis/common/log.h"
#include "trellis/common/metrics_server.h"
#include "trellis/common/migrator.h"
#include "trellis/common/pg_pool.h"
#include "trellis/common/service_runtime.h"
#include "trellis/notifications/config.h"
#include "trellis/notifications/database.h"
#include "trellis/notifications/event_consumer.h"
#include "trellis/notifications/handlers.h"

namespace {

int usage() {
  std::cerr << "usage: trellis-notifications --config FILE [migrate]\n";
  return 64;
}

void apply_migrations(trellis::db::PgPool& pool) {
  auto lease = pool.acquire();
  trellis::db::migrate(*lease, trellis::notifications::migrations(), "trellis-notifications");
}

int run(const std::string& config_path, const std::vector<std::string>& command) {
  using namespace trellis;
  auto config = notifications::load_config(config_path);
  log::init("notifications", config.log_level);
  log::info("effective configuration", {{"config", config.effective_json}});
  db::PgPool pool(config.database, notifications::prepare_statements);

  if (!command.empty() && command[0] == "migrate" && command.size() == 1) {
    apply_migrations(pool);
    return 0;
  }
  if (!command.empty()) return usage();

  metrics::Registry registry;
  pool.attach_metrics(registry, "notifications");
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    metrics_server = std::make_unique<metrics::MetricsServer>(config.metrics_listen, registry);
    metrics_server->start();
  }
  tracing::Tracer tracer({config.otlp_endpoint, "notifications"});
  notifications::NotificationStore store(pool);
  notifications::NotificationHandler handler(store, tracer);
  notifications::EventConsumer consumer(store, config.consumer, config.push, config.redis,
                                        &registry);

  service::ServiceHost host(config.grpc_listen, registry, config.grpc_idle_threads);
  host.add_service(&handler, notifications::v1::NotificationService::service_full_name());
  // Health says NOT_SERVING while the schema is brought up to date, then SERVING.
  host.start(/*serving=*/false);
  if (config.migrate_on_start) apply_migrations(pool);
  host.set_serving();
  consumer.start();
  host.run_until_signal(config.grace_ms, config.drain_delay_ms);
  // Entries taken but not acknowledged stay pending: this consumer's next start, or another
  // replica's claim, processes them.
  consumer.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return trellis::service::run_service_main(argc, argv, run, usage);
}
