// trellis-loadgen: an open-loop HTTP/1.1 load generator (what wrk cannot do). Requests are
// scheduled at a fixed rate, independent of how fast answers come; each one's latency is measured
// from its scheduled start, so a slow response delays the requests queued behind it and that
// delay is counted (no coordinated omission). Keep-alive connections, one request in flight on
// each; when all are busy, requests wait in a queue and their wait is part of their latency.
//
//   trellis-loadgen --port P --rate R --duration S --connections C --requests FILE [--warmup S]
//
// FILE: one request per line as JSON {"method", "path", "headers": {..}, "body"}; lines are used
// round-robin (e.g. one per virtual user). Prints one JSON object: sent, completed, errors,
// statuses, achieved rate, latency percentiles in microseconds, and the latency distribution.
#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 8080;
  double rate = 1000;
  double duration_s = 10;
  double warmup_s = 1;
  int connections = 64;
  std::string requests_file;
};

struct Template {
  http::request<http::string_body> request;
};

struct Stats {
  std::vector<uint32_t> latencies_us;  // of requests scheduled after the warm-up
  std::map<int, uint64_t> statuses;
  uint64_t sent = 0, completed = 0, errors = 0;
};

struct Scheduled {
  Clock::time_point at;
  size_t template_index;
  bool measured;
};

class Generator {
 public:
  Generator(asio::io_context& io, Options options, std::vector<Template> templates)
      : io_(io), options_(std::move(options)), templates_(std::move(templates)), wake_(io) {}

  void run() {
    start_ = Clock::now();
    measure_from_ = start_ + to_duration(options_.warmup_s);
    end_ = measure_from_ + to_duration(options_.duration_s);
    // Idle workers wait on `wake_`, which never expires: cancel_one() wakes one of them. (Setting
    // its expiry again would cancel every waiter: each woken worker would wake all the others,
    // and the generator would spin a whole core, taking it from the system it measures.)
    wake_.expires_at(Clock::time_point::max());
    asio::co_spawn(io_, schedule(), asio::detached);
    for (int i = 0; i < options_.connections; ++i) asio::co_spawn(io_, worker(), asio::detached);
  }

  Stats& stats() { return stats_; }
  Clock::duration elapsed_measured() const { return end_ - measure_from_; }

 private:
  static Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  asio::awaitable<void> schedule() {
    asio::steady_timer timer(io_);
    auto interval = to_duration(1.0 / options_.rate);
    size_t index = 0;
    for (auto at = start_; at < end_; at += interval) {
      timer.expires_at(at);
      co_await timer.async_wait(asio::use_awaitable);
      queue_.push_back({at, index++ % templates_.size(), at >= measure_from_});
      ++stats_.sent;
      wake_.cancel_one();
    }
    done_scheduling_ = true;
    wake_.cancel();
  }

  asio::awaitable<void> worker() {
    std::optional<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    for (;;) {
      while (queue_.empty()) {
        if (done_scheduling_) co_return;
        boost::system::error_code ignored;
        co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      }
      auto job = queue_.front();
      queue_.pop_front();
      boost::system::error_code ec;
      if (!stream) {
        stream.emplace(io_);
        co_await stream->async_connect(tcp::endpoint(asio::ip::make_address(options_.host),
                                                     static_cast<unsigned short>(options_.port)),
                                       asio::redirect_error(asio::use_awaitable, ec));
      }
      http::response<http::string_body> response;
      if (!ec) {
        stream->expires_after(std::chrono::seconds(30));
        co_await http::async_write(*stream, templates_[job.template_index].request,
                                   asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!ec) {
        co_await http::async_read(*stream, buffer, response,
                                  asio::redirect_error(asio::use_awaitable, ec));
      }
      auto finished = Clock::now();
      if (ec) {
        ++stats_.errors;
        stream.reset();
        buffer.clear();
        continue;
      }
      ++stats_.completed;
      ++stats_.statuses[response.result_int()];
      if (job.measured) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(finished - job.at).count();
        stats_.latencies_us.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      }
      if (!response.keep_alive()) stream.reset();
    }
  }

  asio::io_context& io_;
  Options options_;
  std::vector<Template> templates_;
  std::deque<Scheduled> queue_;
  asio::steady_timer wake_;
  bool done_scheduling_ = false;
  Clock::time_point start_, measure_from_, end_;
  Stats stats_;
};

std::vector<Template> read_templates(const Options& options) {
  std::ifstream in(options.requests_file);
  if (!in) throw std::runtime_error("cannot read " + options.requests_file);
  std::vector<Template> templates;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto spec = nlohmann::json::parse(line);
    Template t;
    t.request.method_string(spec.value("method", "GET"));
    t.request.target(spec.at("path").get<std::string>());
    t.request.version(11);
    t.request.set(http::field::host, options.host + ":" + std::to_string(options.port));
    t.request.keep_alive(true);
    auto headers = spec.value("headers", nlohmann::json::object());  // outlives the loop
    for (auto& [name, value] : headers.items()) {
      t.request.set(name, value.get<std::string>());
    }
    t.request.body() = spec.value("body", "");
    t.request.prepare_payload();
    templates.push_back(std::move(t));
  }
  if (templates.empty()) throw std::runtime_error(options.requests_file + " has no requests");
  return templates;
}

uint32_t percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--host")
      o.host = value;
    else if (flag == "--port")
      o.port = std::stoi(value);
    else if (flag == "--rate")
      o.rate = std::stod(value);
    else if (flag == "--duration")
      o.duration_s = std::stod(value);
    else if (flag == "--warmup")
      o.warmup_s = std::stod(value);
    else if (flag == "--connections")
      o.connections = std::stoi(value);
    else if (flag == "--requests")
      o.requests_file = value;
    else
      throw std::runtime_error("unknown option " + flag);
  }
  if (o.requests_file.empty() || o.rate <= 0 || o.connections < 1 || o.duration_s <= 0) {
    throw std::runtime_error(
        "usage: trellis-loadgen --port P --rate R --duration S --connections C --requests FILE "
        "[--warmup S] [--host H]");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  auto options = parse(argc, argv);
  asio::io_context io(1);
  Generator generator(io, options, read_templates(options));
  generator.run();
  io.run();

  auto& stats = generator.stats();
  auto sorted = stats.latencies_us;
  std::sort(sorted.begin(), sorted.end());
  double seconds = std::chrono::duration<double>(generator.elapsed_measured()).count();
  nlohmann::json out = {
      {"mode", "open"},
      {"target_rate", options.rate},
      {"sent", stats.sent},
      {"completed", stats.completed},
      {"errors", stats.errors},
      {"measured", sorted.size()},
      {"rate", sorted.size() / seconds},
      {"p50_us", percentile(sorted, 50)},
      {"p90_us", percentile(sorted, 90)},
      {"p99_us", percentile(sorted, 99)},
      {"p999_us", percentile(sorted, 99.9)},
      {"max_us", sorted.empty() ? 0 : sorted.back()},
  };
  for (auto& [status, count] : stats.statuses) out["statuses"][std::to_string(status)] = count;
  auto& distribution = out["distribution"] = nlohmann::json::array();
  for (double p :
       {0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0}) {
    distribution.push_back({p, percentile(sorted, p)});
  }
  std::cout << out.dump() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "trellis-loadgen: " << e.what() << "\n";
  return 2;
}
