// trellis-orders: orders, their status machine and the outbox relay to Redis Streams.
//   trellis-orders --config FILE            serve gRPC (and run the background loops)
//   trellis-orders --config FILE migrate    apply migrations and exit
#include <cstring>
#include <iostream>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "trellis/common/config.h"
#include "trellis/common/log.h"
#include "trellis/common/metrics_server.h"
#include "trellis/common/migrator.h"
#include "trellis/common/pg_pool.h"
#include "trellis/common/service_runtime.h"
#include "trellis/orders/config.h"
#include "trellis/orders/database.h"
#include "trellis/orders/handlers.h"
#include "trellis/orders/maintenance.h"
#include "trellis/orders/outbox_relay.h"

namespace {

int usage() {
  std::cerr << "usage: trellis-orders --config FILE [migrate]\n";
  return 64;
}

void apply_migrations(trellis::db::PgPool& pool) {
  auto lease = pool.acquire();
  trellis::db::migrate(*lease, trellis::orders::migrations(), "trellis-orders");
}

int run(const std::string& config_path, const std::vector<std::string>& command) {
  using namespace trellis;
  auto config = orders::load_config(config_path);
  log::init("orders", config.log_level);
  log::info("effective configuration", {{"config", config.effective_json}});
  db::PgPool pool(config.database, orders::prepare_statements);

  if (!command.empty() && command[0] == "migrate" && command.size() == 1) {
    apply_migrations(pool);
    return 0;
  }
  if (!command.empty()) return usage();

  metrics::Registry registry;
  pool.attach_metrics(registry, "orders");
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    metrics_server = std::make_unique<metrics::MetricsServer>(config.metrics_listen, registry);
    metrics_server->start();
  }
  tracing::Tracer tracer({config.otlp_endpoint, "orders"});
  orders::OutboxRelay relay(pool, config.orders, config.redis, &registry);
  orders::OrderStore store(pool, {config.orders.idempotency_ttl_s, [&relay] { relay.wake(); }});
  orders::OrderHandler handler(store, registry, tracer);
  orders::Maintenance maintenance(store, config.orders, &registry);

  service::ServiceHost host(config.grpc_listen, registry, config.grpc_idle_threads);
  host.add_service(&handler, orders::v1::OrderService::service_full_name());
  // Health says NOT_SERVING while the schema is brought up to date, then SERVING.
  host.start(/*serving=*/false);
  if (config.migrate_on_start) apply_migrations(pool);
  host.set_serving();
  relay.start();
  maintenance.start();
  host.run_until_signal(config.grace_ms, config.drain_delay_ms);
  // After the last RPC: whatever it committed to the outbox is relayed now or by the next start.
  maintenance.stop();
  relay.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return trellis::service::run_service_main(argc, argv, run, usage);
}
