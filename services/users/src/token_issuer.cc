#include "trellis/users/token_issuer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "trellis/common/log.h"
#include "trellis/common/trace.h"

namespace trellis::users {
namespace {

std::optional<jwt::SigningKey> load_keys(const TokenConfig& config,
                                         std::vector<jwt::PublicJwk>& published) {
  namespace fs = std::filesystem;
  std::optional<jwt::SigningKey> active;
  if (!fs::is_directory(config.keys_dir)) {
    throw std::runtime_error("tokens.keys_dir is not a directory: " + config.keys_dir);
  }
  for (const auto& entry : fs::directory_iterator(config.keys_dir)) {
    if (entry.path().extension() != ".pem") continue;
    auto kid = entry.path().stem().string();
    auto key = jwt::SigningKey::load_pem_file(entry.path().string(), kid);
    published.push_back(key.public_jwk());
    if (kid == config.active_kid) active = key;
    log::info("signing key loaded", {{"kid", kid}, {"active", kid == config.active_kid}});
  }
  return active;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

jwt::SigningKey require_active(std::optional<jwt::SigningKey> key, const TokenConfig& config) {
  if (!key) {
    throw std::runtime_error("no key " + config.active_kid + ".pem in " + config.keys_dir);
  }
  return *key;
}

}  // namespace

TokenIssuer::TokenIssuer(const TokenConfig& config)
    : config_(config), signing_key_(require_active(load_keys(config, published_), config)) {}

AccessToken TokenIssuer::issue(const UserRecord& user, const std::string& session_id) const {
  jwt::Claims claims;
  claims.issuer = config_.issuer;
  claims.audience = config_.audience;
  claims.subject = user.id;
  claims.token_id = trace::random_hex(16);
  claims.session_id = session_id;
  claims.roles = user.roles;
  claims.issued_at = now_seconds();
  claims.expires_at = claims.issued_at + config_.access_ttl_s;
  AccessToken out;
  out.token = signing_key_.sign(claims);
  out.token_id = claims.token_id;
  out.expires_at = claims.expires_at;
  out.expires_in = config_.access_ttl_s;
  return out;
}

}  // namespace trellis::users
