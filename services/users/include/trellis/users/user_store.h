// All SQL of the users service: users, sessions and refresh-token families. Every statement is
// prepared and parameterized; callers see domain results, not rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trellis/common/digest.h"
#include "trellis/common/pg_pool.h"

namespace trellis::users {

struct UserRecord {
  std::string id;
  std::string email;
  std::string display_name;
  std::vector<std::string> roles;
  int64_t created_at_us = 0;  // unix microseconds
};

struct NewSession {
  std::string session_id;
  std::string refresh_token;  // opaque; only its SHA-256 is stored
};

enum class RefreshOutcome {
  kRotated,  // new refresh token issued, old one marked used
  kUnknown,  // no such token (or malformed)
  kExpired,  // token or session expired, or session revoked
  kReused,   // token was already used: the whole family has just been revoked
};

struct RefreshResult {
  RefreshOutcome outcome = RefreshOutcome::kUnknown;
  UserRecord user;
  NewSession session;  // session_id is set for kRotated and kReused
};

class DuplicateEmail : public std::runtime_error {
 public:
  DuplicateEmail() : std::runtime_error("email already registered") {}
};

class UserStore {
 public:
  explicit UserStore(db::PgPool& pool) : pool_(pool) {}

  // Registers the prepared statements on a new pooled connection.
  static void prepare(pqxx::connection& connection);

  // Throws DuplicateEmail when the email exists in any letter case.
  UserRecord create_user(const std::string& email, const std::string& display_name,
                         const std::string& password_hash);
  // Returns the user and its password hash.
  std::optional<std::pair<UserRecord, std::string>> find_credentials(const std::string& email);
  std::optional<UserRecord> find_by_id(const std::string& id);
  std::optional<UserRecord> update_display_name(const std::string& id,
                                                const std::string& display_name);
  // Adds a role by email; false when no such user.
  bool grant_role(const std::string& email, const std::string& role);

  NewSession start_session(const std::string& user_id, int refresh_ttl_s);
  RefreshResult rotate_refresh_token(const std::string& refresh_token, int refresh_ttl_s);
  // Revokes a session and so every refresh token of its family; idempotent.
  void revoke_session(const std::string& session_id, const std::string& reason);

 private:
  db::PgPool& pool_;
};

using trellis::is_uuid;  // trellis/common/digest.h

}  // namespace trellis::users
