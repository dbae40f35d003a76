#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/http_server.h"

#include <algorithm>
#include <array>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <optional>
#include <vector>

#include "taken_over_connection.h"
#include "trellis/common/log.h"
#include "trellis/gateway/gateway_config.h"

namespace trellis::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

void TakenOverConnectionDeleter::operator()(TakenOverConnection* connection) const {
  delete connection;
}

struct Limits {
  size_t max_body_bytes;
  size_t max_header_bytes;
  std::chrono::milliseconds idle_timeout;
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds header_timeout;
  int max_connections;
};

namespace {

using Clock = std::chrono::steady_clock;

// Connections run on their loop's executor, typed rather than type-erased (any_io_executor): each
// copy of an erased executor allocated, about 20 times per request. No strand: every connection
// loop is run by exactly one thread (see HttpServer), so its handlers never run concurrently; a
// strand would add a queue, a lock and reference counting to every handler.
using ConnectionExecutor = asio::io_context::executor_type;
using ConnectionSocket = asio::basic_stream_socket<tcp, ConnectionExecutor>;
using SweepTimer = asio::basic_waitable_timer<Clock, asio::wait_traits<Clock>, ConnectionExecutor>;

// How often a loop checks its connections' deadlines: a tenth of the shortest timeout, from 10 ms
// to 1 s. A connection is closed at most that long after its deadline.
std::chrono::milliseconds sweep_period(const Limits& limits) {
  auto shortest = std::min({limits.idle_timeout, limits.header_timeout, limits.read_timeout});
  return std::clamp(shortest / 10, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

// Parses a request straight into an HttpRequest. Beast's request_parser keeps the fields in its
// own container (an allocation per field) that would then be copied into the HttpRequest.
class RequestParser final : public http::basic_parser<true> {
 public:
  HttpRequest request;
  http::verb verb = http::verb::unknown;

 private:
  void on_request_impl(http::verb method, beast::string_view method_text, beast::string_view target,
                       int, beast::error_code&) override {
    verb = method;
    request.headers.reserve(8);  // here, not up front: an idle connection holds a parser too
    request.method.assign(method_text.data(), method_text.size());
    request.target.assign(target.data(), target.size());
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override {
    ec = http::error::bad_version;  // a request parser never sees a status line
  }
  void on_field_impl(http::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    request.headers.emplace_back(std::string(name), std::string(value));
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    // The parser checked the length against the body limit already.
    if (length)
      request.body.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, 1 << 20)));
  }
  size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}
};

class Connection;

// The deadlines of one loop's connections, checked by one periodic timer. A connection only
// stores its deadline: a timer operation per read and write (Beast's stream timeouts) cost two
// clock reads, a heap insert, a lock and a cancelled handler each, several times per request.
// Touched on its loop's thread only.
class DeadlineSweeper : public std::enable_shared_from_this<DeadlineSweeper> {
 public:
  DeadlineSweeper(asio::io_context& loop, std::chrono::milliseconds period)
      : timer_(loop.get_executor()), period_(period) {}

  void watch(std::weak_ptr<Connection> connection) {
    watched_.push_back(std::move(connection));
    if (!running_) {
      running_ = true;
      schedule();
    }
  }

 private:
  void schedule() {
    timer_.expires_after(period_);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        self->running_ = false;
        return;
      }
      self->sweep();
    });
  }

  void sweep();  // after Connection

  SweepTimer timer_;
  const std::chrono::milliseconds period_;
  std::vector<std::weak_ptr<Connection>> watched_;
  bool running_ = false;  // the timer runs only while some connection is watched
};

// One client connection. Requests on it are handled one after another (HTTP/1.1 keep-alive;
// pipelined requests wait in the read buffer), each through the whole filter chain.
class Connection : public std::enable_shared_from_this<Connection>, public ExchangeTransport {
 public:
  Connection(ConnectionSocket socket, const Limits& limits, const FilterList& filters,
             std::atomic<int>& in_flight, const std::atomic<bool>& draining,
             std::atomic<int>& open_connections)
      : socket_(std::move(socket)),
        limits_(limits),
        filters_(filters),
        in_flight_(in_flight),
        draining_(draining),
        open_connections_(open_connections) {
    beast::error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string();
  }

  ~Connection() { --open_connections_; }

  void start(std::shared_ptr<DeadlineSweeper> sweeper) {
    asio::dispatch(socket_.get_executor(),
                   [self = shared_from_this(), sweeper = std::move(sweeper)] {
                     sweeper->watch(self);
                     self->read_header();
                   });
  }

  // Shutdown: a connection waiting for its next request is closed now; one in the middle of a
  // request closes after answering it (with Connection: close).
  void drain() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      if (self->idle_ && !self->taken_over_) self->close();
    });
  }

  // From the loop's sweeper.
  void close_if_past(Clock::time_point now) {
    if (now >= deadline_) close();
  }

  // ExchangeTransport: the connection is where its requests' answers go.
  void deliver(HttpResponse& response) override {
    if (socket_.get_executor().running_in_this_thread()) return write(std::move(response));
    asio::post(socket_.get_executor(),
               [self = shared_from_this(), response = std::move(response)]() mutable {
                 self->write(std::move(response));
               });
  }

  void post(std::function<void()> work) override {
    asio::post(socket_.get_executor(), std::move(work));
  }

  void post_after(std::chrono::milliseconds delay, std::function<void()> work) override {
    auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), delay);
    timer->async_wait([timer, work = std::move(work)](beast::error_code) { work(); });
  }

  bool can_take_over() const override { return true; }

  void take_over(HttpResponse& head, TakeoverHandler handler) override {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this(), head = std::move(head),
                                            handler = std::move(handler)]() mutable {
      self->hand_over(std::move(head), std::move(handler));
    });
  }

 private:
  // Waiting for the next request may take up to the idle timeout; once its first bytes arrived,
  // the header block must be complete within the header timeout (so that a client trickling bytes,
  // slowloris, cannot hold a connection for long) and the body within the read timeout.
  enum class Phase { kIdle, kHeader, kBody };

  void read_header() {
    if (draining_) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    phase_ = Phase::kIdle;
    idle_ = buffer_.size() == 0;  // bytes already buffered mean a pipelined request is waiting
    if (!idle_) return parse_buffered();
    // A large body's buffer is not kept for the rest of a keep-alive connection.
    if (buffer_.capacity() > kKeptReadBytes) buffer_.shrink_to_fit();
    deadline_ = Clock::now() + limits_.idle_timeout;
    read_more();
  }

  void read_more() {
    // A header arrives in one read as a rule; a body is read in larger steps.
    size_t chunk = phase_ == Phase::kBody ? 65536 : 4096;
    socket_.async_read_some(buffer_.prepare(chunk),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->idle_ = false;
                              if (ec) return self->on_read_error(ec);
                              self->buffer_.commit(n);
                              self->parse_buffered();
                            });
  }

  // Parses what the buffer holds. A request that arrived whole (the common case) is dispatched
  // at once, with no further read and no timer.
  void parse_buffered() {
    beast::error_code ec;
    while (buffer_.size() > 0 && !parser_->is_done()) {
      auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        // Bytes the parser cannot take yet: a header (bounded by the header limit above), or a
        // chunk's size line or the trailer, which Beast does not bound. Bound them too.
        if (buffer_.size() > limits_.max_header_bytes + 4096) {
          return dispatch(parser_->is_header_done() ? 400 : 431);
        }
        break;
      }
      if (ec) return on_parse_error(ec);
      if (used == 0) break;  // nothing more to take from these bytes yet
    }
    if (parser_->is_done()) return dispatch(0);
    auto phase = parser_->is_header_done() ? Phase::kBody : Phase::kHeader;
    if (phase != phase_) {
      phase_ = phase;
      deadline_ =
          Clock::now() + (phase == Phase::kHeader ? limits_.header_timeout : limits_.read_timeout);
    }
    read_more();
  }

  void on_parse_error(beast::error_code ec) {
    if (ec == http::error::header_limit) return dispatch(431);
    if (ec == http::error::body_limit) return dispatch(413);  // also from Content-Length
    return dispatch(400);
  }

  void on_read_error(beast::error_code ec) {
    // A client that ended its side in the middle of a request still gets an answer.
    if (ec == asio::error::eof && phase_ != Phase::kIdle) {
      beast::error_code eof_ec;
      parser_->put_eof(eof_ec);
      if (eof_ec) return on_parse_error(eof_ec);
    }
    close();  // between requests, timeout, reset: nobody to answer
  }

  // Runs the request through the chain; a framing error still goes through it (for its request
  // id and access log line), and the connection closes after the answer.
  void dispatch(int framing_error) {
    idle_ = false;
    deadline_ = Clock::time_point::max();  // the filters bound their own waits
    auto& parser = *parser_;
    // A framing error answers whatever was read (the request line may be missing) and closes.
    bool keep_alive = framing_error == 0 && parser.is_header_done() && parser.keep_alive();
    head_request_ = parser.verb == http::verb::head;
    HttpRequest request = std::move(parser.request);
    if (framing_error != 0) request.body.clear();
    auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.remote_address = remote_;
    request.framing_error_status = framing_error;
    request.keep_alive = keep_alive;

    keep_alive_ = request.keep_alive;
    ++in_flight_;
    auto exchange = std::make_shared<Exchange>(std::move(request), filters_, shared_from_this());
    exchange->start();
  }

  // Live push: the socket (with any bytes read past the request) leaves this connection for a
  // stream session; the request is no longer in flight and the connection object goes away.
  void hand_over(HttpResponse head, TakeoverHandler handler) {
    --in_flight_;
    taken_over_ = true;
    deadline_ = Clock::time_point::max();
    parser_.reset();
    TakenOverConnectionPtr taken(new TakenOverConnection{
        beast::tcp_stream(tcp::socket(std::move(socket_))), std::move(buffer_)});
    buffer_ = beast::flat_buffer();
    handler(std::move(taken), std::move(head));
  }

  // The head is serialized into a buffer the connection keeps (no allocation once it has grown)
  // and sent with the body in one gather write. The body is let go once written: an idle
  // connection holds no answer.
  void write(HttpResponse answer) {
    --in_flight_;
    if (draining_) keep_alive_ = false;
    // Only final answers: an interim (1xx) status would leave the client waiting for one.
    if (answer.status < 200 || answer.status > 599) answer.status = 500;
    head_.clear();
    serialize_response_head(answer, keep_alive_, head_);  // HEAD: the GET's Content-Length...
    bool send_body = status_has_body(answer.status) && !head_request_;  // ...and no body
    body_ = send_body ? std::move(answer.body) : std::string();
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
    deadline_ = Clock::now() + limits_.read_timeout;
    asio::async_write(socket_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
      std::string().swap(self->body_);
      if (self->head_.capacity() > kKeptHeadBytes) std::string().swap(self->head_);
      if (ec) return self->close();
      if (!self->keep_alive_) return self->linger();
      self->read_header();
    });
  }

  // Closing a socket with unread input makes the kernel send RST, which can destroy the answer
  // before the client reads it (e.g. a 413 while the client still uploads). So: send FIN, then
  // read and discard for a bounded time and amount, then close.
  void linger() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    deadline_ = Clock::now() + std::chrono::seconds(2);
    drain_budget_ = 4 * limits_.max_body_bytes + 65536;
    discard_input();
  }

  void discard_input() {
    auto buffer = std::make_shared<std::array<char, 16384>>();
    socket_.async_read_some(asio::buffer(*buffer),
                            [self = shared_from_this(), buffer](beast::error_code ec, size_t n) {
                              if (ec || n >= self->drain_budget_) return self->close();
                              self->drain_budget_ -= n;
                              self->discard_input();
                            });
  }

  void close() {
    deadline_ = Clock::time_point::max();
    if (!socket_.is_open()) return;
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    socket_.close(ignored);
  }

  ConnectionSocket socket_;
  Clock::time_point deadline_ = Clock::time_point::max();  // checked by the loop's sweeper
  Phase phase_ = Phase::kIdle;
  bool taken_over_ = false;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  const Limits& limits_;
  const FilterList& filters_;
  std::atomic<int>& in_flight_;
  const std::atomic<bool>& draining_;
  std::atomic<int>& open_connections_;
  bool idle_ = false;
  std::string remote_;
  bool keep_alive_ = true;
  bool head_request_ = false;
  std::string head_;  // kept between answers (up to kKeptHeadBytes of capacity)
  std::string body_;  // of the answer being written
  static constexpr size_t kKeptHeadBytes = 4096;
  static constexpr size_t kKeptReadBytes = 16384;
  size_t drain_budget_ = 0;
};

void DeadlineSweeper::sweep() {
  auto now = Clock::now();
  for (size_t i = 0; i < watched_.size();) {
    auto connection = watched_[i].lock();
    if (!connection) {  // gone: forget it (order does not matter)
      watched_[i] = std::move(watched_.back());
      watched_.pop_back();
      continue;
    }
    connection->close_if_past(now);
    ++i;
  }
  if (watched_.empty()) {
    running_ = false;
    return;
  }
  schedule();
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, ListenerSettings settings, const FilterList& filters,
       std::vector<asio::io_context*> connection_loops)
      : io(io),
        loops(connection_loops.empty() ? std::vector<asio::io_context*>{&io}
                                       : std::move(connection_loops)),
        config(std::move(settings)),
        filters(filters),
        acceptor(asio::make_strand(io)),
        limits{config.max_body_bytes,
               config.max_header_bytes,
               std::chrono::milliseconds(config.idle_timeout_ms),
               std::chrono::milliseconds(config.request_read_timeout_ms),
               std::chrono::milliseconds(config.header_timeout_ms),
               config.max_connections} {
    for (auto* loop : loops) {
      sweepers.push_back(std::make_shared<DeadlineSweeper>(*loop, sweep_period(limits)));
    }
  }

  void accept() {
    auto index = next_loop++ % loops.size();
    acceptor.async_accept(
        loops[index]->get_executor(),
        [self = shared_from_this(), index](beast::error_code ec, ConnectionSocket socket) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) {
            return;
          }
          if (!ec && self->open_connections >= self->limits.max_connections) {
            // At the cap: close at once rather than let memory grow without
            // bound; clients and load balancers retry elsewhere.
            beast::error_code ignored;
            socket.close(ignored);
            ++self->refused_connections;
          } else if (!ec) {
            ++self->open_connections;
            socket.set_option(tcp::no_delay(true), ec);
            // Not make_shared: the sweeper's weak_ptr would keep the whole object's memory
            // until its next round.
            std::shared_ptr<Connection> connection(
                new Connection(std::move(socket), self->limits, self->filters, self->in_flight,
                               self->draining, self->open_connections));
            self->track(connection);
            connection->start(self->sweepers[index]);
          } else {
            log::warn("accept failed", {{"error", ec.message()}});
          }
          self->accept();
        });
  }

  void track(const std::shared_ptr<Connection>& connection) {
    std::lock_guard lock(connections_mutex);
    // Forget closed connections now and then so the list stays as long as the open ones.
    if (connections.size() >= 2 * live_estimate + 64) {
      std::erase_if(connections, [](const auto& weak) { return weak.expired(); });
      live_estimate = connections.size();
    }
    connections.push_back(connection);
  }

  void drain_connections() {
    std::vector<std::weak_ptr<Connection>> all;
    {
      std::lock_guard lock(connections_mutex);
      all.swap(connections);
    }
    for (auto& weak : all) {
      if (auto connection = weak.lock()) connection->drain();
    }
  }

  asio::io_context& io;
  const std::vector<asio::io_context*> loops;
  size_t next_loop = 0;                                    // only the acceptor's strand touches it
  std::vector<std::shared_ptr<DeadlineSweeper>> sweepers;  // one per loop
  const ListenerSettings config;
  const FilterList& filters;
  tcp::acceptor acceptor;
  Limits limits;
  std::atomic<int> in_flight{0};
  std::atomic<bool> draining{false};
  std::atomic<int> open_connections{0};
  std::atomic<uint64_t> refused_connections{0};
  std::mutex connections_mutex;
  std::vector<std::weak_ptr<Connection>> connections;
  size_t live_estimate = 0;
  int port = 0;
};

ListenerSettings public_listener(const GatewayConfig& config) {
  ListenerSettings settings;
  settings.address = config.listen_address;
  settings.port = config.listen_port;
  settings.max_body_bytes = config.max_body_bytes;
  settings.max_header_bytes = config.max_header_bytes;
  settings.idle_timeout_ms = config.idle_timeout_ms;
  settings.request_read_timeout_ms = config.request_read_timeout_ms;
  settings.header_timeout_ms = config.header_timeout_ms;
  settings.max_connections = config.max_connections;
  return settings;
}

int HttpServer::open_connections() const {
  return impl_->open_connections.load();
}

HttpServer::HttpServer(asio::io_context& io, ListenerSettings settings, const FilterList& filters,
                       std::vector<asio::io_context*> connection_loops)
    : impl_(std::make_shared<Impl>(io, std::move(settings), filters, std::move(connection_loops))) {
}

HttpServer::~HttpServer() {
  stop_accepting();
}

void HttpServer::start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->config.address, ec);
  if (ec) throw std::runtime_error("bad listen address " + impl_->config.address);
  tcp::endpoint endpoint(address, static_cast<unsigned short>(impl_->config.port));
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + impl_->config.address + ":" +
                             std::to_string(impl_->config.port) + ": " + ec.message());
  }
  impl_->port = acceptor.local_endpoint().port();
  impl_->accept();
}

int HttpServer::port() const {
  return impl_->port;
}

void HttpServer::stop_accepting() {
  asio::dispatch(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
}

void HttpServer::drain() {
  stop_accepting();
  impl_->draining = true;
  impl_->drain_connections();
}

int HttpServer::in_flight() const {
  return impl_->in_flight.load();
}

}  // namespace trellis::gateway
