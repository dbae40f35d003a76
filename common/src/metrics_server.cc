#include "trellis/common/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "trellis/common/log.h"

namespace trellis::metrics {

MetricsServer::MetricsServer(std::string listen_address, const Registry& registry)
    : listen_address_(std::move(listen_address)), registry_(registry) {}

MetricsServer::~MetricsServer() {
  stop();
}

void MetricsServer::start() {
  auto colon = listen_address_.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics listen must be host:port");
  auto host = listen_address_.substr(0, colon);
  int port = std::stoi(listen_address_.substr(colon + 1));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    throw std::runtime_error("metrics listen needs an IPv4 address: " + listen_address_);
  }
  listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener_, 16) != 0) {
    close(listener_);
    listener_ = -1;
    throw std::runtime_error("cannot listen for metrics on " + listen_address_);
  }
  socklen_t length = sizeof address;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { serve(); });
  log::info("metrics listening", {{"address", host}, {"port", port_}});
}

void MetricsServer::stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  if (listener_ >= 0) close(listener_);
  listener_ = -1;
}

void MetricsServer::serve() {
  while (!stopping_) {
    pollfd waiting{listener_, POLLIN, 0};
    // Wake up regularly to notice stop(); closing a socket another thread blocks on is racy.
    if (poll(&waiting, 1, 200) <= 0) continue;
    int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    answer(client);
    close(client);
  }
}

void MetricsServer::answer(int client) {
  timeval timeout{2, 0};  // a stuck scraper must not block the next one for long
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  std::string request;
  char buffer[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    auto n = recv(client, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    request.append(buffer, static_cast<size_t>(n));
  }
  std::string status = "404 Not Found", type = "text/plain", body = "not found\n";
  if (request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics?", 0) == 0) {
    status = "200 OK";
    type = "text/plain; version=0.0.4; charset=utf-8";
    body = registry_.render();
  }
  auto response = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                  "\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nConnection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < response.size()) {
    auto n = send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

}  // namespace trellis::metrics
