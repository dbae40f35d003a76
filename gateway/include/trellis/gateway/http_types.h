// The gateway's own request and response types. Filters see only these, so that Beast headers
// stay in the server's translation unit and a filter change rebuilds one small file.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trellis::gateway {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup (HTTP field names are case-insensitive); empty when absent.
std::string_view find_header(const HeaderList& headers, std::string_view name);
void set_header(HeaderList& headers, std::string name, std::string value);

struct HttpRequest {
  std::string method;  // upper case as received
  std::string target;  // path + query as received
  std::string path;    // percent-encoded path, without the query
  std::string query;   // after '?', without it
  HeaderList headers;
  std::string body;
  std::string remote_address;
  bool keep_alive = true;
  // Set by the server when the request could not be read completely (e.g. 413); the
  // request-limits filter answers it so that it still gets a request id and an access log line.
  int framing_error_status = 0;

  std::string_view header(std::string_view name) const { return find_header(headers, name); }
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;
  std::string body;

  std::string_view header(std::string_view name) const { return find_header(headers, name); }
};

// The JSON error body every failure uses: {"code", "message", "request_id"}. `code` is a stable
// snake_case identifier clients may switch on; `message` is for humans.
HttpResponse json_error(int status, std::string_view code, std::string_view message,
                        std::string_view request_id);
HttpResponse json_response(int status, std::string body);

std::string_view reason_phrase(int status);

// Whether a response with this status carries a body (1xx, 204 and 304 never do).
bool status_has_body(int status);

// Appends the status line and header block of an HTTP/1.1 response to `out`; the body (when the
// status has one) is sent after it as it is. The framing (Content-Length, Connection: close) and
// `Server` are written here, so such headers in `response.headers` are left out. A header whose
// name is not an HTTP token is left out, and control characters other than tab in values become
// spaces, so that no header can end the block early (response splitting).
void serialize_response_head(const HttpResponse& response, bool keep_alive, std::string& out);

}  // namespace trellis::gateway
