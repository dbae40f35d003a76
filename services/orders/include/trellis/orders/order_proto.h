// Conversions between the service's order types and the public protobuf messages.
#pragma once

#include <string>
#include <vector>

#include "trellis/orders/order.h"
#include "trellis/orders/v1/orders.pb.h"

namespace trellis::orders {

void to_proto(const OrderRecord& order, v1::Order* out);
std::vector<LineItem> from_proto(const google::protobuf::RepeatedPtrField<v1::LineItem>& items);

// The order as clients see it in JSON (proto3 mapping, field names as in the .proto): the payload
// of outbox events, so that consumers read the same shape as GET /v1/orders/{id} returns.
std::string snapshot_json(const OrderRecord& order);

// SHA-256 of the request's deterministic serialization: equal for bodies that differ only in
// JSON formatting or field order, different for any change of items or currency.
std::string create_request_hash(const v1::CreateOrderRequest& request);

}  // namespace trellis::orders
