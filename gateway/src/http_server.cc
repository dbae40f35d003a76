#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/http_server.h"

#include <array>
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

// Connections run on a strand of their loop, typed rather than type-erased (any_io_executor): each
// copy of an erased strand allocated, about 20 times per request.
using ConnectionExecutor = asio::strand<asio::io_context::executor_type>;
using ConnectionStream = beast::basic_stream<tcp, ConnectionExecutor>;

// One client connection. Requests on it are handled one after another (HTTP/1.1 keep-alive;
// pipelined requests wait in the read buffer), each through the whole filter chain.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ConnectionStream::socket_type socket, const Limits& limits, const FilterList& filters,
             std::atomic<int>& in_flight, const std::atomic<bool>& draining,
             std::atomic<int>& open_connections)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        limits_(limits),
        filters_(filters),
        in_flight_(in_flight),
        draining_(draining),
        open_connections_(open_connections) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string();
  }

  ~Connection() { --open_connections_; }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // Shutdown: a connection waiting for its next request is closed now; one in the middle of a
  // request closes after answering it (with Connection: close).
  void drain() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      if (self->idle_ && !self->taken_over_) self->close();
    });
  }

 private:
  void read_header() {
    if (draining_) return close();
    idle_ = buffer_.size() == 0;  // bytes already buffered mean a pipelined request is waiting
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser_->body_limit(limits_.max_body_bytes);
    if (!idle_) return read_rest_of_header();
    // Waiting for the next request may take up to the idle timeout...
    stream_.expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->idle_ = false;
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_rest_of_header();
                            });
  }

  // ...but once it started, the whole header block must arrive within the header timeout, so a
  // client trickling bytes (slowloris) cannot hold a connection for long.
  void read_rest_of_header() {
    stream_.expires_after(limits_.header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    idle_ = false;
    if (ec) {
      if (ec == http::error::end_of_stream) return close();  // client closed between requests
      if (ec == http::error::header_limit) return dispatch(431);
      if (ec == http::error::body_limit) return dispatch(413);  // from Content-Length
      if (is_parse_error(ec)) return dispatch(400);
      return close();  // end of stream, timeout, reset: nobody to answer
    }
    stream_.expires_after(limits_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec == http::error::body_limit) return self->dispatch(413);
                       if (ec && self->is_parse_error(ec)) return self->dispatch(400);
                       if (ec) return self->close();
                       self->dispatch(0);
                     });
  }

  static bool is_parse_error(beast::error_code ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category();
  }

  // Runs the request through the chain; a framing error still goes through it (for its request
  // id and access log line), and the connection closes after the answer.
  void dispatch(int framing_error) {
    stream_.expires_never();
    HttpRequest request;
    auto& message = parser_->get();
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.headers.reserve(static_cast<size_t>(std::distance(message.begin(), message.end())));
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.remote_address = remote_;
    request.framing_error_status = framing_error;
    request.keep_alive = framing_error == 0 && message.keep_alive();
    if (framing_error == 0) request.body = std::move(message.body());

    keep_alive_ = request.keep_alive;
    head_request_ = message.method() == http::verb::head;
    ++in_flight_;
    auto self = shared_from_this();
    auto exchange = std::make_shared<Exchange>(
        std::move(request), filters_,
        [self](HttpResponse& response) {
          asio::dispatch(self->stream_.get_executor(),
                         [self, response = std::move(response)]() mutable {
                           self->write(std::move(response));
                         });
        },
        [self](std::function<void()> work) {
          asio::post(self->stream_.get_executor(), std::move(work));
        });
    exchange->set_scheduler([self](std::chrono::milliseconds delay, std::function<void()> work) {
      auto timer = std::make_shared<asio::steady_timer>(self->stream_.get_executor(), delay);
      timer->async_wait([timer, work = std::move(work)](beast::error_code) { work(); });
    });
    exchange->set_takeover_sink([self](HttpResponse& head, TakeoverHandler handler) {
      asio::dispatch(self->executor_,
                     [self, head = std::move(head), handler = std::move(handler)]() mutable {
                       self->hand_over(std::move(head), std::move(handler));
                     });
    });
    exchange->start();
  }

  // Live push: the socket (with any bytes read past the request) leaves this connection for a
  // stream session; the request is no longer in flight and the connection object goes away.
  void hand_over(HttpResponse head, TakeoverHandler handler) {
    --in_flight_;
    taken_over_ = true;
    stream_.expires_never();
    parser_.reset();
    TakenOverConnectionPtr taken(new TakenOverConnection{
        beast::tcp_stream(tcp::socket(stream_.release_socket())), std::move(buffer_)});
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
    stream_.expires_after(limits_.read_timeout);
    asio::async_write(stream_, buffers, [self = shared_from_this()](beast::error_code ec, size_t) {
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
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain_budget_ = 4 * limits_.max_body_bytes + 65536;
    discard_input();
  }

  void discard_input() {
    auto buffer = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(asio::buffer(*buffer),
                            [self = shared_from_this(), buffer](beast::error_code ec, size_t n) {
                              if (ec || n >= self->drain_budget_) return self->close();
                              self->drain_budget_ -= n;
                              self->discard_input();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  ConnectionStream stream_;
  ConnectionExecutor executor_;  // stream_'s strand; still valid after a takeover
  bool taken_over_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
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
  size_t drain_budget_ = 0;
};

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
               config.max_connections} {}

  void accept() {
    auto& loop = *loops[next_loop++ % loops.size()];
    acceptor.async_accept(
        asio::make_strand(loop),
        [self = shared_from_this()](beast::error_code ec, ConnectionStream::socket_type socket) {
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
            auto connection = std::make_shared<Connection>(std::move(socket), self->limits,
                                                           self->filters, self->in_flight,
                                                           self->draining, self->open_connections);
            self->track(connection);
            connection->start();
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
  size_t next_loop = 0;  // only the acceptor's strand touches it
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
