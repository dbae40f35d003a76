#include "trellis/notifications/notification_proto.h"

#include "trellis/common/proto_json.h"

namespace trellis::notifications {
namespace {

void set_timestamp(int64_t unix_us, google::protobuf::Timestamp* out) {
  out->set_seconds(unix_us / 1000000);
  out->set_nanos(static_cast<int32_t>((unix_us % 1000000) * 1000));
}

}  // namespace

void to_proto(const NotificationRecord& n, v1::Notification* out) {
  out->set_id(n.id);
  out->set_type(n.type);
  out->set_order_id(n.order_id);
  out->set_title(n.title);
  out->set_read(n.read_at_us.has_value());
  set_timestamp(n.created_at_us, out->mutable_created_at());
  if (n.read_at_us) set_timestamp(*n.read_at_us, out->mutable_read_at());
}

std::string api_json(const NotificationRecord& notification) {
  v1::Notification message;
  to_proto(notification, &message);
  return service::to_api_json(message);
}

}  // namespace trellis::notifications
