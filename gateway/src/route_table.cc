#include "trellis/gateway/route_table.h"

#include <google/protobuf/descriptor.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "trellis/api/v1/http.pb.h"
#include "trellis/proto_files.h"

namespace trellis::gateway {
namespace {

namespace pb = google::protobuf;

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path.front() != '/') return parts;
  parts.reserve(static_cast<size_t>(std::count(path.begin(), path.end(), '/')));
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int high = hex_value(text[i + 1]), low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool is_identifier(std::string_view text) {
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

PathTemplate PathTemplate::parse(std::string_view text) {
  PathTemplate result;
  result.text = std::string(text);
  auto parts = split_path(text);
  if (parts.empty())
    throw std::invalid_argument("path template must start with '/': " + result.text);
  for (auto part : parts) {
    PathSegment segment;
    if (!part.empty() && part.front() == '{') {
      auto close = part.find('}');
      if (close == std::string_view::npos) {
        throw std::invalid_argument("unclosed '{' in path template " + result.text);
      }
      segment.variable = std::string(part.substr(1, close - 1));
      auto rest = part.substr(close + 1);
      if (!is_identifier(segment.variable)) {
        throw std::invalid_argument("bad variable name in path template " + result.text);
      }
      if (!rest.empty()) {
        if (rest.front() != ':' || rest.size() < 2) {
          throw std::invalid_argument("only ':verb' may follow a variable in " + result.text);
        }
        segment.verb = std::string(rest);
      }
    } else {
      if (part.empty() || part.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("bad segment in path template " + result.text);
      }
      segment.literal = std::string(part);
      ++result.literal_count;
    }
    result.segments.push_back(std::move(segment));
  }
  return result;
}

bool PathTemplate::match(std::string_view path, std::map<std::string, std::string>& bound) const {
  return match_segments(split_path(path), bound);
}

bool PathTemplate::match_segments(const std::vector<std::string_view>& parts,
                                  std::map<std::string, std::string>& bound) const {
  if (parts.size() != segments.size()) return false;
  std::map<std::string, std::string> values;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& segment = segments[i];
    auto part = parts[i];
    if (segment.variable.empty()) {
      if (part != segment.literal) return false;
      continue;
    }
    if (!segment.verb.empty()) {
      if (part.size() <= segment.verb.size() ||
          part.substr(part.size() - segment.verb.size()) != segment.verb) {
        return false;
      }
      part.remove_suffix(segment.verb.size());
    }
    auto decoded = percent_decode(part);
    if (!decoded || decoded->empty()) return false;
    values[segment.variable] = std::move(*decoded);
  }
  bound = std::move(values);
  return true;
}

bool route_pattern_matches(std::string_view pattern, std::string_view route_template) {
  if (pattern == "*" || pattern == route_template) return true;
  return !pattern.empty() && pattern.back() == '*' &&
         route_template.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
}

RouteTable RouteTable::from_linked_protos() {
  return from_proto_files(trellis::proto::all_files());
}

RouteTable RouteTable::from_proto_files(const std::vector<std::string>& files) {
  RouteTable table;
  const auto* pool = pb::DescriptorPool::generated_pool();
  for (const auto& name : files) {
    const auto* file = pool->FindFileByName(name);
    if (!file) throw std::runtime_error("proto file not linked: " + name);
    for (int s = 0; s < file->service_count(); ++s) {
      const auto* service = file->service(s);
      const auto& upstream = service->options().GetExtension(api::v1::upstream);
      for (int m = 0; m < service->method_count(); ++m) {
        const auto* method = service->method(m);
        if (!method->options().HasExtension(api::v1::http)) continue;
        if (method->client_streaming() || method->server_streaming()) {
          throw std::runtime_error(method->full_name() + ": streaming RPCs cannot have http");
        }
        const auto& rule = method->options().GetExtension(api::v1::http);
        if (upstream.empty()) {
          throw std::runtime_error(service->full_name() + " has http routes but no upstream");
        }
        auto route = std::make_unique<Route>();
        route->http_method = rule.method();
        static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        if (!kMethods.count(route->http_method)) {
          throw std::runtime_error(method->full_name() + ": unsupported method " + rule.method());
        }
        route->path = PathTemplate::parse(rule.path());
        route->grpc_method = "/" + service->full_name() + "/" + method->name();
        route->rpc_name = method->full_name();
        route->upstream = upstream;
        route->success_status = rule.success_status() == 0 ? 200 : rule.success_status();
        route->auth =
            rule.auth() == api::v1::AUTH_POLICY_PUBLIC ? AuthMode::kPublic : AuthMode::kRequired;
        route->timeout_ms = static_cast<int>(rule.timeout_ms());
        route->summary = rule.summary();
        route->input = method->input_type();
        route->output = method->output_type();
        for (const auto& segment : route->path.segments) {
          if (segment.variable.empty()) continue;
          const auto* field = route->input->FindFieldByName(segment.variable);
          if (!field || field->type() != pb::FieldDescriptor::TYPE_STRING || field->is_repeated()) {
            throw std::runtime_error(method->full_name() + ": path variable {" + segment.variable +
                                     "} is not a string field of the request");
          }
        }
        table.add(std::move(route));
      }
    }
  }
  return table;
}

void RouteTable::add(std::unique_ptr<Route> route) {
  for (const auto& existing : routes_) {
    if (existing->http_method == route->http_method && existing->path.text == route->path.text) {
      throw std::runtime_error("duplicate route " + route->http_method + " " + route->path.text);
    }
  }
  routes_.push_back(std::move(route));
}

RouteMatch RouteTable::match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  const auto parts = split_path(path);  // once, not once per template (this runs per request)
  int best_literals = -1;
  for (const auto& route : routes_) {
    // The most literal template wins: "/v1/users/me" before "/v1/users/{id}".
    if (route->http_method != method || route->path.literal_count <= best_literals) continue;
    std::map<std::string, std::string> params;
    if (!route->path.match_segments(parts, params)) continue;
    best_literals = route->path.literal_count;
    result.route = route.get();
    result.params = std::move(params);
  }
  if (result.route) return result;
  // No route for this method: which methods the path has (405 with Allow), or none (404).
  std::set<std::string> allowed;
  for (const auto& route : routes_) {
    std::map<std::string, std::string> params;
    if (route->path.match_segments(parts, params)) allowed.insert(route->http_method);
  }
  result.allowed_methods.assign(allowed.begin(), allowed.end());
  return result;
}

void RouteTable::add_local(std::string http_method, const std::string& path_template) {
  auto route = std::make_unique<Route>();
  route->http_method = std::move(http_method);
  route->path = PathTemplate::parse(path_template);
  route->rpc_name = "gateway.local";
  route->auth = AuthMode::kPublic;  // the filter that answers authenticates for itself
  route->local = true;
  add(std::move(route));
}

std::vector<std::string> RouteTable::upstreams() const {
  std::set<std::string> names;
  for (const auto& route : routes_) {
    if (!route->local) names.insert(route->upstream);
  }
  return {names.begin(), names.end()};
}

}  // namespace trellis::gateway
