// The long-lived side of live push: an SSE writer or a WebSocket over a connection taken over from
// the HTTP server. Beast stays in push_session.cc; this header only names what the filter needs.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "trellis/common/jwt.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/push_hub.h"

namespace trellis::gateway {

// Who a stream belongs to: only what the session needs of the verified token (kept small: one
// per open connection).
struct PushIdentity {
  std::string user_id;
  std::string token_id;
  std::string session_id;
  int64_t expires_at = 0;  // unix seconds
  static PushIdentity from(const jwt::Claims& claims) {
    return {claims.subject, claims.token_id, claims.session_id, claims.expires_at};
  }
};

// Result of authenticating a token (signature, claims, revocation) for a WebSocket that sent it
// in its first message.
struct PushAuthResult {
  PushEnd failure = PushEnd::kAuthFailed;  // meaningful when !ok
  bool ok = false;
  PushIdentity identity;
};
// Verifies a token; `done` may run on any thread.
using PushAuthenticator =
    std::function<void(std::string token, std::function<void(PushAuthResult)> done)>;

struct PushSessionParams {
  PushTransport transport = PushTransport::kSse;
  std::string last_event_id;        // replay after this id; empty: live only
  bool authenticated = false;       // false: WebSocket waiting for {"type":"auth"}
  PushIdentity identity;            // when authenticated
  bool select_subprotocol = false;  // WebSocket: answer Sec-WebSocket-Protocol v1
  PushAuthenticator authenticator;  // WebSocket first-message auth
};

class StreamSession : public PushSession {
 public:
  // Starts the session on the taken-over connection; `request` is the upgrade / SSE request,
  // `head` the response head the filters prepared (status, request id and CORS headers).
  virtual void attach(TakenOverConnectionPtr connection, const HttpRequest& request,
                      HttpResponse head) = 0;
};

// Creates a session that is admitted (PushHub::admit) but not started: an authenticated one is
// bound to its user by the caller before the takeover, so that nothing published between the
// replay read and going live is lost.
std::shared_ptr<StreamSession> make_stream_session(PushHub& hub, PushSessionParams params);

}  // namespace trellis::gateway
