#include "trellis/common/page_cursor.h"
#include "trellis/common/service_runtime.h"
#include "trellis/orders/handlers.h"
#include "trellis/orders/order_proto.h"
#include "trellis/orders/validation.h"

namespace trellis::orders {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status invalid(const std::string& message) {
  return Status(StatusCode::INVALID_ARGUMENT, message);
}

// The gateway sends the verified user id; anything else did not come through it.
bool signed_in(const service::CallContext& call) {
  return call.identity.authenticated() && is_uuid(call.identity.user_id);
}

Status unauthenticated() {
  return Status(StatusCode::UNAUTHENTICATED, "sign in first");
}

Viewer viewer_of(const service::CallContext& call) {
  return {call.identity.user_id, call.identity.has_role("admin")};
}

// Names the order listing in its page tokens.
constexpr std::string_view kListing = "trellis.orders.cursor";

// Whose orders a listing shows: binds page tokens to it.
std::string listing_scope(const Viewer& viewer) {
  return viewer.admin ? "*" : viewer.user_id;
}

Status order_not_found() {
  return Status(StatusCode::NOT_FOUND, "order not found");
}

}  // namespace

OrderHandler::OrderHandler(OrderStore& store, metrics::Registry& registry, tracing::Tracer& tracer)
    : store_(store),
      tracer_(tracer),
      creations_(registry.counter("orders_created_total",
                                  "Successful CreateOrder calls: new orders and replays",
                                  {"status"})),
      transitions_(registry.counter("orders_transitions_total",
                                    "Status change requests by action and outcome",
                                    {"action", "outcome"})) {}

Status OrderHandler::CreateOrder(grpc::ServerContext* context,
                                 const v1::CreateOrderRequest* request, v1::Order* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "OrderService.CreateOrder", [&] {
    if (!signed_in(call)) return unauthenticated();
    NewOrder order;
    auto problem = check_new_order(from_proto(request->items()), request->currency(), order);
    if (!problem.empty()) return invalid(problem);
    std::optional<IdempotencyClaim> claim;
    if (!call.idempotency_key.empty()) {
      claim = IdempotencyClaim{call.idempotency_key, create_request_hash(*request)};
    }
    CreateResult result;
    try {
      result = store_.create(call.identity.user_id, order, claim);
    } catch (const IdempotencyKeyReused&) {
      service::set_http_error(*context, 422, "idempotency_key_reused");
      return Status(StatusCode::FAILED_PRECONDITION,
                    "this Idempotency-Key was used with a different request");
    }
    creations_.with({result.replayed ? "replayed" : "created"}).inc();
    to_proto(result.order, response);
    if (!result.replayed) call.log.info("order created", {{"order_id", result.order.id}});
    return Status::OK;
  });
}

Status OrderHandler::ListOrders(grpc::ServerContext* context, const v1::ListOrdersRequest* request,
                                v1::ListOrdersResponse* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "OrderService.ListOrders", [&] {
    if (!signed_in(call)) return unauthenticated();
    int limit = 0;
    auto problem = check_page_size(request->has_limit(), request->limit(), limit);
    if (!problem.empty()) return invalid(problem);
    auto viewer = viewer_of(call);
    std::optional<int64_t> before;
    if (!request->page_token().empty()) {
      before = decode_page_cursor(kListing, request->page_token(), listing_scope(viewer));
      if (!before) return invalid("page_token is not valid for this listing");
    }
    auto page = store_.list(viewer, limit, before);
    for (const auto& order : page.orders) to_proto(order, response->add_orders());
    if (page.more) {
      response->set_next_page_token(
          encode_page_cursor(kListing, page.orders.back().seq, listing_scope(viewer)));
    }
    return Status::OK;
  });
}

Status OrderHandler::GetOrder(grpc::ServerContext* context, const v1::GetOrderRequest* request,
                              v1::Order* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, "OrderService.GetOrder", [&] {
    if (!signed_in(call)) return unauthenticated();
    // Not found whether it does not exist or belongs to someone else: ids cannot be probed.
    auto order = store_.find(request->id(), viewer_of(call));
    if (!order) return order_not_found();
    to_proto(*order, response);
    return Status::OK;
  });
}

Status OrderHandler::CancelOrder(grpc::ServerContext* context,
                                 const v1::CancelOrderRequest* request, v1::Order* response) {
  return change_status(context, "OrderService.CancelOrder", request->id(), OrderAction::kCancel,
                       response);
}

Status OrderHandler::ConfirmOrder(grpc::ServerContext* context,
                                  const v1::ConfirmOrderRequest* request, v1::Order* response) {
  return change_status(context, "OrderService.ConfirmOrder", request->id(), OrderAction::kConfirm,
                       response);
}

Status OrderHandler::ShipOrder(grpc::ServerContext* context, const v1::ShipOrderRequest* request,
                               v1::Order* response) {
  return change_status(context, "OrderService.ShipOrder", request->id(), OrderAction::kShip,
                       response);
}

Status OrderHandler::change_status(grpc::ServerContext* context, const char* method,
                                   const std::string& id, OrderAction action, v1::Order* response) {
  auto call = service::call_context(*context, &tracer_);
  return service::run_rpc(call, method, [&] {
    if (!signed_in(call)) return unauthenticated();
    auto viewer = viewer_of(call);
    std::string action_name(to_string(action));
    // Owners may cancel; only admins confirm and ship. Checked before any lookup, so that the
    // answer says nothing about whether the order exists.
    if (action != OrderAction::kCancel && !viewer.admin) {
      transitions_.with({action_name, "forbidden"}).inc();
      return Status(StatusCode::PERMISSION_DENIED, "the admin role is required to " + action_name);
    }
    auto result = store_.transition(id, viewer, action);
    switch (result.outcome) {
      case TransitionResult::Outcome::kNotFound:
        transitions_.with({action_name, "not_found"}).inc();
        return order_not_found();
      case TransitionResult::Outcome::kIllegal:
        transitions_.with({action_name, "illegal"}).inc();
        service::set_http_error(*context, 409, "illegal_transition");
        return Status(StatusCode::FAILED_PRECONDITION,
                      "cannot " + action_name + " an order that is " +
                          std::string(to_string(result.order.status)));
      case TransitionResult::Outcome::kChanged:
        break;
    }
    transitions_.with({action_name, "changed"}).inc();
    call.log.info("order status changed",
                  {{"order_id", result.order.id}, {"status", to_string(result.order.status)}});
    to_proto(result.order, response);
    return Status::OK;
  });
}

}  // namespace trellis::orders
