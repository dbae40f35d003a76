#include "trellis/common/migrator.h"

#include "trellis/common/digest.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>

#include "trellis/common/log.h"

namespace trellis::db {
namespace {

// "0007_add_index": how the file that held the migration was named.
std::string label(int version, std::string_view name) {
  char number[16];
  std::snprintf(number, sizeof number, "%04d", version);
  return std::string(number) + "_" + std::string(name);
}

// Advisory lock keys are one bigint per database; take it from a hash of the name.
int64_t lock_key(std::string_view lock_name) {
  auto digest = sha256(lock_name);
  uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | static_cast<unsigned char>(digest[i]);
  return static_cast<int64_t>(key);
}

// A session-level statement outside any transaction.
void run(pqxx::connection& connection, const std::string& sql) {
  pqxx::nontransaction tx(connection);
  tx.exec0(sql);
  tx.commit();
}

// Lifts the session's statement_timeout so that a long migration, or waiting for another replica
// to finish migrating, is not cancelled; RESET returns to the value the connection started with.
class StatementTimeoutLifted {
 public:
  explicit StatementTimeoutLifted(pqxx::connection& connection) : connection_(connection) {
    run(connection_, "SET statement_timeout = 0");
  }
  ~StatementTimeoutLifted() {
    if (!connection_.is_open()) return;
    try {
      run(connection_, "RESET statement_timeout");
    } catch (const std::exception& e) {
      log::warn("could not restore statement_timeout", {{"error", e.what()}});
    }
  }
  StatementTimeoutLifted(const StatementTimeoutLifted&) = delete;
  StatementTimeoutLifted& operator=(const StatementTimeoutLifted&) = delete;

 private:
  pqxx::connection& connection_;
};

// A session-level lock: it outlives the per-migration transactions, and the server releases it
// by itself if this process dies midway.
class MigrationLock {
 public:
  MigrationLock(pqxx::connection& connection, std::string_view lock_name)
      : connection_(connection), key_(lock_key(lock_name)) {
    pqxx::nontransaction tx(connection_);
    if (!tx.exec_params1("SELECT pg_try_advisory_lock($1)", key_)[0].as<bool>()) {
      log::info("waiting for another process to finish migrating", {{"lock", lock_name}});
      tx.exec_params1("SELECT pg_advisory_lock($1)", key_);
    }
    tx.commit();
  }
  ~MigrationLock() {
    if (!connection_.is_open()) return;  // the server dropped the lock with the session
    try {
      pqxx::nontransaction tx(connection_);
      tx.exec_params1("SELECT pg_advisory_unlock($1)", key_);
      tx.commit();
    } catch (const std::exception& e) {
      log::warn("could not release the migration lock", {{"error", e.what()}});
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  pqxx::connection& connection_;
  int64_t key_;
};

struct AppliedMigration {
  std::string name;
  std::string checksum;
};

std::vector<const Migration*> sorted_checked(const std::vector<Migration>& migrations) {
  std::vector<const Migration*> sorted;
  for (const auto& migration : migrations) {
    if (migration.version <= 0) {
      throw MigrationError(migration.version, "migration " +
                                                  label(migration.version, migration.name) +
                                                  " has a version that is not positive");
    }
    sorted.push_back(&migration);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->version == sorted[i - 1]->version) {
      throw MigrationError(sorted[i]->version,
                           "duplicate migration version " + std::to_string(sorted[i]->version) +
                               ": " + label(sorted[i - 1]->version, sorted[i - 1]->name) + " and " +
                               label(sorted[i]->version, sorted[i]->name));
    }
  }
  return sorted;
}

std::map<int, AppliedMigration> read_applied(pqxx::connection& connection) {
  pqxx::work tx(connection);
  tx.exec0(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  std::map<int, AppliedMigration> applied;
  for (const auto& row : tx.exec("SELECT version, name, checksum FROM schema_migrations")) {
    applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
  }
  tx.commit();
  return applied;
}

// Refuses before anything runs: code older than the schema, or an edited history, could corrupt
// data in ways no later migration can repair.
void check_history(const std::map<int, AppliedMigration>& applied,
                   const std::vector<const Migration*>& embedded) {
  std::map<int, const Migration*> by_version;
  for (const auto* migration : embedded) by_version[migration->version] = migration;
  for (const auto& [version, record] : applied) {
    auto found = by_version.find(version);
    if (found == by_version.end()) {
      throw MigrationError(version, "the database has migration " + label(version, record.name) +
                                        " which this build does not know: refusing to run older "
                                        "code against a newer schema");
    }
    if (migration_checksum(found->second->sql) != record.checksum) {
      throw MigrationError(version, "migration " + label(version, record.name) +
                                        " was changed after it was applied (checksum differs); "
                                        "add a new migration instead of editing an applied one");
    }
    if (found->second->name != record.name) {
      log::warn("applied migration was renamed", {{"version", version},
                                                  {"applied_name", record.name},
                                                  {"embedded_name", found->second->name}});
    }
  }
}

void apply(pqxx::connection& connection, const Migration& migration) {
  auto started = std::chrono::steady_clock::now();
  try {
    pqxx::work tx(connection);
    tx.exec(migration.sql);
    tx.exec_params0("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration_checksum(migration.sql));
    tx.commit();
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::in_doubt_error&) {
    throw;  // the commit may have happened: the next run will tell
  } catch (const std::exception& e) {
    log::error("migration failed",
               {{"version", migration.version}, {"name", migration.name}, {"error", e.what()}});
    throw MigrationError(migration.version, "migration " +
                                                label(migration.version, migration.name) +
                                                " failed and was rolled back: " + e.what());
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count();
  log::info("migration applied", {{"version", migration.version},
                                  {"name", migration.name},
                                  {"duration_ms", static_cast<int64_t>(elapsed)}});
}

}  // namespace

std::string migration_checksum(std::string_view sql) {
  return sha256_hex(sql);
}

int migrate(pqxx::connection& connection, const std::vector<Migration>& migrations,
            std::string_view lock_name) {
  auto embedded = sorted_checked(migrations);
  StatementTimeoutLifted no_timeout(connection);
  MigrationLock lock(connection, lock_name);
  // Read only under the lock: another replica may just have applied what looked pending.
  auto applied = read_applied(connection);
  check_history(applied, embedded);
  int count = 0;
  for (const auto* migration : embedded) {
    if (applied.count(migration->version)) continue;
    apply(connection, *migration);
    ++count;
  }
  int latest = embedded.empty() ? 0 : embedded.back()->version;
  log::info("database schema up to date",
            {{"lock", lock_name}, {"applied", count}, {"version", latest}});
  return count;
}

}  // namespace trellis::db
