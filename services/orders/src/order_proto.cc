#include "trellis/orders/order_proto.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/sha.h>
#include "trellis/common/proto_json.h"

#include <stdexcept>

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

// Protobuf's own JSON printer was the largest cost of creating and confirming an order here;
// print_api_json writes this shape directly.
std::string snapshot_json(const OrderRecord& order) {
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
