// The gRPC handler of the orders service. It trusts only the identity metadata set by the gateway
// (see trellis/common/service_runtime.h), never user ids in request messages.
#pragma once

#include "trellis/common/metrics.h"
#include "trellis/common/tracing.h"
#include "trellis/orders/config.h"
#include "trellis/orders/order_store.h"
#include "trellis/orders/v1/orders.grpc.pb.h"

namespace trellis::orders {

class OrderHandler final : public v1::OrderService::Service {
 public:
  OrderHandler(OrderStore& store, metrics::Registry& registry, tracing::Tracer& tracer);

  grpc::Status CreateOrder(grpc::ServerContext* context, const v1::CreateOrderRequest* request,
                           v1::Order* response) override;
  grpc::Status ListOrders(grpc::ServerContext* context, const v1::ListOrdersRequest* request,
                          v1::ListOrdersResponse* response) override;
  grpc::Status GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request,
                        v1::Order* response) override;
  grpc::Status CancelOrder(grpc::ServerContext* context, const v1::CancelOrderRequest* request,
                           v1::Order* response) override;
  grpc::Status ConfirmOrder(grpc::ServerContext* context, const v1::ConfirmOrderRequest* request,
                            v1::Order* response) override;
  grpc::Status ShipOrder(grpc::ServerContext* context, const v1::ShipOrderRequest* request,
                         v1::Order* response) override;

 private:
  grpc::Status change_status(grpc::ServerContext* context, const char* method,
                             const std::string& id, OrderAction action, v1::Order* response);

  OrderStore& store_;
  tracing::Tracer& tracer_;
  // orders_created_total{status}: "created" (a new order) or "replayed" (an Idempotency-Key
  // retry answered with the original). Refusals show in grpc_server_handled_total.
  metrics::Family<metrics::Counter>& creations_;
  metrics::Family<metrics::Counter>& transitions_;
};

}  // namespace trellis::orders
