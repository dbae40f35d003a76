#include "trellis/notifications/pusher.h"

#include "trellis/notifications/notification_proto.h"

namespace trellis::notifications {
namespace {

constexpr const char* kPushScript = R"lua(
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'notification', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'user_id', ARGV[5], 'id', id,
           'notification', ARGV[3])
return id
)lua";

}  // namespace

std::vector<std::string> Pusher::push_command(const NotificationRecord& notification) const {
  return {"EVAL",
          kPushScript,
          "2",
          config_.user_stream_prefix + notification.user_id,
          config_.stream,
          std::to_string(config_.user_stream_maxlen),
          std::to_string(static_cast<int64_t>(config_.user_stream_ttl_s) * 1000),
          api_json(notification),
          std::to_string(config_.stream_maxlen),
          notification.user_id};
}

}  // namespace trellis::notifications
