// A bounded PostgreSQL connection pool for service workers, and with_transaction(), which runs a
// unit of work with the retries that are safe for it. Connections open lazily, each with the
// server-side statement_timeout and the service's prepared statements.
#pragma once

#include <pqxx/pqxx>

#include "trellis/common/metrics.h"
#include "trellis/common/tracing.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace trellis::db {

struct PgOptions {
  std::string host = "127.0.0.1";
  int port = 5432;
  std::string dbname, user, password;
  int pool_size = 8;              // max connections, opened lazily
  int acquire_timeout_ms = 1000;  // waiting for a free connection longer than this → PoolTimeout
  int statement_timeout_ms =
      5000;                   // server-side statement_timeout of every pooled session; 0: none
  int connect_timeout_s = 5;  // libpq waits at least 2 s whatever this says (0: no limit)
  std::string application_name = "trellis";
  std::string sslmode;  // libpq sslmode ("disable", "require", "verify-full", ...); empty: default
};

// libpq keyword/value conninfo; every value is quoted, so spaces, quotes and backslashes are safe.
// The result contains the password: never log it.
std::string connection_string(const PgOptions& options);

// "user@host:port/dbname": names the database in logs and errors without any secret.
std::string describe(const PgOptions& options);

// No connection became free within acquire_timeout_ms: the database is saturated.
class PoolTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PgPool {
 public:
  // Registers prepared statements on each new connection (pqxx prepares them on first use).
  using Preparer = std::function<void(pqxx::connection&)>;

  // Opens no connection yet. Throws std::invalid_argument for nonsensical sizes or timeouts.
  PgPool(PgOptions options, Preparer preparer);
  // Every Lease must have been returned before the pool is destroyed.
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Exclusive use of one connection; gives it back to the pool on destruction, unless it broke
  // (is_open() false), in which case it is closed and its slot freed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    ~Lease();

    // Throw std::logic_error on an empty (moved-from or discarded) lease.
    pqxx::connection& operator*();
    pqxx::connection* operator->();
    explicit operator bool() const { return connection_ != nullptr; }

    // The connection is unusable: close it now instead of returning it; the lease becomes empty.
    void discard();

   private:
    friend class PgPool;
    Lease(PgPool* pool, std::unique_ptr<pqxx::connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    void release(bool broken);

    PgPool* pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  // Thread-safe. Reuses an idle connection or opens one while fewer than pool_size are open;
  // otherwise waits at most acquire_timeout_ms and throws PoolTimeout. Opening a connection may
  // take up to connect_timeout_s and throws pqxx::broken_connection when the server is
  // unreachable (or whatever the Preparer throws).
  Lease acquire();
  // Like acquire(), but always a newly opened connection (an idle one is closed to make room):
  // after one connection was found dead, its idle siblings may well be dead too.
  Lease acquire_fresh();

  struct Stats {
    int open;     // established or being established
    int in_use;   // leased
    int waiting;  // callers blocked in acquire()
  };
  Stats stats() const;

  const PgOptions& options() const { return options_; }

  // Times acquisitions (db_pool_acquire_seconds) and transactions (db_transaction_seconds) under
  // the given pool name, and reports db_pool_connections{state} at each scrape. Call before use;
  // the pool must outlive the registry's collections.
  void attach_metrics(metrics::Registry& registry, const std::string& pool_name);
  void record_transaction(double seconds) const {
    if (transaction_seconds_) transaction_seconds_->observe(seconds);
  }

 private:
  Lease acquire(bool fresh);
  std::unique_ptr<pqxx::connection> open_connection();
  void give_back(std::unique_ptr<pqxx::connection> connection, bool broken);

  const PgOptions options_;
  const std::string conninfo_;
  const Preparer preparer_;
  metrics::Histogram* acquire_seconds_ = nullptr;
  metrics::Histogram* transaction_seconds_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
  int in_use_ = 0;
  int waiting_ = 0;
};

// Runs `work(tx)` (tx is a pqxx::work) on a pooled connection and commits; returns work's result.
// Retries, calling `work` again, only where no effect can have been committed:
//  - pqxx::broken_connection before commit was attempted: once, on a freshly opened connection;
//  - serialization failure or deadlock (the server rolled the transaction back): up to 3 times.
// So `work` must not have side effects outside the transaction that a second call would repeat.
// Records the duration of one with_transaction call, retries included, however it ends.
class TransactionTimer {
 public:
  explicit TransactionTimer(const PgPool& pool) : pool_(pool) {}
  ~TransactionTimer() {
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started_;
    pool_.record_transaction(elapsed.count());
  }

 private:
  const PgPool& pool_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

template <class Fn>
auto with_transaction(PgPool& pool, Fn&& work) {
  TransactionTimer timer(pool);
  // A child of the thread's current span (the RPC), when tracing is on.
  tracing::ChildSpan span("db.transaction", tracing::SpanKind::kClient,
                          {{"db.system", "postgresql"}, {"db.name", pool.options().dbname}});
  using Result = std::invoke_result_t<Fn&, pqxx::work&>;
  constexpr int kConflictRetries = 3;
  int conflict_retries = 0;
  bool reconnected = false;
  for (;;) {
    auto lease = reconnected ? pool.acquire_fresh() : pool.acquire();
    bool commit_attempted = false;
    try {
      pqxx::work tx(*lease);
      if constexpr (std::is_void_v<Result>) {
        work(tx);
        commit_attempted = true;
        tx.commit();
        return;
      } else {
        Result result = work(tx);
        commit_attempted = true;
        tx.commit();
        return result;
      }
    } catch (const pqxx::broken_connection&) {
      lease.discard();
      // A commit that broke midway may have been applied: repeating it could apply it twice.
      if (commit_attempted || reconnected) throw;
      reconnected = true;
    } catch (const pqxx::serialization_failure&) {
      if (++conflict_retries > kConflictRetries) throw;
    } catch (const pqxx::deadlock_detected&) {
      if (++conflict_retries > kConflictRetries) throw;
    }
  }
}

// Runs `statement(tx)` (tx is a pqxx::nontransaction: each statement commits on its own) on a
// pooled connection: one round trip instead of BEGIN/statement/COMMIT. For one statement, or reads
// that need no common snapshot. Retried once on a fresh connection when the connection was found
// broken, so a write must be safe to repeat (e.g. an insert of a key chosen by the caller, whose
// second attempt recognises the first).
template <class Fn>
auto with_statement(PgPool& pool, Fn&& statement, const char* span_name = "db.statement") {
  TransactionTimer timer(pool);
  tracing::ChildSpan span(span_name, tracing::SpanKind::kClient,
                          {{"db.system", "postgresql"}, {"db.name", pool.options().dbname}});
  for (bool reconnected = false;; reconnected = true) {
    auto lease = reconnected ? pool.acquire_fresh() : pool.acquire();
    try {
      pqxx::nontransaction tx(*lease);
      return statement(tx, reconnected);
    } catch (const pqxx::broken_connection&) {
      lease.discard();
      if (reconnected) throw;
    }
  }
}

// with_statement for reads: `read(tx)`.
template <class Fn>
auto with_read(PgPool& pool, Fn&& read) {
  return with_statement(
      pool, [&](pqxx::nontransaction& tx, bool) { return read(tx); }, "db.read");
}

}  // namespace trellis::db
