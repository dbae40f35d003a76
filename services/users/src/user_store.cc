#include "trellis/users/user_store.h"

#include <openssl/sha.h>

#include <pqxx/pqxx>

#include "trellis/common/base64url.h"
#include "trellis/common/trace.h"

namespace trellis::users {
namespace {

constexpr const char* kUserColumns =
    "id::text, email, display_name, array_to_string(roles, ','), "
    "(extract(epoch from created_at) * 1000000)::bigint";

std::vector<std::string> split_csv(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return parts;
}

UserRecord read_user(const pqxx::row& row) {
  UserRecord user;
  user.id = row[0].as<std::string>();
  user.email = row[1].as<std::string>();
  user.display_name = row[2].as<std::string>();
  user.roles = split_csv(row[3].as<std::string>());
  user.created_at_us = row[4].as<int64_t>();
  return user;
}

// Refresh tokens are 256 random bits; the database keeps their SHA-256 only.
std::string new_refresh_token() {
  auto raw = trace::random_hex(32);
  std::string bytes;
  for (size_t i = 0; i < raw.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(raw.substr(i, 2), nullptr, 16)));
  }
  return crypto::base64url_encode(bytes);
}

pqxx::binarystring token_hash(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return pqxx::binarystring(digest, sizeof digest);
}

}  // namespace

void UserStore::prepare(pqxx::connection& c) {
  std::string columns = kUserColumns;
  c.prepare("users_insert",
            "INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3) "
            "RETURNING " +
                columns);
  c.prepare("users_credentials",
            "SELECT " + columns + ", password_hash FROM users WHERE lower(email) = lower($1)");
  c.prepare("users_by_id", "SELECT " + columns + " FROM users WHERE id = $1::uuid");
  c.prepare("users_update_display_name",
            "UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1::uuid "
            "RETURNING " +
                columns);
  c.prepare("users_grant_role",
            "UPDATE users SET roles = array_append(roles, $2), updated_at = now() "
            "WHERE lower(email) = lower($1) AND NOT ($2 = ANY(roles)) RETURNING id");
  c.prepare("users_exists_by_email", "SELECT 1 FROM users WHERE lower(email) = lower($1)");
  c.prepare("sessions_insert",
            "INSERT INTO sessions (user_id, expires_at) "
            "VALUES ($1::uuid, now() + make_interval(secs => $2)) RETURNING id::text");
  c.prepare("refresh_insert",
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
            "SELECT $1, s.id, s.expires_at FROM sessions s WHERE s.id = $2::uuid");
  c.prepare("refresh_lock",
            "SELECT rt.session_id::text, rt.used_at IS NOT NULL, "
            "rt.expires_at <= now() OR s.expires_at <= now() OR s.revoked_at IS NOT NULL, "
            "s.user_id::text "
            "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id "
            "WHERE rt.token_hash = $1 FOR UPDATE OF rt, s");
  c.prepare("refresh_mark_used", "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1");
  c.prepare("sessions_revoke",
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 "
            "WHERE id = $1::uuid AND revoked_at IS NULL");
}

UserRecord UserStore::create_user(const std::string& email, const std::string& display_name,
                                  const std::string& password_hash) {
  try {
    return db::with_transaction(pool_, [&](pqxx::work& tx) {
      return read_user(tx.exec_prepared1("users_insert", email, display_name, password_hash));
    });
  } catch (const pqxx::unique_violation&) {
    throw DuplicateEmail();
  }
}

std::optional<std::pair<UserRecord, std::string>> UserStore::find_credentials(
    const std::string& email) {
  return db::with_read(
      pool_, [&](pqxx::nontransaction& tx) -> std::optional<std::pair<UserRecord, std::string>> {
        auto rows = tx.exec_prepared("users_credentials", email);
        if (rows.empty()) return std::nullopt;
        return std::make_pair(read_user(rows[0]), rows[0][5].as<std::string>());
      });
}

std::optional<UserRecord> UserStore::find_by_id(const std::string& id) {
  if (!is_uuid(id)) return std::nullopt;
  return db::with_read(pool_, [&](pqxx::nontransaction& tx) -> std::optional<UserRecord> {
    auto rows = tx.exec_prepared("users_by_id", id);
    if (rows.empty()) return std::nullopt;
    return read_user(rows[0]);
  });
}

std::optional<UserRecord> UserStore::update_display_name(const std::string& id,
                                                         const std::string& display_name) {
  if (!is_uuid(id)) return std::nullopt;
  return db::with_transaction(pool_, [&](pqxx::work& tx) -> std::optional<UserRecord> {
    auto rows = tx.exec_prepared("users_update_display_name", id, display_name);
    if (rows.empty()) return std::nullopt;
    return read_user(rows[0]);
  });
}

bool UserStore::grant_role(const std::string& email, const std::string& role) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    auto updated = tx.exec_prepared("users_grant_role", email, role);
    if (!updated.empty()) return true;
    // Already held counts as granted; only a missing user is a failure.
    return !tx.exec_prepared("users_exists_by_email", email).empty();
  });
}

NewSession UserStore::start_session(const std::string& user_id, int refresh_ttl_s) {
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    NewSession session;
    session.session_id =
        tx.exec_prepared1("sessions_insert", user_id, refresh_ttl_s)[0].as<std::string>();
    session.refresh_token = new_refresh_token();
    tx.exec_prepared0("refresh_insert", token_hash(session.refresh_token), session.session_id);
    return session;
  });
}

RefreshResult UserStore::rotate_refresh_token(const std::string& refresh_token, int refresh_ttl_s) {
  // A refresh token is 43 base64url characters; anything else cannot exist.
  if (refresh_token.size() != 43 || !crypto::base64url_decode(refresh_token)) return {};
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    RefreshResult result;
    auto hash = token_hash(refresh_token);
    // Row locks serialize concurrent presentations of one token: the second one sees it used.
    auto rows = tx.exec_prepared("refresh_lock", hash);
    if (rows.empty()) return result;
    auto session_id = rows[0][0].as<std::string>();
    bool used = rows[0][1].as<bool>();
    bool dead = rows[0][2].as<bool>();
    auto user_id = rows[0][3].as<std::string>();
    result.session.session_id = session_id;
    if (used) {
      tx.exec_prepared("sessions_revoke", session_id, std::string("refresh_token_reuse"));
      result.outcome = RefreshOutcome::kReused;
      return result;
    }
    if (dead) {
      result.outcome = RefreshOutcome::kExpired;
      return result;
    }
    tx.exec_prepared0("refresh_mark_used", hash);
    result.session.refresh_token = new_refresh_token();
    tx.exec_prepared0("refresh_insert", token_hash(result.session.refresh_token), session_id);
    auto user_rows = tx.exec_prepared("users_by_id", user_id);
    if (user_rows.empty()) return RefreshResult{};
    result.user = read_user(user_rows[0]);
    result.outcome = RefreshOutcome::kRotated;
    return result;
  });
}

void UserStore::revoke_session(const std::string& session_id, const std::string& reason) {
  if (!is_uuid(session_id)) return;
  db::with_transaction(pool_, [&](pqxx::work& tx) {
    tx.exec_prepared("sessions_revoke", session_id, reason);
    return 0;
  });
}

}  // namespace trellis::users
