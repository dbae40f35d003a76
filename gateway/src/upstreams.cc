#include "trellis/gateway/upstreams.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "trellis/common/service_metadata.h"

namespace trellis::gateway {

struct Upstreams::Channel {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
};

namespace {

// Owns everything one call needs until gRPC reports completion.
struct PendingCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::function<void(UpstreamResult)> done;
  std::chrono::steady_clock::time_point started;
  metrics::Family<metrics::Histogram>* latency = nullptr;
  metrics::Labels labels;
};

}  // namespace

// The calls gRPC has not completed yet. A call is owned here until its callback takes it out, so
// that shutdown() can cancel it without racing its deletion.
struct Upstreams::Outstanding {
  mutable std::mutex mutex;
  std::condition_variable empty;
  std::unordered_map<PendingCall*, std::shared_ptr<PendingCall>> calls;
  int finishing = 0;  // callbacks running (taken out of `calls`, not returned yet)
  bool closed = false;

  size_t count() const { return calls.size() + static_cast<size_t>(finishing); }
};

namespace {

std::string trailer(const grpc::ClientContext& context, std::string_view key) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(grpc::string_ref(key.data(), key.size()));
  return it == trailers.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

// A service may refine its error's HTTP answer, within limits: a 4xx status and a [a-z_] code.
void read_error_override(const grpc::ClientContext& context, UpstreamResult& result) {
  auto status = trailer(context, service::kHttpStatusTrailer);
  auto code = trailer(context, service::kErrorCodeTrailer);
  int http_status = 0;
  if (status.size() == 3 && std::all_of(status.begin(), status.end(), ::isdigit)) {
    http_status = std::stoi(status);
  }
  bool code_ok = !code.empty() && code.size() <= 64 &&
                 std::all_of(code.begin(), code.end(),
                             [](char c) { return c == '_' || (c >= 'a' && c <= 'z'); });
  if (http_status >= 400 && http_status <= 499 && code_ok) {
    result.http_status = http_status;
    result.error_code = std::move(code);
  }
}

std::string flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const auto& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

}  // namespace

Upstreams::Upstreams(const std::map<std::string, std::string>& targets, metrics::Registry& registry)
    : latency_(registry.histogram("grpc_client_handling_seconds",
                                  "Upstream call latency by upstream, method and status code",
                                  {"upstream", "method", "code"})),
      outstanding_(std::make_shared<Outstanding>()) {
  for (const auto& [name, target] : targets) {
    grpc::ChannelArguments args;
    // Keep idle connections alive so that the first request after a pause does not pay a
    // reconnect; fail fast instead of waiting for a dead service.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    // A target may list several replicas ("ipv4:10.0.0.1:50051,10.0.0.2:50051" or a DNS name
    // with several addresses): spread calls over them and skip any that reports NOT_SERVING on
    // the gRPC health protocol (e.g. while it drains for a restart).
    args.SetServiceConfigJSON(
        R"({"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}})");
    auto channel = std::make_unique<Channel>();
    channel->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    channel->stub = std::make_unique<grpc::GenericStub>(channel->channel);
    channels_.emplace(name, std::move(channel));
  }
}

Upstreams::~Upstreams() {
  shutdown();
}

size_t Upstreams::outstanding() const {
  std::lock_guard lock(outstanding_->mutex);
  return outstanding_->count();
}

size_t Upstreams::shutdown(std::chrono::milliseconds wait) {
  std::vector<std::shared_ptr<PendingCall>> calls;
  {
    std::lock_guard lock(outstanding_->mutex);
    outstanding_->closed = true;
    for (const auto& [raw, call] : outstanding_->calls) calls.push_back(call);
  }
  // Outside the lock: gRPC may run a cancelled call's callback on this very thread, inside
  // TryCancel; `calls` keeps each context alive until TryCancel has returned.
  for (const auto& call : calls) call->context.TryCancel();
  calls.clear();
  std::unique_lock lock(outstanding_->mutex);
  outstanding_->empty.wait_for(lock, wait, [&] { return outstanding_->count() == 0; });
  return outstanding_->count();
}

bool Upstreams::has(const std::string& name) const {
  return channels_.count(name) > 0;
}

std::vector<std::string> Upstreams::names() const {
  std::vector<std::string> out;
  for (const auto& [name, channel] : channels_) out.push_back(name);
  return out;
}

void Upstreams::call(const std::string& upstream, UpstreamCall call,
                     std::function<void(UpstreamResult)> done) {
  auto it = channels_.find(upstream);
  auto unavailable = [&](std::string message) {
    UpstreamResult result;
    result.code = 14;  // UNAVAILABLE
    result.message = std::move(message);
    done(std::move(result));
  };
  if (it == channels_.end()) return unavailable("no upstream named " + upstream);
  auto owned_here = std::make_shared<PendingCall>();
  auto* pending = owned_here.get();
  bool closed;
  {
    std::lock_guard lock(outstanding_->mutex);
    closed = outstanding_->closed;
    if (!closed) outstanding_->calls.emplace(pending, std::move(owned_here));
  }
  if (closed) return unavailable("gateway shutting down");  // `done` never runs under the lock
  pending->done = std::move(done);
  pending->started = std::chrono::steady_clock::now();
  pending->latency = &latency_;
  pending->labels = {upstream, call.method};
  pending->context.set_deadline(std::chrono::system_clock::now() + call.timeout);
  for (auto& [key, value] : call.metadata) pending->context.AddMetadata(key, value);
  grpc::Slice slice(call.payload);
  pending->request = grpc::ByteBuffer(&slice, 1);
  it->second->stub->UnaryCall(
      &pending->context, call.method, grpc::StubOptions(), &pending->request, &pending->response,
      [pending, outstanding = outstanding_](grpc::Status status) {
        std::shared_ptr<PendingCall> owned;
        {
          std::lock_guard lock(outstanding->mutex);
          auto entry = outstanding->calls.find(pending);
          owned = std::move(entry->second);
          outstanding->calls.erase(entry);
          ++outstanding->finishing;
        }
        std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - owned->started;
        owned->labels.push_back(std::to_string(static_cast<int>(status.error_code())));
        owned->latency->with(owned->labels).observe(elapsed.count());
        UpstreamResult result;
        result.code = static_cast<int>(status.error_code());
        result.message = status.error_message();
        if (status.ok()) {
          result.payload = flatten(owned->response);
        } else {
          read_error_override(owned->context, result);
        }
        owned->done(std::move(result));
        owned.reset();
        // Only now, with `done` returned, may shutdown() see the call as finished.
        std::lock_guard lock(outstanding->mutex);
        if (--outstanding->finishing == 0 && outstanding->calls.empty()) {
          outstanding->empty.notify_all();
        }
      });
}

}  // namespace trellis::gateway
