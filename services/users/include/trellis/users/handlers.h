// The gRPC handlers of the users service. They trust only the identity metadata set by the
// gateway (see trellis/common/service_runtime.h), never identity fields in request messages.
#pragma once

#include "trellis/common/metrics.h"
#include "trellis/common/tracing.h"
#include "trellis/users/config.h"
#include "trellis/users/revocation.h"
#include "trellis/users/token_issuer.h"
#include "trellis/users/user_store.h"
#include "trellis/users/v1/users.grpc.pb.h"

namespace trellis::users {

struct Dependencies {
  UserStore& store;
  const TokenIssuer& tokens;
  RevocationPublisher& revocations;
  const Config& config;
  metrics::Registry& metrics;
  tracing::Tracer& tracer;
};

class AuthHandler final : public v1::AuthService::Service {
 public:
  explicit AuthHandler(Dependencies deps);

  grpc::Status Signup(grpc::ServerContext* context, const v1::SignupRequest* request,
                      v1::AuthResponse* response) override;
  grpc::Status Login(grpc::ServerContext* context, const v1::LoginRequest* request,
                     v1::AuthResponse* response) override;
  grpc::Status Refresh(grpc::ServerContext* context, const v1::RefreshRequest* request,
                       v1::AuthResponse* response) override;
  grpc::Status Logout(grpc::ServerContext* context, const v1::LogoutRequest* request,
                      google::protobuf::Empty* response) override;
  grpc::Status GetJwks(grpc::ServerContext* context, const v1::GetJwksRequest* request,
                       v1::Jwks* response) override;

 private:
  void fill_auth_response(const UserRecord& user, const NewSession& session,
                          v1::AuthResponse* response) const;

  Dependencies deps_;
  // Business counters: outcome is "ok" or the reason of the refusal.
  metrics::Family<metrics::Counter>& signups_;
  metrics::Family<metrics::Counter>& logins_;
  metrics::Family<metrics::Counter>& refreshes_;
};

class UserHandler final : public v1::UserService::Service {
 public:
  explicit UserHandler(Dependencies deps) : deps_(deps) {}

  grpc::Status GetMe(grpc::ServerContext* context, const v1::GetMeRequest* request,
                     v1::User* response) override;
  grpc::Status UpdateMe(grpc::ServerContext* context, const v1::UpdateMeRequest* request,
                        v1::User* response) override;
  grpc::Status GetUser(grpc::ServerContext* context, const v1::GetUserRequest* request,
                       v1::User* response) override;

 private:
  Dependencies deps_;
};

void to_proto(const UserRecord& user, v1::User* out);

}  // namespace trellis::users
