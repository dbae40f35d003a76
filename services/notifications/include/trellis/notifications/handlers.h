// The gRPC handler of the notifications service. It trusts only the identity metadata set by the
// gateway (see trellis/common/service_runtime.h).
#pragma once

#include "trellis/common/tracing.h"
#include "trellis/notifications/notification_store.h"
#include "trellis/notifications/v1/notifications.grpc.pb.h"

namespace trellis::notifications {

class NotificationHandler final : public v1::NotificationService::Service {
 public:
  NotificationHandler(NotificationStore& store, tracing::Tracer& tracer)
      : store_(store), tracer_(tracer) {}

  grpc::Status ListNotifications(grpc::ServerContext* context,
                                 const v1::ListNotificationsRequest* request,
                                 v1::ListNotificationsResponse* response) override;
  grpc::Status MarkNotificationRead(grpc::ServerContext* context,
                                    const v1::MarkNotificationReadRequest* request,
                                    v1::Notification* response) override;
  grpc::Status GetUnreadCount(grpc::ServerContext* context,
                              const v1::GetUnreadCountRequest* request,
                              v1::UnreadCount* response) override;

 private:
  NotificationStore& store_;
  tracing::Tracer& tracer_;
};

}  // namespace trellis::notifications
