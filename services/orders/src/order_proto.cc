#include "trellis/orders/order_proto.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/sha.h>
#include "trellis/common/proto_json.h"

#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string_view>

namespace trellis::orders {
namespace {

v1::Order::Status proto_status(OrderStatus status) {
  switch (status) {
    case OrderStatus::kPending:
      return v1::Order::PENDING;
    case OrderStatus::kConfirmed:
      return v1::Order::CONFIRMED;
    case OrderStatus::kShipped:
      return v1::Order::SHIPPED;
    case OrderStatus::kCancelled:
      return v1::Order::CANCELLED;
  }
  return v1::Order::STATUS_UNSPECIFIED;
}

void set_timestamp(int64_t unix_us, google::protobuf::Timestamp* out) {
  out->set_seconds(unix_us / 1000000);
  out->set_nanos(static_cast<int32_t>(unix_us % 1000000) * 1000);
}

}  // namespace

void to_proto(const OrderRecord& order, v1::Order* out) {
  out->set_id(order.id);
  out->set_user_id(order.user_id);
  out->set_status(proto_status(order.status));
  for (const auto& item : order.items) {
    auto* line = out->add_items();
    line->set_sku(item.sku);
    line->set_quantity(item.quantity);
    line->set_unit_price_cents(item.unit_price_cents);
  }
  out->set_total_cents(order.total_cents);
  out->set_currency(order.currency);
  set_timestamp(order.created_at_us, out->mutable_created_at());
  set_timestamp(order.updated_at_us, out->mutable_updated_at());
}

std::vector<LineItem> from_proto(const google::protobuf::RepeatedPtrField<v1::LineItem>& items) {
  std::vector<LineItem> out;
  out.reserve(items.size());
  for (const auto& item : items) {
    out.push_back({item.sku(), item.quantity(), item.unit_price_cents()});
  }
  return out;
}

namespace {

// Text that the proto3 JSON printer writes as it is (it escapes other characters, e.g. '<' as
// \u003c): ids, currency codes and nearly every SKU.
bool plain_json_text(std::string_view text) {
  for (char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '/';
    if (!plain) return false;
  }
  return true;
}

constexpr int64_t kYear10000Us = 253402300800LL * 1000000;

// google.protobuf.Timestamp as the proto3 JSON printer writes it: UTC, with 0, 3 or 6 fraction
// digits (whichever is exact; nanoseconds are always whole microseconds here).
void append_timestamp(std::string& out, int64_t unix_us) {
  auto seconds = static_cast<std::time_t>(unix_us / 1000000);
  auto micros = static_cast<int>(unix_us % 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[40];
  int length =
      std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (micros % 1000 == 0 && micros != 0) {
    length += std::snprintf(buffer + length, sizeof buffer - length, ".%03d", micros / 1000);
  } else if (micros != 0) {
    length += std::snprintf(buffer + length, sizeof buffer - length, ".%06d", micros);
  }
  out.append(buffer, length);
  out += 'Z';
}

void append_field(std::string& out, std::string_view name, std::string_view text) {
  out += '"';
  out += name;
  out += "\":\"";
  out += text;
  out += '"';
}

}  // namespace

// Written directly: protobuf's JSON printer (type resolver, object writers) was the largest cost
// of creating and confirming an order in this service. Anything the fast path does not cover
// exactly (escaped text, timestamps outside 1970-9999) still goes through the printer; a unit test
// holds the two outputs equal.
std::string snapshot_json(const OrderRecord& order) {
  bool plain = plain_json_text(order.id) && plain_json_text(order.user_id) &&
               plain_json_text(order.currency) && order.created_at_us >= 0 &&
               order.updated_at_us >= 0 && order.created_at_us < kYear10000Us &&
               order.updated_at_us < kYear10000Us;
  for (const auto& item : order.items) plain = plain && plain_json_text(item.sku);
  if (!plain) return snapshot_json_by_printer(order);
  std::string out;
  out.reserve(256 + 80 * order.items.size());
  out += '{';
  append_field(out, "id", order.id);
  out += ',';
  append_field(out, "user_id", order.user_id);
  out += ',';
  append_field(out, "status", to_string(order.status));
  out += ",\"items\":[";
  for (size_t i = 0; i < order.items.size(); ++i) {
    const auto& item = order.items[i];
    if (i > 0) out += ',';
    out += '{';
    append_field(out, "sku", item.sku);
    out += ",\"quantity\":";
    out += std::to_string(item.quantity);
    out += ',';
    append_field(out, "unit_price_cents", std::to_string(item.unit_price_cents));  // int64: text
    out += '}';
  }
  out += "],";
  append_field(out, "total_cents", std::to_string(order.total_cents));
  out += ',';
  append_field(out, "currency", order.currency);
  out += ",\"created_at\":\"";
  append_timestamp(out, order.created_at_us);
  out += "\",\"updated_at\":\"";
  append_timestamp(out, order.updated_at_us);
  out += "\"}";
  return out;
}

std::string snapshot_json_by_printer(const OrderRecord& order) {
  v1::Order message;
  to_proto(order, &message);
  return service::to_api_json(message);
}

std::string create_request_hash(const v1::CreateOrderRequest& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    // Names the operation, so that a key reused on another endpoint some day cannot match.
    coded.WriteString("trellis.orders.v1.OrderService/CreateOrder\n");
    if (!request.SerializeToCodedStream(&coded)) {
      throw std::runtime_error("request cannot be serialized");
    }
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

}  // namespace trellis::orders
