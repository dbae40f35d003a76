// Schema migrations: numbered SQL scripts embedded in the service binary at build time (see
// cmake/EmbedMigrations.cmake) and applied at start-up, safely when several replicas start at once.
#pragma once

#include <pqxx/pqxx>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::db {

struct Migration {
  int version;       // from the NNNN_ prefix of the file name; unique, > 0
  std::string name;  // the rest of the file name, without .sql
  // May hold several statements. Runs inside one transaction, so statements that refuse to
  // (CREATE INDEX CONCURRENTLY, VACUUM) cannot be used.
  std::string sql;
};

// The migrations cannot be applied as asked; what() names the version concerned.
class MigrationError : public std::runtime_error {
 public:
  MigrationError(int version, const std::string& message)
      : std::runtime_error(message), version_(version) {}
  int version() const { return version_; }

 private:
  int version_;
};

// Lowercase hex SHA-256 of the SQL text, as recorded in schema_migrations.checksum.
std::string migration_checksum(std::string_view sql);

// Applies the pending migrations in ascending version order, each in its own transaction, and
// returns how many it applied. Holds a session advisory lock derived from `lock_name` meanwhile,
// so replicas starting together apply each migration exactly once (the others wait, then find
// nothing to do). Records version, name, checksum and applied_at in table schema_migrations, one
// migration set per database. Statements run without the session's statement_timeout (a
// migration may legitimately take long); the timeout is restored afterwards.
// Throws MigrationError, before applying anything, when an applied migration's checksum differs
// from the embedded one or the database has a version this build does not know (newer code was
// rolled back), or when the embedded list has duplicate or non-positive versions. A migration
// that fails is rolled back, earlier ones stay applied, and MigrationError names it.
// pqxx::broken_connection and pqxx::in_doubt_error propagate as they are.
int migrate(pqxx::connection& connection, const std::vector<Migration>& migrations,
            std::string_view lock_name);

}  // namespace trellis::db
