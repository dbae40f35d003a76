#include "trellis/common/service_runtime.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <signal.h>

#include <chrono>
#include <pqxx/except>
#include <stdexcept>
#include <thread>

#include "trellis/common/config.h"
#include "trellis/common/pg_pool.h"
#include "trellis/common/service_config.h"

#include "trellis/common/trace.h"

namespace trellis::service {
namespace {

std::string metadata_value(const grpc::ServerContext& context, std::string_view key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

bool Identity::has_role(std::string_view role) const {
  for (const auto& held : roles) {
    if (held == role) return true;
  }
  return false;
}

void set_http_error(grpc::ServerContext& context, int http_status, std::string_view code) {
  context.AddTrailingMetadata(std::string(kHttpStatusTrailer), std::to_string(http_status));
  context.AddTrailingMetadata(std::string(kErrorCodeTrailer), std::string(code));
}

std::string join_roles(const std::vector<std::string>& roles) {
  std::string joined;
  for (const auto& role : roles) {
    if (!joined.empty()) joined += ',';
    joined += role;
  }
  return joined;
}

std::vector<std::string> split_roles(std::string_view text) {
  std::vector<std::string> roles;
  while (!text.empty()) {
    auto comma = text.find(',');
    auto part = text.substr(0, comma);
    if (!part.empty()) roles.emplace_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return roles;
}

CallContext call_context(const grpc::ServerContext& context, tracing::Tracer* tracer) {
  CallContext call;
  call.request_id = metadata_value(context, trace::kRequestIdHeader);
  if (!trace::is_well_formed_request_id(call.request_id)) call.request_id = trace::new_request_id();
  auto trace_context = trace::continue_or_start(metadata_value(context, trace::kTraceparentHeader));
  call.traceparent = trace_context.traceparent();
  call.trace = trace_context;
  call.tracer = tracer;
  call.idempotency_key = metadata_value(context, kIdempotencyKey);
  call.identity.user_id = metadata_value(context, kUserIdKey);
  call.identity.roles = split_roles(metadata_value(context, kRolesKey));
  call.identity.token_id = metadata_value(context, kTokenIdKey);
  call.identity.session_id = metadata_value(context, kSessionIdKey);
  auto expires = metadata_value(context, kTokenExpiresKey);
  if (!expires.empty()) {
    try {
      call.identity.token_expires_at = std::stoll(expires);
    } catch (const std::exception&) {
      call.identity.token_expires_at = 0;
    }
  }
  call.log = log::RequestLog(call.request_id, trace_context.trace_id, trace_context.span_id);
  return call;
}

grpc::Status run_rpc(const CallContext& call, std::string_view method,
                     const std::function<grpc::Status()>& body) {
  auto started = std::chrono::steady_clock::now();
  auto started_unix = tracing::now_unix_nanos();
  tracing::ScopedCurrentSpan scope({call.tracer, call.trace.trace_id, call.trace.span_id});
  grpc::Status status;
  try {
    status = body();
  } catch (const db::PoolTimeout& e) {
    call.log.warn("database pool exhausted", {{"method", method}});
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "database busy, retry later");
  } catch (const pqxx::broken_connection& e) {
    call.log.error("database unreachable", {{"method", method}, {"error", e.what()}});
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "database unavailable");
  } catch (const std::exception& e) {
    call.log.error("rpc failed", {{"method", method}, {"error", e.what()}});
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - started)
                    .count();
  if (call.tracer && call.tracer->enabled()) {
    tracing::Span span;
    span.trace_id = call.trace.trace_id;
    span.span_id = call.trace.span_id;
    span.parent_span_id = call.trace.parent_id;
    span.name = std::string(method);
    span.kind = tracing::SpanKind::kServer;
    span.start_unix_nanos = started_unix;
    span.end_unix_nanos = tracing::now_unix_nanos();
    span.attributes = {{"rpc.system", "grpc"},
                       {"rpc.method", std::string(method)},
                       {"rpc.grpc.status_code", std::to_string(status.error_code())},
                       {"request_id", call.request_id}};
    span.error = status.error_code() == grpc::StatusCode::INTERNAL ||
                 status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 status.error_code() == grpc::StatusCode::UNKNOWN;
    call.tracer->record(std::move(span));
  }
  call.log.info("rpc", {{"method", method},
                        {"code", static_cast<int>(status.error_code())},
                        {"latency_ms", static_cast<double>(micros) / 1000.0},
                        {"user_id", call.identity.user_id}});
  return status;
}

namespace {

struct RpcMetrics {
  metrics::Family<metrics::Counter>& handled;
  metrics::Family<metrics::Histogram>& latency;
};

std::string status_code_name(grpc::StatusCode code) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  auto index = static_cast<size_t>(code);
  return index < std::size(kNames) ? kNames[index] : "UNKNOWN";
}

// Times each RPC from its creation to the status being sent and counts it by method and code.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(RpcMetrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      auto code = methods->GetSendStatus().error_code();
      std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - started_;
      metrics_.handled.with({method_, status_code_name(code)}).inc();
      metrics_.latency.with({method_}).observe(seconds.count());
    }
    methods->Proceed();
  }

 private:
  RpcMetrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(metrics::Registry& registry)
      : metrics_{registry.counter("grpc_server_handled_total",
                                  "RPCs completed, by method and status code", {"method", "code"}),
                 registry.histogram("grpc_server_handling_seconds",
                                    "RPC latency from arrival to status", {"method"})} {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info->method());
  }

 private:
  RpcMetrics metrics_;
};

}  // namespace

ServiceHost::ServiceHost(std::string listen_address, metrics::Registry& registry, int idle_threads)
    : listen_address_(std::move(listen_address)),
      registry_(registry),
      idle_threads_(idle_threads) {}

ServiceHost::ServiceHost(std::string listen_address, metrics::Registry& registry)
    : ServiceHost(std::move(listen_address), registry, RuntimeSettings{}.grpc_idle_threads) {}

ServiceHost::ServiceHost(std::string listen_address)
    : listen_address_(std::move(listen_address)),
      owned_registry_(std::make_unique<metrics::Registry>()),
      registry_(*owned_registry_),
      idle_threads_(RuntimeSettings{}.grpc_idle_threads) {}

ServiceHost::~ServiceHost() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void ServiceHost::add_service(grpc::Service* service, std::string full_name) {
  services_.emplace_back(service, std::move(full_name));
}

void ServiceHost::start(bool serving) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address_, grpc::InsecureServerCredentials(), &bound_port_);
  // Requests from the gateway are bounded at 1 MiB of JSON; protobuf is smaller.
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, idle_threads_);
  for (auto& [service, name] : services_) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MetricsInterceptorFactory>(registry_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (!server_ || bound_port_ == 0) {
    throw std::runtime_error("cannot listen on " + listen_address_);
  }
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  for (auto& [service, name] : services_) health->SetServingStatus(name, serving);
  log::info("grpc server listening",
            {{"address", listen_address_}, {"port", bound_port_}, {"serving", serving}});
}

void ServiceHost::set_serving() {
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (auto& [service, name] : services_) health->SetServingStatus(name, true);
  log::info("serving");
}

void ServiceHost::run_until_signal(int grace_ms, int drain_delay_ms) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int received = 0;
  sigwait(&signals, &received);
  log::info("shutting down",
            {{"signal", received}, {"grace_ms", grace_ms}, {"drain_delay_ms", drain_delay_ms}});
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(false);
  for (auto& [service, name] : services_) health->SetServingStatus(name, false);
  std::this_thread::sleep_for(std::chrono::milliseconds(drain_delay_ms));
  health->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  server_.reset();
  log::info("stopped");
  log::flush();
}

int run_service_main(int argc, char** argv, const ServiceMain& run,
                     const std::function<int()>& usage) {
  block_shutdown_signals();
  std::string config_path;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      command.emplace_back(argv[i]);
    }
  }
  if (config_path.empty()) return usage();
  try {
    return run(config_path, command);
  } catch (const config::ConfigError& e) {
    log::error("invalid configuration", {{"error", e.what()}});
    return 78;
  } catch (const std::exception& e) {
    log::error("fatal", {{"error", e.what()}});
    return 1;
  }
}

// Blocks SIGTERM/SIGINT in every thread so that run_until_signal's sigwait receives them; must
// run before any thread starts, hence a function every main calls first.
void block_shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

}  // namespace trellis::service
