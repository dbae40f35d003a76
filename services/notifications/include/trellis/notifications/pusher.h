// Hands new notifications to the gateways' live streams (GET /v1/notifications/stream).
//
// Per notification, one Lua script (atomic, so both streams get it in the same order):
//   id = XADD <user_stream_prefix><user_id> MAXLEN ~ <user_stream_maxlen> * notification <json>
//   PEXPIRE <user stream> <user_stream_ttl_s>        -- the user's resume log (Last-Event-ID)
//   XADD <stream> MAXLEN ~ <stream_maxlen> * user_id <user_id> id <id> notification <json>
// Every gateway XREADs <stream> (fan-out to all replicas) and delivers to that user's connections;
// `id` is the event id clients see and resume from. Pushing is at least once: the event's stream
// entry is acknowledged after the script ran, and an entry delivered again is pushed again, so
// clients deduplicate on the notification's own id.
#pragma once

#include <string>
#include <vector>

#include "trellis/notifications/config.h"
#include "trellis/notifications/notification.h"

namespace trellis::notifications {

class Pusher {
 public:
  explicit Pusher(PushConfig config) : config_(std::move(config)) {}

  // The EVAL command that pushes one notification.
  std::vector<std::string> push_command(const NotificationRecord& notification) const;

 private:
  PushConfig config_;
};

}  // namespace trellis::notifications
