// Routes come from the HTTP options of the .proto files (trellis.api.v1.http) — declared once,
// next to the RPC. This table is built from the linked descriptor pool at start-up.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace google::protobuf {
class Descriptor;
class MethodDescriptor;
}  // namespace google::protobuf

namespace trellis::gateway {

// One segment of a path template: a literal, or a variable bound to a request field, optionally
// followed by a custom verb (":cancel" in "/v1/orders/{id}:cancel").
struct PathSegment {
  std::string literal;
  std::string variable;
  std::string verb;
};

struct PathTemplate {
  std::string text;
  std::vector<PathSegment> segments;
  int literal_count = 0;

  // Throws std::invalid_argument on a malformed template.
  static PathTemplate parse(std::string_view text);
  // Binds variables (percent-decoded) on success.
  bool match(std::string_view path, std::map<std::string, std::string>& bound) const;
  // The same for a path already split at '/' (the route table splits once for every template).
  bool match_segments(const std::vector<std::string_view>& parts,
                      std::map<std::string, std::string>& bound) const;
};

enum class AuthMode { kRequired, kPublic };

struct Route {
  std::string http_method;
  PathTemplate path;
  std::string grpc_method;  // "/trellis.users.v1.UserService/GetMe"
  std::string rpc_name;     // "trellis.users.v1.UserService.GetMe"
  std::string upstream;
  int success_status = 200;
  AuthMode auth = AuthMode::kRequired;
  int timeout_ms = 0;  // 0: gateway default
  std::string summary;
  const google::protobuf::Descriptor* input = nullptr;
  const google::protobuf::Descriptor* output = nullptr;
  // Answered by a gateway filter itself (the live push stream): no upstream, not in the proto
  // contract; listed so that rate limits, metrics and access logs see its template.
  bool local = false;
};

// Route selection in configuration: "*" (all), an exact template ("/v1/users/{id}"), or a prefix
// ending in '*' ("/v1/auth/*").
bool route_pattern_matches(std::string_view pattern, std::string_view route_template);

struct RouteMatch {
  const Route* route = nullptr;
  std::map<std::string, std::string> params;
  // When the path exists but not for this method: the methods it has (for 405 + Allow).
  std::vector<std::string> allowed_methods;
};

class RouteTable {
 public:
  // Every RPC with an http option in the given proto files. Throws std::runtime_error on an
  // invalid mapping (bad template, variable naming no string field, duplicate route, no upstream).
  static RouteTable from_proto_files(const std::vector<std::string>& files);
  // All proto files compiled into trellis_proto.
  static RouteTable from_linked_protos();

  // A route a filter answers itself (Route::local); throws on a duplicate.
  void add_local(std::string http_method, const std::string& path_template);

  RouteMatch match(std::string_view method, std::string_view path) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }
  std::vector<std::string> upstreams() const;  // of the proto routes

 private:
  void add(std::unique_ptr<Route> route);
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace trellis::gateway
