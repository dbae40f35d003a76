// The users service against real PostgreSQL and Redis (started by ./trellis test), called over
// gRPC through an in-process server, with identity metadata as the gateway would send it.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <pqxx/pqxx>
#include <thread>

#include "trellis/common/jwt.h"
#include "trellis/common/migrator.h"
#include "trellis/common/service_runtime.h"
#include "trellis/common/trace.h"
#include "trellis/testing/support.h"
#include "trellis/users/handlers.h"
#include "trellis/users/migrations.h"

namespace trellis::users {
namespace {

using testing::env_or_fail;

class UsersServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_host_ = env_or_fail("TRELLIS_TEST_PG_HOST");
    pg_port_ = env_or_fail("TRELLIS_TEST_PG_PORT");
    pg_user_ = env_or_fail("TRELLIS_TEST_PG_USER");
    redis_host_ = env_or_fail("TRELLIS_TEST_REDIS_HOST");
    redis_port_ = env_or_fail("TRELLIS_TEST_REDIS_PORT");
    ASSERT_FALSE(HasFailure());
    dbname_ = "users_it_" + trace::random_hex(6);
    admin_exec("CREATE DATABASE " + dbname_);

    keys_dir_ = std::filesystem::temp_directory_path() / ("users-keys-" + trace::random_hex(6));
    std::filesystem::create_directories(keys_dir_);
    std::ofstream(keys_dir_ / "k-old.pem") << jwt::SigningKey::generate("k-old").private_pem();
    std::ofstream(keys_dir_ / "k-new.pem") << jwt::SigningKey::generate("k-new").private_pem();

    config_.database.host = pg_host_;
    config_.database.port = std::stoi(pg_port_);
    config_.database.dbname = dbname_;
    config_.database.user = pg_user_;
    config_.database.pool_size = 4;
    config_.redis.host = redis_host_;
    config_.redis.port = std::stoi(redis_port_);
    config_.tokens.keys_dir = keys_dir_.string();
    config_.tokens.active_kid = "k-new";
    config_.tokens.issuer = "trellis-test";
    config_.tokens.audience = "trellis-api";
    config_.passwords.ops_limit = 1;
    config_.passwords.mem_limit_kib = 8192;

    pool_ = std::make_unique<db::PgPool>(config_.database, UserStore::prepare);
    {
      auto lease = pool_->acquire();
      db::migrate(*lease, migrations(), "trellis-users");
    }
    store_ = std::make_unique<UserStore>(*pool_);
    tokens_ = std::make_unique<TokenIssuer>(config_.tokens);
    revocations_ = std::make_unique<RevocationPublisher>(config_.redis);
    Dependencies deps{*store_, *tokens_, *revocations_, config_, registry_, tracer_};
    auth_ = std::make_unique<AuthHandler>(deps);
    user_ = std::make_unique<UserHandler>(deps);
    host_ = std::make_unique<service::ServiceHost>("127.0.0.1:0", registry_);
    host_->add_service(auth_.get(), v1::AuthService::service_full_name());
    host_->add_service(user_.get(), v1::UserService::service_full_name());
    host_->start();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(host_->bound_port()),
                                       grpc::InsecureChannelCredentials());
    auth_stub_ = v1::AuthService::NewStub(channel);
    user_stub_ = v1::UserService::NewStub(channel);
  }

  void TearDown() override {
    host_.reset();
    user_.reset();
    auth_.reset();
    store_.reset();
    pool_.reset();
    if (!dbname_.empty()) admin_exec("DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
    std::filesystem::remove_all(keys_dir_);
  }

  void admin_exec(const std::string& sql) {
    pqxx::connection admin("host=" + pg_host_ + " port=" + pg_port_ + " user=" + pg_user_ +
                           " dbname=postgres");
    pqxx::nontransaction tx(admin);
    tx.exec(sql);
  }

  // Metadata as the gateway sets it after verifying `token`.
  void identify(grpc::ClientContext& context, const std::string& token) {
    auto keys = jwt::KeySet();
    for (const auto& key : tokens_->published_keys()) keys.add(key);
    auto verified = jwt::verify(token, keys, {"trellis-test", "trellis-api", 30}, time(nullptr));
    ASSERT_TRUE(verified.ok()) << jwt::to_string(verified.error);
    context.AddMetadata("x-trellis-user-id", verified.claims.subject);
    context.AddMetadata("x-trellis-roles", service::join_roles(verified.claims.roles));
    context.AddMetadata("x-trellis-token-id", verified.claims.token_id);
    context.AddMetadata("x-trellis-session-id", verified.claims.session_id);
    context.AddMetadata("x-trellis-token-expires", std::to_string(verified.claims.expires_at));
  }

  v1::AuthResponse signup(const std::string& email,
                          grpc::StatusCode expected = grpc::StatusCode::OK) {
    grpc::ClientContext context;
    v1::SignupRequest request;
    request.set_email(email);
    request.set_password("correct horse battery");
    request.set_display_name("Ann");
    v1::AuthResponse response;
    auto status = auth_stub_->Signup(&context, request, &response);
    EXPECT_EQ(status.error_code(), expected) << status.error_message();
    return response;
  }

  grpc::Status login(const std::string& email, const std::string& password,
                     v1::AuthResponse* response) {
    grpc::ClientContext context;
    v1::LoginRequest request;
    request.set_email(email);
    request.set_password(password);
    return auth_stub_->Login(&context, request, response);
  }

  grpc::Status refresh(const std::string& token, v1::AuthResponse* response) {
    grpc::ClientContext context;
    v1::RefreshRequest request;
    request.set_refresh_token(token);
    return auth_stub_->Refresh(&context, request, response);
  }

  long long redis_ttl(const std::string& key) {
    auto* redis = redisConnect(redis_host_.c_str(), std::stoi(redis_port_));
    auto* reply = static_cast<redisReply*>(redisCommand(redis, "TTL %s", key.c_str()));
    long long ttl = reply ? reply->integer : -100;
    if (reply) freeReplyObject(reply);
    redisFree(redis);
    return ttl;
  }

  std::string pg_host_, pg_port_, pg_user_, redis_host_, redis_port_, dbname_;
  std::filesystem::path keys_dir_;
  Config config_;
  metrics::Registry registry_;
  tracing::Tracer tracer_{tracing::TracerOptions{}};
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<UserStore> store_;
  std::unique_ptr<TokenIssuer> tokens_;
  std::unique_ptr<RevocationPublisher> revocations_;
  std::unique_ptr<AuthHandler> auth_;
  std::unique_ptr<UserHandler> user_;
  std::unique_ptr<service::ServiceHost> host_;
  std::unique_ptr<v1::AuthService::Stub> auth_stub_;
  std::unique_ptr<v1::UserService::Stub> user_stub_;
};

TEST_F(UsersServiceTest, SignupIssuesVerifiableTokensAndStoresArgon2idHash) {
  auto response = signup("Ann@Example.com");
  EXPECT_EQ(response.user().email(), "Ann@Example.com");
  EXPECT_EQ(response.token_type(), "Bearer");
  EXPECT_EQ(response.expires_in(), 900);
  EXPECT_EQ(response.refresh_token().size(), 43u);
  EXPECT_EQ(response.user().roles_size(), 1);
  EXPECT_EQ(response.user().roles(0), "user");
  EXPECT_GT(response.user().created_at().seconds(), 1700000000);
  grpc::ClientContext context;
  identify(context, response.access_token());  // asserts it verifies with the published keys

  pqxx::connection check("host=" + pg_host_ + " port=" + pg_port_ + " user=" + pg_user_ +
                         " dbname=" + dbname_);
  pqxx::nontransaction tx(check);
  auto hash = tx.exec1("SELECT password_hash FROM users")[0].as<std::string>();
  EXPECT_EQ(hash.rfind("$argon2id$", 0), 0u) << hash;
  // Refresh tokens are stored hashed, never in clear.
  auto stored = tx.exec1("SELECT count(*) FROM refresh_tokens WHERE token_hash = " +
                         tx.quote(response.refresh_token()) + "::bytea")[0]
                    .as<int>();
  EXPECT_EQ(stored, 0);
}

TEST_F(UsersServiceTest, EmailsAreUniqueRegardlessOfCase) {
  signup("bob@example.com");
  signup("BOB@example.COM", grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(UsersServiceTest, ConcurrentSignupsWithOneEmailCreateOneUser) {
  std::vector<std::future<grpc::StatusCode>> results;
  for (int i = 0; i < 6; ++i) {
    results.push_back(std::async(std::launch::async, [this, i] {
      grpc::ClientContext context;
      v1::SignupRequest request;
      request.set_email(i % 2 ? "race@example.com" : "RACE@example.com");
      request.set_password("correct horse battery");
      request.set_display_name("R");
      v1::AuthResponse response;
      return auth_stub_->Signup(&context, request, &response).error_code();
    }));
  }
  int created = 0, duplicates = 0;
  for (auto& result : results) {
    auto code = result.get();
    created += code == grpc::StatusCode::OK;
    duplicates += code == grpc::StatusCode::ALREADY_EXISTS;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(duplicates, 5);
}

TEST_F(UsersServiceTest, InvalidSignupNamesTheField) {
  grpc::ClientContext context;
  v1::SignupRequest request;
  request.set_email("ann@example.com");
  request.set_password("short");
  request.set_display_name("Ann");
  v1::AuthResponse response;
  auto status = auth_stub_->Signup(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("password"), std::string::npos);
}

TEST_F(UsersServiceTest, WrongEmailAndWrongPasswordAreIndistinguishable) {
  signup("carol@example.com");
  v1::AuthResponse response;
  auto wrong_password = login("carol@example.com", "not the password", &response);
  auto wrong_email = login("nobody@example.com", "correct horse battery", &response);
  EXPECT_EQ(wrong_password.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong_email.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong_password.error_message(), wrong_email.error_message());
  EXPECT_TRUE(login("CAROL@example.com", "correct horse battery", &response).ok());
}

TEST_F(UsersServiceTest, RefreshRotatesAndReuseRevokesTheFamily) {
  auto first = signup("dave@example.com");
  v1::AuthResponse second;
  ASSERT_TRUE(refresh(first.refresh_token(), &second).ok());
  EXPECT_NE(second.refresh_token(), first.refresh_token());
  EXPECT_NE(second.access_token(), first.access_token());

  // Replaying the used token is theft or a bug: 401 and the whole family dies...
  v1::AuthResponse replay;
  auto status = refresh(first.refresh_token(), &replay);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // ...including the newest token, and access tokens of the session are revoked in Redis.
  v1::AuthResponse after;
  EXPECT_EQ(refresh(second.refresh_token(), &after).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext context;
  identify(context, second.access_token());
  auto sid = jwt::verify(
                 second.access_token(),
                 [&] {
                   jwt::KeySet keys;
                   for (const auto& key : tokens_->published_keys()) keys.add(key);
                   return keys;
                 }(),
                 {"trellis-test", "trellis-api", 30}, time(nullptr))
                 .claims.session_id;
  EXPECT_GT(redis_ttl(revoked_session_key(sid)), 0);
}

TEST_F(UsersServiceTest, UnknownRefreshTokenIsUnauthenticated) {
  v1::AuthResponse response;
  EXPECT_EQ(refresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(refresh("not-a-token", &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(UsersServiceTest, LogoutRevokesTheTokenAndTheSession) {
  auto auth = signup("erin@example.com");
  grpc::ClientContext context;
  identify(context, auth.access_token());
  v1::LogoutRequest request;
  google::protobuf::Empty empty;
  ASSERT_TRUE(auth_stub_->Logout(&context, request, &empty).ok());
  v1::AuthResponse response;
  EXPECT_EQ(refresh(auth.refresh_token(), &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  jwt::KeySet keys;
  for (const auto& key : tokens_->published_keys()) keys.add(key);
  auto claims =
      jwt::verify(auth.access_token(), keys, {"trellis-test", "trellis-api", 30}, time(nullptr))
          .claims;
  auto ttl = redis_ttl(revoked_token_key(claims.token_id));
  EXPECT_GT(ttl, 900);  // outlives the token (exp + leeway margin)
  EXPECT_LE(ttl, 900 + 60);
}

TEST_F(UsersServiceTest, ProfileNeedsIdentityAndAdminRouteNeedsAdmin) {
  auto auth = signup("fay@example.com");
  {
    grpc::ClientContext anonymous;
    v1::User user;
    EXPECT_EQ(user_stub_->GetMe(&anonymous, {}, &user).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    identify(context, auth.access_token());
    v1::UpdateMeRequest update;
    update.set_display_name("Fay Doe");
    v1::User user;
    ASSERT_TRUE(user_stub_->UpdateMe(&context, update, &user).ok());
    EXPECT_EQ(user.display_name(), "Fay Doe");
  }
  {
    grpc::ClientContext context;
    identify(context, auth.access_token());
    v1::GetUserRequest request;
    request.set_id(auth.user().id());
    v1::User user;
    EXPECT_EQ(user_stub_->GetUser(&context, request, &user).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  ASSERT_TRUE(store_->grant_role("FAY@example.com", "admin"));
  ASSERT_TRUE(store_->grant_role("fay@example.com", "admin"));  // idempotent
  EXPECT_FALSE(store_->grant_role("nobody@example.com", "admin"));
  v1::AuthResponse relogin;
  ASSERT_TRUE(login("fay@example.com", "correct horse battery", &relogin).ok());
  EXPECT_EQ(relogin.user().roles_size(), 2);
  grpc::ClientContext context;
  identify(context, relogin.access_token());
  v1::GetUserRequest request;
  request.set_id(auth.user().id());
  v1::User user;
  ASSERT_TRUE(user_stub_->GetUser(&context, request, &user).ok());
  EXPECT_EQ(user.display_name(), "Fay Doe");
}

TEST_F(UsersServiceTest, JwksPublishesEveryKeyForRotation) {
  grpc::ClientContext context;
  v1::Jwks jwks;
  ASSERT_TRUE(auth_stub_->GetJwks(&context, {}, &jwks).ok());
  ASSERT_EQ(jwks.keys_size(), 2);
  for (const auto& key : jwks.keys()) {
    EXPECT_EQ(key.kty(), "OKP");
    EXPECT_EQ(key.crv(), "Ed25519");
    EXPECT_EQ(key.alg(), "EdDSA");
  }
}

TEST_F(UsersServiceTest, HealthCheckReportsServing) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(host_->bound_port()),
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  // HealthCheckRequest{} is empty; SERVING is field 1 = 1.
  grpc::ClientContext context;
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) { done.set_value(status); });
  ASSERT_TRUE(done.get_future().get().ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

}  // namespace
}  // namespace trellis::users

namespace trellis::users {
namespace {

TEST_F(UsersServiceTest, EveryRpcAndBusinessOutcomeIsCounted) {
  signup("metrics@example.com");
  signup("METRICS@example.com", grpc::StatusCode::ALREADY_EXISTS);
  v1::AuthResponse response;
  EXPECT_FALSE(login("metrics@example.com", "wrong password!", &response).ok());
  auto text = registry_.render();
  EXPECT_NE(text.find("grpc_server_handled_total{method=\"/trellis.users.v1.AuthService/Signup\","
                      "code=\"OK\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("grpc_server_handled_total{method=\"/trellis.users.v1.AuthService/Signup\","
                      "code=\"ALREADY_EXISTS\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("users_signups_total{outcome=\"duplicate_email\"} 1"), std::string::npos);
  EXPECT_NE(text.find("users_logins_total{outcome=\"bad_credentials\"} 1"), std::string::npos);
  EXPECT_NE(text.find("grpc_server_handling_seconds_count{method=\"/trellis.users.v1.AuthService/"
                      "Login\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace trellis::users

namespace trellis::service {
namespace {

std::string health_bytes(int port) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) { done.set_value(status); });
  if (!done.get_future().get().ok()) return "error";
  std::vector<grpc::Slice> slices;
  response.Dump(&slices);
  std::string bytes;
  for (auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  return bytes;
}

TEST(ServiceHost, ReportsNotServingUntilReady) {
  metrics::Registry registry;
  ServiceHost host("127.0.0.1:0", registry);
  host.start(/*serving=*/false);
  EXPECT_EQ(health_bytes(host.bound_port()), std::string("\x08\x02", 2));  // NOT_SERVING
  host.set_serving();
  EXPECT_EQ(health_bytes(host.bound_port()), std::string("\x08\x01", 2));  // SERVING
}

}  // namespace
}  // namespace trellis::service
