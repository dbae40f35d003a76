// The socket of a connection the HTTP server handed to a stream session, plus the bytes it had
// read past the request. Internal to http_server.cc and push_session.cc (Beast).
#pragma once

#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

struct TakenOverConnection {
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
};

}  // namespace trellis::gateway
