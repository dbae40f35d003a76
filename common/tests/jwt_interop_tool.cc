// Produces and checks tokens for tests/pyjwt_interop.py, so that an independent JWT library
// (PyJWT) judges our tokens and our verifier judges PyJWT's.
//
//   jwt_interop_tool OUTDIR
//       signs a token with a fresh key (kid "interop-1") and writes OUTDIR/token.txt and
//       OUTDIR/jwks.json.
//   jwt_interop_tool --verify JWKS_FILE TOKEN_FILE
//       verifies the token (iss "trellis-test", aud "trellis-api", now) and prints one JSON line:
//       {"error":"none", "claims":{...}} on success (exit 0) or {"error":"<name>"} (exit 1).
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "trellis/common/jwt.h"

namespace {

using trellis::jwt::Claims;

constexpr const char* kIssuer = "trellis-test";
constexpr const char* kAudience = "trellis-api";

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

int sign_into(const std::filesystem::path& out_dir) {
  auto key = trellis::jwt::SigningKey::generate("interop-1");
  Claims claims;
  claims.issuer = kIssuer;
  claims.audience = kAudience;
  claims.subject = "user-1234";
  claims.token_id = "jti-5678";
  claims.session_id = "session-9abc";
  claims.roles = {"user", "admin"};
  claims.issued_at = now_seconds();
  claims.expires_at = claims.issued_at + 300;
  trellis::jwt::KeySet keys;
  keys.add(key.public_jwk());
  write_file(out_dir / "token.txt", key.sign(claims));
  write_file(out_dir / "jwks.json", keys.to_jwks_json());
  return 0;
}

int verify_file(const std::string& jwks_path, const std::string& token_path) {
  auto keys = trellis::jwt::KeySet::from_jwks_json(read_file(jwks_path));
  std::string token = read_file(token_path);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  auto result = trellis::jwt::verify(token, keys, {kIssuer, kAudience}, now_seconds());
  nlohmann::json out = {{"error", trellis::jwt::to_string(result.error)}};
  if (result.ok()) {
    const Claims& c = result.claims;
    out["claims"] = {{"iss", c.issuer},    {"sub", c.subject},    {"aud", c.audience},
                     {"jti", c.token_id},  {"sid", c.session_id}, {"roles", c.roles},
                     {"iat", c.issued_at}, {"nbf", c.not_before}, {"exp", c.expires_at}};
  }
  std::cout << out.dump() << "\n";
  return result.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2) return sign_into(argv[1]);
    if (argc == 4 && std::string(argv[1]) == "--verify") return verify_file(argv[2], argv[3]);
    std::cerr << "usage: jwt_interop_tool OUTDIR | --verify JWKS_FILE TOKEN_FILE\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "jwt_interop_tool: " << e.what() << "\n";
    return 2;
  }
}
