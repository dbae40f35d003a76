// Conversions between stored notifications and the API messages.
#pragma once

#include <string>

#include "trellis/notifications/notification.h"
#include "trellis/notifications/v1/notifications.pb.h"

namespace trellis::notifications {

void to_proto(const NotificationRecord& notification, v1::Notification* out);

// The notification as the REST API renders it (proto3 JSON, field names as in the .proto): what
// the live streams carry, so a pushed notification looks exactly like a listed one.
std::string api_json(const NotificationRecord& notification);

}  // namespace trellis::notifications
