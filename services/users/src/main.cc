// trellis-users: accounts, sessions and access tokens.
//   trellis-users --config FILE                          serve gRPC
//   trellis-users --config FILE migrate                  apply migrations and exit
//   trellis-users --config FILE grant-role EMAIL ROLE    grant a role (exit 2: no such user)
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
#include "trellis/users/config.h"
#include "trellis/users/handlers.h"
#include "trellis/users/migrations.h"

namespace {

int usage() {
  std::cerr << "usage: trellis-users --config FILE [migrate | grant-role EMAIL ROLE]\n";
  return 64;
}

void apply_migrations(trellis::db::PgPool& pool) {
  auto lease = pool.acquire();
  trellis::db::migrate(*lease, trellis::users::migrations(), "trellis-users");
}

int run(const std::string& config_path, const std::vector<std::string>& command) {
  using namespace trellis;
  auto config = users::load_config(config_path);
  log::init("users", config.log_level);
  log::info("effective configuration", {{"config", config.effective_json}});
  db::PgPool pool(config.database, users::UserStore::prepare);
  users::UserStore store(pool);

  if (!command.empty() && command[0] == "migrate") {
    apply_migrations(pool);
    return 0;
  }
  if (!command.empty() && command[0] == "grant-role") {
    if (command.size() != 3) return usage();
    if (!store.grant_role(command[1], command[2])) {
      std::cerr << "no user with email " << command[1] << "\n";
      return 2;
    }
    std::cout << "granted role " << command[2] << " to " << command[1]
              << " (effective from the user's next login or token refresh)\n";
    return 0;
  }
  if (!command.empty()) return usage();

  metrics::Registry registry;
  pool.attach_metrics(registry, "users");
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    metrics_server = std::make_unique<metrics::MetricsServer>(config.metrics_listen, registry);
    metrics_server->start();
  }
  users::TokenIssuer tokens(config.tokens);
  users::RevocationPublisher revocations(config.redis);
  tracing::Tracer tracer({config.otlp_endpoint, "users"});
  users::Dependencies deps{store, tokens, revocations, config, registry, tracer};
  users::AuthHandler auth(deps);
  users::UserHandler user(deps);

  service::ServiceHost host(config.grpc_listen, registry, config.grpc_idle_threads);
  host.add_service(&auth, users::v1::AuthService::service_full_name());
  host.add_service(&user, users::v1::UserService::service_full_name());
  // Health says NOT_SERVING while the schema is brought up to date, then SERVING.
  host.start(/*serving=*/false);
  if (config.migrate_on_start) apply_migrations(pool);
  host.set_serving();
  host.run_until_signal(config.grace_ms, config.drain_delay_ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return trellis::service::run_service_main(argc, argv, run, usage);
}
