#include "trellis/users/config.h"

#include "trellis/common/config.h"
#include "trellis/common/log.h"

namespace trellis::users {

Config load_config(const std::string& path) {
  auto merged = config::load_with_env(path, "TRELLIS_USERS");
  config::ObjectReader root(merged, "users");
  Config out;
  out.effective_json = config::redact(merged).dump();

  service::read_runtime_settings(root, out);
  service::read_database_settings(root.get_object("database"), out.database, "trellis_users");
  out.migrate_on_start = root.get_bool("migrate_on_start", out.migrate_on_start);
  service::read_redis_settings(root.get_object("redis"), out.redis);

  auto tokens = root.get_object("tokens");
  auto& t = out.tokens;
  t.issuer = tokens.get_string("issuer", t.issuer);
  t.audience = tokens.get_string("audience", t.audience);
  t.access_ttl_s = static_cast<int>(tokens.get_int("access_ttl_s", t.access_ttl_s, 1, 86400));
  t.refresh_ttl_s =
      static_cast<int>(tokens.get_int("refresh_ttl_s", t.refresh_ttl_s, 60, 31536000));
  t.keys_dir = tokens.require_string("keys_dir");
  t.active_kid = tokens.require_string("active_kid");
  tokens.reject_unknown_keys();

  auto passwords = root.get_object("passwords");
  auto& p = out.passwords;
  // Lower bounds keep tests fast without allowing a production config below libsodium's minimum.
  p.ops_limit = static_cast<int>(passwords.get_int("ops_limit", p.ops_limit, 1, 10));
  p.mem_limit_kib =
      static_cast<int>(passwords.get_int("mem_limit_kib", p.mem_limit_kib, 8, 4 * 1024 * 1024));
  passwords.reject_unknown_keys();

  root.reject_unknown_keys();
  return out;
}

}  // namespace trellis::users
