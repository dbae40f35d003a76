#include "trellis/common/digest.h"
#include "trellis/common/page_cursor.h"
#include "trellis/common/service_runtime.h"
#include "trellis/notifications/handlers.h"
#include "trellis/notifications/notification_proto.h"

namespace trellis::notifications {
namespace {

using grpc::Status;
using grpc::StatusCode;

// Names the listing in page tokens; unread-only and full listings do not share tokens.
std::string_view listing_of(bool unread_only) {
  return unread_only ? "trellis.notifications.unread.cursor" : "trellis.notifications.cursor";
}

bool signed_in(const service::CallContext& call) {
  return call.identity.authenticated() && is_uuid(call.identity.user_id);
}

Status unauthenticated() {
  return Status(StatusCode::UNAUTHENTICATED, "sign in first");
}

}  // namespace

Status NotificationHandler::ListNotifications(grpc::ServerContext* context,
                                              const v1::ListNotificationsRequest* request,
                                              v1::ListNotificationsResponse* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "NotificationService.ListNotifications", [&] {
    if (!signed_in(call)) return unauthenticated();
    int limit = 0;
    auto problem = check_page_size(request->has_limit(), request->limit(), limit);
    if (!problem.empty()) return Status(StatusCode::INVALID_ARGUMENT, problem);
    const auto& user_id = call.identity.user_id;
    auto listing = listing_of(request->unread_only());
    std::optional<int64_t> before;
    if (!request->page_token().empty()) {
      before = decode_page_cursor(listing, request->page_token(), user_id);
      if (!before) {
        return Status(StatusCode::INVALID_ARGUMENT, "page_token is not valid for this listing");
      }
    }
    auto page = store_.list(user_id, request->unread_only(), limit, before);
    for (const auto& n : page.notifications) to_proto(n, response->add_notifications());
    if (page.more) {
      response->set_next_page_token(
          encode_page_cursor(listing, page.notifications.back().seq, user_id));
    }
    return Status::OK;
  });
}

Status NotificationHandler::MarkNotificationRead(grpc::ServerContext* context,
                                                 const v1::MarkNotificationReadRequest* request,
                                                 v1::Notification* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "NotificationService.MarkNotificationRead", [&] {
    if (!signed_in(call)) return unauthenticated();
    // Not found whether it does not exist or is someone else's: ids cannot be probed.
    std::optional<NotificationRecord> marked;
    if (is_uuid(request->id())) marked = store_.mark_read(request->id(), call.identity.user_id);
    if (!marked) return Status(StatusCode::NOT_FOUND, "notification not found");
    to_proto(*marked, response);
    return Status::OK;
  });
}

Status NotificationHandler::GetUnreadCount(grpc::ServerContext* context,
                                           const v1::GetUnreadCountRequest*,
                                           v1::UnreadCount* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "NotificationService.GetUnreadCount", [&] {
    if (!signed_in(call)) return unauthenticated();
    response->set_unread_count(store_.unread_count(call.identity.user_id));
    return Status::OK;
  });
}

}  // namespace trellis::notifications
