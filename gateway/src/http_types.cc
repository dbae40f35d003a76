#include "trellis/gateway/http_types.h"

#include <strings.h>

#include <array>
#include <nlohmann/json.hpp>

#include "trellis/common/swar.h"

namespace trellis::gateway {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 9110 token characters.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> table{};
  for (int c = 33; c < 127; ++c) table[c] = true;
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{}"))
    table[static_cast<unsigned char>(c)] = false;
  return table;
}();

bool is_token(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!kTokenChars[c]) return false;
  }
  return true;
}

// Whether a header value holds a control character (CTL other than HTAB would split or corrupt
// the head), tested 8 bytes at a time: values are mostly ids and short words.
bool has_control_chars(std::string_view value) {
  size_t i = 0;
  for (; i + 8 <= value.size(); i += 8) {
    auto word = swar::load8(value.data() + i);
    if (swar::has_byte_below(word, 0x20) || swar::has_byte(word, 0x7f)) return true;
  }
  for (; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool written_by_serializer(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "server");
}
}  // namespace

std::string_view find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) return value;
  }
  return {};
}

void set_header(HeaderList& headers, std::string name, std::string value) {
  for (auto& [key, existing] : headers) {
    if (iequals(key, name)) {
      existing = std::move(value);
      return;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
}

HttpResponse json_error(int status, std::string_view code, std::string_view message,
                        std::string_view request_id) {
  nlohmann::ordered_json body;
  body["code"] = code;
  body["message"] = message;
  body["request_id"] = request_id;
  return json_response(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.headers.reserve(6);  // filters add a few (request id, cache, CORS): one allocation
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = std::move(body);
  return response;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

bool status_has_body(int status) {
  return status >= 200 && status != 204 && status != 304;
}

void serialize_response_head(const HttpResponse& response, bool keep_alive, std::string& out) {
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\n";
  for (const auto& [name, value] : response.headers) {
    if (!is_token(name) || written_by_serializer(name)) continue;
    out += name;
    out += ": ";
    auto start = out.size();
    out += value;
    if (has_control_chars(value)) {
      for (auto i = start; i < out.size(); ++i) {
        auto c = static_cast<unsigned char>(out[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7f) out[i] = ' ';
      }
    }
    out += "\r\n";
  }
  out += "Server: trellis\r\n";
  if (status_has_body(response.status)) {
    out += "Content-Length: ";
    out += std::to_string(response.body.size());
    out += "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
}

}  // namespace trellis::gateway
