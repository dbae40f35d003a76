#include "trellis/common/service_runtime.h"
#include "trellis/users/handlers.h"
#include "trellis/users/validation.h"

namespace trellis::users {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status unauthenticated() {
  return Status(StatusCode::UNAUTHENTICATED, "sign in first");
}

}  // namespace

Status UserHandler::GetMe(grpc::ServerContext* context, const v1::GetMeRequest*,
                          v1::User* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "UserService.GetMe", [&] {
    if (!call.identity.authenticated()) return unauthenticated();
    auto user = deps_.store.find_by_id(call.identity.user_id);
    if (!user) return Status(StatusCode::NOT_FOUND, "user not found");
    to_proto(*user, response);
    return Status::OK;
  });
}

Status UserHandler::UpdateMe(grpc::ServerContext* context, const v1::UpdateMeRequest* request,
                             v1::User* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "UserService.UpdateMe", [&] {
    if (!call.identity.authenticated()) return unauthenticated();
    std::optional<UserRecord> user;
    if (request->has_display_name()) {
      auto problem = check_display_name(request->display_name());
      if (!problem.empty()) return Status(StatusCode::INVALID_ARGUMENT, problem);
      user = deps_.store.update_display_name(call.identity.user_id, request->display_name());
    } else {
      user = deps_.store.find_by_id(call.identity.user_id);
    }
    if (!user) return Status(StatusCode::NOT_FOUND, "user not found");
    to_proto(*user, response);
    return Status::OK;
  });
}

Status UserHandler::GetUser(grpc::ServerContext* context, const v1::GetUserRequest* request,
                            v1::User* response) {
  auto call = service::call_context(*context, &deps_.tracer);
  return service::run_rpc(call, "UserService.GetUser", [&] {
    if (!call.identity.authenticated()) return unauthenticated();
    if (!call.identity.has_role("admin")) {
      return Status(StatusCode::PERMISSION_DENIED, "the admin role is required");
    }
    if (!is_uuid(request->id())) return Status(StatusCode::INVALID_ARGUMENT, "id must be a UUID");
    auto user = deps_.store.find_by_id(request->id());
    if (!user) return Status(StatusCode::NOT_FOUND, "user not found");
    to_proto(*user, response);
    return Status::OK;
  });
}

}  // namespace trellis::users
