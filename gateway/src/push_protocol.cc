#include "trellis/gateway/push_protocol.h"

#include <strings.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace trellis::gateway {
namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// Whether a comma-separated header contains `token` (case-insensitive).
bool list_contains(std::string_view header, std::string_view token) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (item.size() == token.size() && strncasecmp(item.data(), token.data(), token.size()) == 0) {
      return true;
    }
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i] == '+' ? ' ' : text[i]);
  }
  return out;
}

}  // namespace

std::optional<StreamId> parse_stream_id(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  StreamId id;
  if (!parse_u64(text.substr(0, dash), id.ms) || !parse_u64(text.substr(dash + 1), id.seq)) {
    return std::nullopt;
  }
  return id;
}

PushMessagePtr make_push_message(std::string id, std::string json) {
  auto parsed = parse_stream_id(id);
  if (!parsed || json.empty()) return nullptr;
  auto message = std::make_shared<PushMessage>();
  message->id = std::move(id);
  message->json = std::move(json);
  message->parsed = *parsed;
  return message;
}

PushMessagePtr make_resync_message(std::string_view code) {
  auto message = std::make_shared<PushMessage>();
  message->resync_code = code;
  return message;
}

std::string sse_event(const PushMessage& message) {
  if (!message.resync_code.empty()) {
    // No id: line, so the browser keeps its last real event id for the next reconnect.
    return "event: resync\ndata: {\"code\":\"" + std::string(message.resync_code) + "\"}\n\n";
  }
  std::string out;
  out.reserve(message.id.size() + message.json.size() + 40);
  out += "id: ";
  out += message.id;
  out += "\nevent: notification\n";
  // A data line per line of the payload (compact JSON has none, but a newline must not be able
  // to end the event early or inject fields).
  std::string_view rest = message.json;
  while (true) {
    auto newline = rest.find_first_of("\r\n");
    out += "data: ";
    out += rest.substr(0, newline);
    out += '\n';
    if (newline == std::string_view::npos) break;
    char ending = rest[newline];
    rest.remove_prefix(newline + 1);
    if (ending == '\r' && !rest.empty() && rest.front() == '\n') rest.remove_prefix(1);  // CRLF
  }
  out += '\n';
  return out;
}

std::string sse_end_event(std::string_view code) {
  return "event: end\ndata: {\"code\":\"" + std::string(code) + "\"}\n\n";
}

std::string websocket_notification(const PushMessage& message) {
  if (!message.resync_code.empty()) {
    return R"({"type":"resync","code":")" + std::string(message.resync_code) + "\"}";
  }
  std::string out;
  out.reserve(message.id.size() + message.json.size() + 48);
  out += R"({"type":"notification","id":")";
  out += message.id;
  out += R"(","notification":)";
  out += message.json;
  out += '}';
  return out;
}

bool is_websocket_upgrade(const HttpRequest& request) {
  return list_contains(request.header("connection"), "upgrade") &&
         list_contains(request.header("upgrade"), "websocket");
}

bool accepts_event_stream(std::string_view accept) {
  while (!accept.empty()) {
    auto comma = accept.find(',');
    auto item = trim(accept.substr(0, comma));
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    auto type = trim(item.substr(0, item.find(';')));
    constexpr std::string_view kType = "text/event-stream";
    if (type.size() == kType.size() && strncasecmp(type.data(), kType.data(), kType.size()) == 0) {
      auto params = item.find(';') == std::string_view::npos ? std::string_view()
                                                             : item.substr(item.find(';'));
      auto q = params.find("q=");
      if (q != std::string_view::npos &&
          std::string(params.substr(q + 2)).find_first_not_of("0.") == std::string::npos) {
        return false;  // q=0: explicitly refused
      }
      return true;
    }
  }
  return false;
}

std::optional<std::string> query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto equals = item.find('=');
    if (percent_decode(item.substr(0, equals)) != name) continue;
    return equals == std::string_view::npos ? std::string()
                                            : percent_decode(item.substr(equals + 1));
  }
  return std::nullopt;
}

ProtocolOffer parse_websocket_protocols(std::string_view header) {
  ProtocolOffer offer;
  constexpr std::string_view kBearer = "bearer.";
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (item == kPushSubprotocol) {
      offer.offers_v1 = true;
    } else if (item.size() > kBearer.size() && item.substr(0, kBearer.size()) == kBearer &&
               offer.token.empty()) {
      offer.token = std::string(item.substr(kBearer.size()));
    }
  }
  return offer;
}

std::string token_from_auth_message(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return {};
  auto type = doc.find("type");
  auto token = doc.find("access_token");
  if (type == doc.end() || !type->is_string() || *type != "auth") return {};
  if (token == doc.end() || !token->is_string()) return {};
  return token->get<std::string>();
}

bool OutboundQueue::push(PushMessagePtr message) {
  if (size() + 1 > max_messages_ || bytes_ + message->cost() > max_bytes_) return false;
  bytes_ += message->cost();
  items_.push_back(std::move(message));
  return true;
}

void OutboundQueue::prepend(std::vector<PushMessagePtr> messages) {
  for (const auto& message : messages) bytes_ += message->cost();
  items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
  head_ = 0;
  messages.insert(messages.end(), std::make_move_iterator(items_.begin()),
                  std::make_move_iterator(items_.end()));
  items_ = std::move(messages);
}

PushMessagePtr OutboundQueue::pop() {
  if (empty()) return nullptr;
  auto message = std::move(items_[head_++]);
  bytes_ -= message->cost();
  if (head_ == items_.size()) {
    clear();  // releases the vector's memory: an idle connection holds no buffer
  } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
    items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  return message;
}

void OutboundQueue::clear() {
  std::vector<PushMessagePtr>().swap(items_);
  head_ = 0;
  bytes_ = 0;
}

}  // namespace trellis::gateway
