// What every Trellis gRPC service process shares: the identity and trace context the gateway
// sends as metadata, and a server host with health checking, reflection and graceful shutdown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/common/log.h"
#include "trellis/common/metrics.h"
#include "trellis/common/service_metadata.h"
#include "trellis/common/trace.h"
#include "trellis/common/tracing.h"

namespace trellis::service {

struct Identity {
  std::string user_id;
  std::vector<std::string> roles;
  std::string token_id;
  std::string session_id;
  int64_t token_expires_at = 0;

  bool authenticated() const { return !user_id.empty(); }
  bool has_role(std::string_view role) const;
};

struct CallContext {
  std::string request_id;
  trace::TraceContext trace;          // this RPC's server span, child of the caller's
  tracing::Tracer* tracer = nullptr;  // null or disabled: spans are not exported
  std::string idempotency_key;        // empty when the client sent none
  std::string traceparent;
  Identity identity;
  log::RequestLog log;
};

// Reads request id, trace context and identity from the call's metadata. A call without a
// traceparent starts a new trace, so that service logs always carry one.
CallContext call_context(const grpc::ServerContext& context, tracing::Tracer* tracer = nullptr);

// Runs one RPC body and logs one line with its method, code and latency; exports its server span
// and makes it the thread's current span, so database and Redis spans become its children.
// Exceptions become statuses: an exhausted or unreachable database is UNAVAILABLE (the caller may
// retry), anything else INTERNAL with a generic message (details go to the log only, never to the
// client).
grpc::Status run_rpc(const CallContext& call, std::string_view method,
                     const std::function<grpc::Status()>& body);

// Asks the gateway to answer this call's error with `http_status` (4xx) and `code` instead of the
// canonical mapping of the gRPC status; the gRPC status and message still go with it.
void set_http_error(grpc::ServerContext& context, int http_status, std::string_view code);

std::string join_roles(const std::vector<std::string>& roles);
std::vector<std::string> split_roles(std::string_view text);

// Call first in main(), before any thread starts: SIGTERM/SIGINT are then delivered to
// ServiceHost::run_until_signal instead of killing the process mid-request.
void block_shutdown_signals();

// The main() of every service: blocks the shutdown signals, reads `--config FILE` and the
// remaining words (a sub-command such as `migrate`), runs `run`, and turns a configuration error
// into exit code 78 (EX_CONFIG) and any other escaping error into 1, both logged. Without
// --config it calls `usage`.
using ServiceMain =
    std::function<int(const std::string& config_path, const std::vector<std::string>& command)>;
int run_service_main(int argc, char** argv, const ServiceMain& run,
                     const std::function<int()>& usage);

// Owns the gRPC server of one service process.
class ServiceHost {
 public:
  // Every RPC is counted and timed in `registry` (grpc_server_handled_total,
  // grpc_server_handling_seconds) by a server interceptor, so handlers need no metrics code.
  // `idle_threads`: see RuntimeSettings::grpc_idle_threads (its default when not given).
  ServiceHost(std::string listen_address, metrics::Registry& registry, int idle_threads);
  ServiceHost(std::string listen_address, metrics::Registry& registry);
  // Same, with a registry of its own (see registry()).
  explicit ServiceHost(std::string listen_address);
  metrics::Registry& registry() { return registry_; }
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Services must outlive the host.
  void add_service(grpc::Service* service, std::string full_name);
  // Starts serving; health reports SERVING for "" and every added service — or NOT_SERVING
  // when `serving` is false, e.g. while migrations still run, until set_serving(). Throws when
  // the address cannot be bound.
  void start(bool serving = true);
  void set_serving();
  int bound_port() const { return bound_port_; }
  // Blocks until SIGTERM or SIGINT, then reports NOT_SERVING (clients that health-check stop
  // picking this replica), keeps serving for `drain_delay_ms`, stops accepting calls and lets
  // in-flight calls finish for up to `grace_ms`.
  void run_until_signal(int grace_ms = 10000, int drain_delay_ms = 0);

 private:
  std::string listen_address_;
  std::unique_ptr<metrics::Registry> owned_registry_;
  metrics::Registry& registry_;
  std::vector<std::pair<grpc::Service*, std::string>> services_;
  std::unique_ptr<grpc::Server> server_;
  int bound_port_ = 0;
  int idle_threads_;
};

}  // namespace trellis::service
