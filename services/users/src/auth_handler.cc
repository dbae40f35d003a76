#include <chrono>

#include "trellis/common/password.h"
#include "trellis/common/service_runtime.h"
#include "trellis/users/handlers.h"
#include "trellis/users/validation.h"

namespace trellis::users {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status invalid(const std::string& message) {
  return Status(StatusCode::INVALID_ARGUMENT, message);
}

// One message for unknown email and wrong password, so that login cannot probe for accounts.
Status bad_credentials() {
  return Status(StatusCode::UNAUTHENTICATED, "invalid email or password");
}

password::Params hashing_params(const PasswordConfig& config) {
  password::Params params;
  params.ops_limit = static_cast<uint64_t>(config.ops_limit);
  params.mem_limit_bytes = static_cast<size_t>(config.mem_limit_kib) * 1024;
  return params;
}

// Verifying against a real hash when the email is unknown makes both failures cost the same time.
const std::string& decoy_hash(const PasswordConfig& config) {
  static const std::string hash =
      password::hash("decoy-password-never-matches", hashing_params(config));
  return hash;
}

}  // namespace

void to_proto(const UserRecord& user, v1::User* out) {
  out->set_id(user.id);
  out->set_email(user.email);
  out->set_display_name(user.display_name);
  for (const auto& role : user.roles) out->add_roles(role);
  out->mutable_created_at()->set_seconds(user.created_at_us / 1000000);
  out->mutable_created_at()->set_nanos(static_cast<int32_t>(user.created_at_us % 1000000) * 1000);
}

AuthHandler::AuthHandler(Dependencies deps)
    : deps_(deps),
      signups_(deps.metrics.counter("users_signups_total", "Sign-ups by outcome", {"outcome"})),
      logins_(deps.metrics.counter("users_logins_total", "Logins by outcome", {"outcome"})),
      refreshes_(deps.metrics.counter("users_token_refreshes_total", "Refreshes by outcome",
                                      {"outcome"})) {}

void AuthHandler::fill_auth_response(const UserRecord& user, const NewSession& session,
                                     v1::AuthResponse* response) const {
  auto access = deps_.tokens.issue(user, session.session_id);
  to_proto(user, response->mutable_user());
  response->set_access_token(access.token);
  response->set_refresh_token(session.refresh_token);
  response->set_token_type("Bearer");
  response->set_expires_in(access.expires_in);
}

Status AuthHandler::Signup(grpc::ServerContext* context, const v1::SignupRequest* request,
                           v1::AuthResponse* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "AuthService.Signup", [&] {
    if (auto problem = check_email(request->email()); !problem.empty()) return invalid(problem);
    if (auto problem = check_password(request->password()); !problem.empty())
      return invalid(problem);
    if (auto problem = check_display_name(request->display_name()); !problem.empty()) {
      return invalid(problem);
    }
    auto hash = password::hash(request->password(), hashing_params(deps_.config.passwords));
    UserRecord user;
    try {
      user = deps_.store.create_user(request->email(), request->display_name(), hash);
    } catch (const DuplicateEmail&) {
      signups_.with({"duplicate_email"}).inc();
      return Status(StatusCode::ALREADY_EXISTS, "an account with this email already exists");
    }
    signups_.with({"ok"}).inc();
    auto session = deps_.store.start_session(user.id, deps_.config.tokens.refresh_ttl_s);
    fill_auth_response(user, session, response);
    call.log.info("user signed up", {{"user_id", user.id}});
    return Status::OK;
  });
}

Status AuthHandler::Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                          v1::AuthResponse* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "AuthService.Login", [&] {
    if (request->email().empty() || request->password().empty()) {
      return invalid("email and password are required");
    }
    if (request->password().size() > kMaxPasswordBytes) return bad_credentials();
    auto credentials = deps_.store.find_credentials(request->email());
    if (!credentials) {
      password::verify(decoy_hash(deps_.config.passwords), request->password());
      logins_.with({"bad_credentials"}).inc();
      return bad_credentials();
    }
    if (!password::verify(credentials->second, request->password())) {
      logins_.with({"bad_credentials"}).inc();
      return bad_credentials();
    }
    logins_.with({"ok"}).inc();
    auto session =
        deps_.store.start_session(credentials->first.id, deps_.config.tokens.refresh_ttl_s);
    fill_auth_response(credentials->first, session, response);
    return Status::OK;
  });
}

Status AuthHandler::Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                            v1::AuthResponse* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "AuthService.Refresh", [&] {
    if (request->refresh_token().empty()) return invalid("refresh_token is required");
    auto result = deps_.store.rotate_refresh_token(request->refresh_token(),
                                                   deps_.config.tokens.refresh_ttl_s);
    switch (result.outcome) {
      case RefreshOutcome::kRotated:
        refreshes_.with({"ok"}).inc();
        fill_auth_response(result.user, result.session, response);
        return Status::OK;
      case RefreshOutcome::kReused:
        refreshes_.with({"reuse_detected"}).inc();
        // Someone replayed a rotated token: the family is revoked in the database; its access
        // tokens must stop at the gateway too.
        call.log.warn("refresh token reuse, session revoked",
                      {{"session_id", result.session.session_id}});
        deps_.revocations.revoke_session(result.session.session_id,
                                         deps_.config.tokens.access_ttl_s + 60);
        return Status(StatusCode::UNAUTHENTICATED, "refresh token already used; session revoked");
      case RefreshOutcome::kExpired:
        refreshes_.with({"expired"}).inc();
        return Status(StatusCode::UNAUTHENTICATED, "refresh token expired or revoked");
      case RefreshOutcome::kUnknown:
        break;
    }
    return Status(StatusCode::UNAUTHENTICATED, "invalid refresh token");
  });
}

Status AuthHandler::Logout(grpc::ServerContext* context, const v1::LogoutRequest*,
                           google::protobuf::Empty*) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "AuthService.Logout", [&] {
    const auto& identity = call.identity;
    if (!identity.authenticated()) return Status(StatusCode::UNAUTHENTICATED, "sign in first");
    if (!identity.session_id.empty()) deps_.store.revoke_session(identity.session_id, "logout");
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    // Kept until the token would have expired anyway (plus the gateway's clock leeway).
    auto ttl = std::max<int64_t>(identity.token_expires_at - now, 0) + 60;
    try {
      if (!identity.token_id.empty()) deps_.revocations.revoke_token(identity.token_id, ttl);
      if (!identity.session_id.empty()) {
        deps_.revocations.revoke_session(identity.session_id,
                                         deps_.config.tokens.access_ttl_s + 60);
      }
    } catch (const std::exception& e) {
      call.log.error("revocation not published", {{"error", e.what()}});
      return Status(StatusCode::UNAVAILABLE, "logout could not be completed, retry");
    }
    return Status::OK;
  });
}

Status AuthHandler::GetJwks(grpc::ServerContext* context, const v1::GetJwksRequest*,
                            v1::Jwks* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "AuthService.GetJwks", [&] {
    for (const auto& jwk : deps_.tokens.published_keys()) {
      auto* key = response->add_keys();
      key->set_kty("OKP");
      key->set_crv("Ed25519");
      key->set_x(jwk.x);
      key->set_kid(jwk.kid);
      key->set_alg("EdDSA");
      key->set_use("sig");
    }
    return Status::OK;
  });
}

}  // namespace trellis::users
