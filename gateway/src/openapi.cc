#include "trellis/gateway/openapi.h"

#include <google/protobuf/descriptor.h>

#include <nlohmann/json.hpp>
#include <set>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::ordered_json;

std::string schema_name(const pb::Descriptor* message) {
  return message->full_name();
}

Json ref(const pb::Descriptor* message) {
  return {{"$ref", "#/components/schemas/" + schema_name(message)}};
}

// Schemas follow the proto3 JSON mapping (64-bit integers as strings, Timestamp as RFC 3339).
class SchemaBuilder {
 public:
  Json field_schema(const pb::FieldDescriptor* field) {
    if (field->is_map()) {
      return {{"type", "object"},
              {"additionalProperties", scalar_schema(field->message_type()->map_value())}};
    }
    auto item = scalar_schema(field);
    if (field->is_repeated()) return {{"type", "array"}, {"items", item}};
    return item;
  }

  void add_message(const pb::Descriptor* message) {
    auto name = schema_name(message);
    if (done_.count(name)) return;
    done_.insert(name);
    Json properties = Json::object();
    for (int i = 0; i < message->field_count(); ++i) {
      const auto* field = message->field(i);
      properties[field->name()] = field_schema(field);
    }
    Json schema = {{"type", "object"}, {"properties", properties}, {"additionalProperties", false}};
    schemas_[name] = schema;
  }

  Json take() { return std::move(schemas_); }

 private:
  Json scalar_schema(const pb::FieldDescriptor* field) {
    using F = pb::FieldDescriptor;
    switch (field->type()) {
      case F::TYPE_STRING:
        return {{"type", "string"}};
      case F::TYPE_BYTES:
        return {{"type", "string"}, {"contentEncoding", "base64"}};
      case F::TYPE_BOOL:
        return {{"type", "boolean"}};
      case F::TYPE_DOUBLE:
      case F::TYPE_FLOAT:
        return {{"type", "number"}};
      case F::TYPE_INT32:
      case F::TYPE_SINT32:
      case F::TYPE_SFIXED32:
        return {{"type", "integer"}, {"format", "int32"}};
      case F::TYPE_UINT32:
      case F::TYPE_FIXED32:
        return {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
      case F::TYPE_INT64:
      case F::TYPE_SINT64:
      case F::TYPE_SFIXED64:
      case F::TYPE_UINT64:
      case F::TYPE_FIXED64:
        return {{"type", "string"}, {"format", "int64"}};
      case F::TYPE_ENUM: {
        Json values = Json::array();
        for (int i = 0; i < field->enum_type()->value_count(); ++i) {
          values.push_back(field->enum_type()->value(i)->name());
        }
        return {{"type", "string"}, {"enum", values}};
      }
      case F::TYPE_MESSAGE:
      case F::TYPE_GROUP: {
        const auto* type = field->message_type();
        if (type->full_name() == "google.protobuf.Timestamp") {
          return {{"type", "string"}, {"format", "date-time"}};
        }
        if (type->full_name() == "google.protobuf.Duration") return {{"type", "string"}};
        add_message(type);
        return ref(type);
      }
    }
    return Json::object();
  }

  std::set<std::string> done_;
  Json schemas_ = Json::object();
};

// "/v1/users/{id}:cancel" is already OpenAPI syntax for a path with a parameter.
std::vector<std::string> path_variables(const Route& route) {
  std::vector<std::string> names;
  for (const auto& segment : route.path.segments) {
    if (!segment.variable.empty()) names.push_back(segment.variable);
  }
  return names;
}

}  // namespace

std::string render_openapi(const RouteTable& routes, std::string_view version) {
  SchemaBuilder schemas;
  Json paths = Json::object();
  for (const auto& route : routes.routes()) {
    if (route->local) continue;  // not part of the proto contract
    Json operation;
    operation["operationId"] = route->rpc_name;
    if (!route->summary.empty()) operation["summary"] = route->summary;
    operation["tags"] = Json::array({route->upstream});
    Json parameters = Json::array();
    auto variables = path_variables(*route);
    for (const auto& name : variables) {
      parameters.push_back(
          {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
    }
    bool has_body = route->http_method != "GET" && route->http_method != "DELETE";
    if (!has_body) {
      for (int i = 0; i < route->input->field_count(); ++i) {
        const auto* field = route->input->field(i);
        bool bound =
            std::find(variables.begin(), variables.end(), field->name()) != variables.end();
        if (bound || field->is_repeated() ||
            field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
          continue;
        }
        parameters.push_back({{"name", field->name()},
                              {"in", "query"},
                              {"required", false},
                              {"schema", schemas.field_schema(field)}});
      }
    }
    if (!parameters.empty()) operation["parameters"] = parameters;
    if (has_body) {
      schemas.add_message(route->input);
      operation["requestBody"] = {
          {"required", false},
          {"content", {{"application/json", {{"schema", ref(route->input)}}}}}};
    }
    Json responses = Json::object();
    auto success = std::to_string(route->success_status);
    if (route->success_status == 204) {
      responses[success] = {{"description", "No content"}};
    } else {
      schemas.add_message(route->output);
      responses[success] = {{"description", "Success"},
                            {"content", {{"application/json", {{"schema", ref(route->output)}}}}}};
    }
    responses["default"] = {
        {"description", "Error"},
        {"content",
         {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    operation["responses"] = responses;
    if (route->auth == AuthMode::kPublic) {
      operation["security"] = Json::array();
    }
    std::string method = route->http_method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    paths[route->path.text][method] = operation;
  }

  Json components;
  auto all_schemas = schemas.take();
  all_schemas["Error"] = {
      {"type", "object"},
      {"required", {"code", "message", "request_id"}},
      {"properties",
       {{"code", {{"type", "string"}, {"description", "Stable snake_case error code"}}},
        {"message", {{"type", "string"}}},
        {"request_id", {{"type", "string"}}}}}};
  components["schemas"] = all_schemas;
  components["securitySchemes"] = {
      {"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}};

  Json document;
  document["openapi"] = "3.1.0";
  document["info"] = {{"title", "Trellis API"},
                      {"version", std::string(version)},
                      {"description", "Generated from the HTTP options of the .proto files."}};
  document["security"] = Json::array({{{"bearerAuth", Json::array()}}});
  document["paths"] = paths;
  document["components"] = components;
  return document.dump(2);
}

}  // namespace trellis::gateway
