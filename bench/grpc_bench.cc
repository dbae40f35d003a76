// trellis-grpc-bench: a direct gRPC client of UserService.GetMe, closed loop at a fixed number of
// calls in flight, with the identity metadata the gateway would send. The reference for the
// gateway's cost: the same service, the same call, no HTTP, JSON, auth or filters in between.
//
//   trellis-grpc-bench --target HOST:PORT --users FILE --concurrency N --duration S [--warmup S]
//
// FILE: one user id (UUID) per line, used round-robin. Prints one JSON object like trellis-loadgen.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trellis/users/v1/users.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = trellis::users::v1;

struct Call {
  grpc::ClientContext context;
  v1::GetMeRequest request;
  v1::User response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::User>> reader;
  Clock::time_point started;
};

uint32_t percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) try {
  std::string target, users_file;
  int concurrency = 32;
  double duration_s = 10, warmup_s = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--target")
      target = value;
    else if (flag == "--users")
      users_file = value;
    else if (flag == "--concurrency")
      concurrency = std::stoi(value);
    else if (flag == "--duration")
      duration_s = std::stod(value);
    else if (flag == "--warmup")
      warmup_s = std::stod(value);
    else
      throw std::runtime_error("unknown option " + flag);
  }
  std::vector<std::string> users;
  std::ifstream in(users_file);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) users.push_back(line);
  }
  if (target.empty() || users.empty()) {
    throw std::runtime_error(
        "usage: trellis-grpc-bench --target HOST:PORT --users FILE --concurrency N --duration S");
  }

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = v1::UserService::NewStub(channel);
  grpc::CompletionQueue queue;
  auto start = Clock::now();
  auto measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
  auto end = measure_from +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  size_t next_user = 0;
  uint64_t errors = 0, completed = 0;
  std::map<std::string, uint64_t> codes;
  std::vector<uint32_t> latencies;

  auto launch = [&] {
    auto* call = new Call;
    const auto& user = users[next_user++ % users.size()];
    call->context.AddMetadata("x-trellis-user-id", user);
    call->context.AddMetadata("x-trellis-roles", "user");
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    call->started = Clock::now();
    call->reader = stub->AsyncGetMe(&call->context, call->request, &queue);
    call->reader->Finish(&call->response, &call->status, call);
  };
  for (int i = 0; i < concurrency; ++i) launch();
  int in_flight = concurrency;
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --in_flight;
    auto now = Clock::now();
    ++completed;
    ++codes[std::to_string(call->status.error_code())];
    if (!call->status.ok()) ++errors;
    if (call->started >= measure_from && now <= end) {
      latencies.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - call->started).count()));
    }
    if (now < end) {
      launch();
      ++in_flight;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  nlohmann::json out = {{"mode", "closed"},
                        {"concurrency", concurrency},
                        {"completed", completed},
                        {"errors", errors},
                        {"measured", latencies.size()},
                        {"rate", latencies.size() / duration_s},
                        {"p50_us", percentile(latencies, 50)},
                        {"p90_us", percentile(latencies, 90)},
                        {"p99_us", percentile(latencies, 99)},
                        {"p999_us", percentile(latencies, 99.9)},
                        {"max_us", latencies.empty() ? 0 : latencies.back()},
                        {"grpc_codes", codes}};
  auto& distribution = out["distribution"] = nlohmann::json::array();
  for (double p :
       {0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0}) {
    distribution.push_back({p, percentile(latencies, p)});
  }
  std::cout << out.dump() << "\n";
  queue.Shutdown();
  return 0;
} catch (const std::exception& e) {
  std::cerr << "trellis-grpc-bench: " << e.what() << "\n";
  return 2;
}
