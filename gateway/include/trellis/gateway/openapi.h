// The OpenAPI 3.1 document of the public API, generated from the routes (the proto HTTP options)
// by trellis-openapi at build time and compiled into the gateway.
#pragma once

#include <string>
#include <string_view>

namespace trellis::gateway {

class RouteTable;

std::string render_openapi(const RouteTable& routes, std::string_view version);
// The document embedded at build time (generated source openapi_document.cc).
std::string_view openapi_document();

}  // namespace trellis::gateway
