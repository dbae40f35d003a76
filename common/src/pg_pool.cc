#include "trellis/common/pg_pool.h"

#include <chrono>
#include <string_view>

#include "trellis/common/log.h"

namespace trellis::db {
namespace {

// libpq's quoting: a single-quoted value in which backslash escapes ' and \.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

void append(std::string& conninfo, std::string_view key, std::string_view value) {
  if (!conninfo.empty()) conninfo += ' ';
  conninfo.append(key);
  conninfo += '=';
  conninfo += quoted(value);
}

void validate(const PgOptions& options) {
  if (options.pool_size < 1) throw std::invalid_argument("database pool_size must be at least 1");
  if (options.acquire_timeout_ms < 0 || options.statement_timeout_ms < 0 ||
      options.connect_timeout_s < 0) {
    throw std::invalid_argument("database timeouts must not be negative");
  }
  if (options.port < 1 || options.port > 65535) {
    throw std::invalid_argument("database port must be in 1..65535");
  }
}

}  // namespace

std::string connection_string(const PgOptions& options) {
  std::string conninfo;
  // Empty values are left out so that libpq's defaults (socket directory, OS user) apply.
  if (!options.host.empty()) append(conninfo, "host", options.host);
  append(conninfo, "port", std::to_string(options.port));
  if (!options.dbname.empty()) append(conninfo, "dbname", options.dbname);
  if (!options.user.empty()) append(conninfo, "user", options.user);
  if (!options.password.empty()) append(conninfo, "password", options.password);
  append(conninfo, "connect_timeout", std::to_string(options.connect_timeout_s));
  if (!options.application_name.empty()) {
    append(conninfo, "application_name", options.application_name);
  }
  if (!options.sslmode.empty()) append(conninfo, "sslmode", options.sslmode);
  // A startup option rather than a SET: it holds for the whole session and survives RESET ALL.
  append(conninfo, "options",
         "-c statement_timeout=" + std::to_string(options.statement_timeout_ms));
  return conninfo;
}

std::string describe(const PgOptions& options) {
  return options.user + "@" + options.host + ":" + std::to_string(options.port) + "/" +
         options.dbname;
}

PgPool::PgPool(PgOptions options, Preparer preparer)
    : options_((validate(options), std::move(options))),
      conninfo_(connection_string(options_)),
      preparer_(std::move(preparer)) {}

PgPool::~PgPool() = default;

PgPool::Lease PgPool::acquire() {
  return acquire(false);
}

PgPool::Lease PgPool::acquire_fresh() {
  return acquire(true);
}

void PgPool::attach_metrics(metrics::Registry& registry, const std::string& pool_name) {
  acquire_seconds_ =
      &registry.histogram("db_pool_acquire_seconds", "Time to obtain a pooled connection", {"pool"})
           .with({pool_name});
  transaction_seconds_ = &registry
                              .histogram("db_transaction_seconds",
                                         "Database transaction latency incl. retries", {"pool"})
                              .with({pool_name});
  // The registry calls back at every scrape: the pool must outlive it (both live in main()).
  auto& connections =
      registry.gauge("db_pool_connections", "PostgreSQL pool connections by state", {"state"});
  registry.on_collect([&connections, this] {
    auto now = stats();
    connections.with({"open"}).set(now.open);
    connections.with({"in_use"}).set(now.in_use);
    connections.with({"waiting"}).set(now.waiting);
  });
}

PgPool::Lease PgPool::acquire(bool fresh) {
  // Observed however the acquisition ends (a timeout is the interesting case).
  struct Timer {
    metrics::Histogram* histogram;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    ~Timer() {
      if (!histogram) return;
      std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
      histogram->observe(elapsed.count());
    }
  } timer{acquire_seconds_};
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.acquire_timeout_ms);
  std::unique_ptr<pqxx::connection> retired;  // closed outside the lock: closing does I/O
  {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        if (!fresh) {
          ++in_use_;
          return Lease(this, std::move(connection));
        }
        retired = std::move(connection);  // its slot is reused for the fresh connection
        ++in_use_;
        break;
      }
      if (open_ < options_.pool_size) {
        ++open_;  // reserve the slot before connecting without the lock
        ++in_use_;
        break;
      }
      ++waiting_;
      bool woken = returned_.wait_until(
          lock, deadline, [this] { return !idle_.empty() || open_ < options_.pool_size; });
      --waiting_;
      if (!woken) {
        throw PoolTimeout("no database connection free within " +
                          std::to_string(options_.acquire_timeout_ms) + " ms (pool of " +
                          std::to_string(options_.pool_size) + ")");
      }
    }
  }
  retired.reset();
  try {
    return Lease(this, open_connection());
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      --open_;
      --in_use_;
    }
    returned_.notify_one();  // a waiter may try to open the slot itself
    throw;
  }
}

std::unique_ptr<pqxx::connection> PgPool::open_connection() {
  auto connection = std::make_unique<pqxx::connection>(conninfo_);
  if (preparer_) preparer_(*connection);
  log::debug("database connection opened",
             {{"database", describe(options_)}, {"backend_pid", connection->backendpid()}});
  return connection;
}

void PgPool::give_back(std::unique_ptr<pqxx::connection> connection, bool broken) {
  // libpq notices a server-side disconnect only when it next uses the socket; a connection that
  // failed during the lease reports is_open() false and would not recover.
  if (broken || !connection->is_open()) {
    log::warn("database connection discarded", {{"database", describe(options_)}});
    connection.reset();
    {
      std::lock_guard lock(mutex_);
      --open_;
      --in_use_;
    }
  } else {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    --in_use_;
  }
  returned_.notify_one();
}

PgPool::Stats PgPool::stats() const {
  std::lock_guard lock(mutex_);
  return Stats{open_, in_use_, waiting_};
}

PgPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)) {}

PgPool::Lease& PgPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release(false);
    pool_ = other.pool_;
    connection_ = std::move(other.connection_);
  }
  return *this;
}

PgPool::Lease::~Lease() {
  release(false);
}

pqxx::connection& PgPool::Lease::operator*() {
  if (!connection_) throw std::logic_error("empty database connection lease");
  return *connection_;
}

pqxx::connection* PgPool::Lease::operator->() {
  return &**this;
}

void PgPool::Lease::discard() {
  release(true);
}

void PgPool::Lease::release(bool broken) {
  if (connection_) pool_->give_back(std::move(connection_), broken);
}

}  // namespace trellis::db
