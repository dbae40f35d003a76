#include "trellis/gateway/filters/cache_filter.h"

#include "trellis/common/digest.h"

#include <chrono>

#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/tracked_keys.h"

namespace trellis::gateway {
namespace {

// The scope of entries shared by all users (routes with per_user false).
const std::string kSharedScope = "*";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void add_cache_headers(HttpResponse& response, const CacheRoute& route, const std::string& etag,
                       int ttl_left_s, std::string_view result) {
  response.headers.reserve(response.headers.size() + 4);
  set_header(response.headers, "ETag", etag);
  std::string cache_control = route.per_user ? "private, max-age=" : "public, max-age=";
  cache_control += std::to_string(std::max(0, ttl_left_s));
  set_header(response.headers, "Cache-Control", std::move(cache_control));
  if (route.per_user) set_header(response.headers, "Vary", "Authorization");
  set_header(response.headers, "X-Cache", std::string(result));
}

// Current: stored under this generation and not expired.
bool fresh(const CacheEntry& entry, const std::string& generation, int64_t now) {
  return entry.generation == generation && entry.expires_at_ms > now;
}

}  // namespace

CacheFilter::CacheFilter(CacheSettings settings, RedisClient& redis, TrackedKeys& tracked,
                         metrics::Registry& registry)
    : settings_(std::move(settings)),
      redis_(redis),
      tracked_(tracked),
      l1_(settings_.l1_max_bytes),
      requests_(registry.counter("gateway_cache_requests_total",
                                 "Cacheable requests by route and result (hit_l1, hit_l2, miss, "
                                 "coalesced, bypass)",
                                 {"route", "result"})),
      l1_bytes_(registry.gauge("gateway_cache_l1_bytes", "Bytes held by the L1 cache").with({})),
      l1_evictions_(registry
                        .counter("gateway_cache_l1_evictions_total",
                                 "L1 entries evicted to stay within l1_max_bytes")
                        .with({})) {
  for (const auto& route : settings_.routes) {
    route_counters_.push_back(
        {&requests_.with({route.route, "hit_l1"}), &requests_.with({route.route, "hit_l2"}),
         &requests_.with({route.route, "miss"}), &requests_.with({route.route, "coalesced"})});
  }
}

std::shared_ptr<const CacheEntry> CacheFilter::fresh_l1(const std::string& key,
                                                        const std::string& generation,
                                                        int64_t now) {
  auto entry = l1_.get(key);
  if (!entry || !fresh(*entry, generation, now)) return nullptr;
  return entry;
}

void CacheFilter::store_l1(const std::string& key, const CacheEntry& entry) {
  l1_evictions_.inc(l1_.put(key, entry));
  l1_bytes_.set(static_cast<int64_t>(l1_.bytes()));
}

const CacheRoute* CacheFilter::cached_route(const std::string& route_template) const {
  for (const auto& route : settings_.routes) {
    if (route.route == route_template) return &route;
  }
  return nullptr;
}

void CacheFilter::on_request(const ExchangePtr& exchange) {
  const auto* route = exchange->context.route;
  if (!route) {
    exchange->next();
    return;
  }
  if (exchange->request.method != "GET") {
    register_invalidation(exchange, route->path.text);
    exchange->next();
    return;
  }
  const auto* cached = cached_route(route->path.text);
  if (!cached || (cached->per_user && !exchange->context.identity.authenticated())) {
    exchange->next();
    return;
  }
  lookup(exchange, *cached);
}

void CacheFilter::lookup(const ExchangePtr& exchange, const CacheRoute& route) {
  const auto& context = exchange->context;
  const std::string& scope = route.per_user ? context.identity.user_id : kSharedScope;
  // Route, path, sorted query and scope, hashed: a bounded key whatever the request's size.
  std::string identity = route.route;
  auto query = normalized_query(exchange->request.query);
  identity.reserve(route.route.size() + exchange->request.path.size() + query.size() +
                   scope.size() + 3);
  identity.append("\n").append(exchange->request.path).append("?").append(query);
  identity.append("\n").append(scope);
  auto entry_key = "trellis:cache:v1:" + sha256_hex(identity);
  auto generation_key = cache_generation_key(route.route, scope);
  // The common case answers here: the generation is held locally and L1 has its entry.
  if (auto known = tracked_.lookup(std::span(&generation_key, 1))) {
    if (auto entry = fresh_l1(entry_key, (*known)[0].value_or("0"), now_ms())) {
      // Only once the token's revocation check passed (at once when it was answered locally).
      exchange->after_hold([this, exchange, &route, entry = std::move(entry)] {
        counters(route).hit_l1->inc();
        serve(exchange, route, *entry, "HIT");
      });
      return;
    }
  }
  // One round trip: the current generation and the shared entry.
  tracked_.read({std::move(generation_key), entry_key}, [this, exchange, &route,
                                                         entry_key](RedisResult result) {
    // The answer (and a miss's leadership) only once the token's revocation check
    // passed; after a failed check the exchange is answered and this is dropped.
    exchange->post([this, exchange, &route, entry_key, result = std::move(result)]() mutable {
      exchange->after_hold([this, exchange, &route, entry_key, result = std::move(result)] {
        resolve(exchange, route, entry_key, result);
      });
    });
  });
}

void CacheFilter::resolve(const ExchangePtr& exchange, const CacheRoute& route,
                          const std::string& entry_key, const RedisResult& result) {
  if (!result.ok || result.reply.type != RedisReply::Type::kArray ||
      result.reply.elements.size() != 2) {
    requests_.with({route.route, "bypass"}).inc();
    exchange->context.cache_result = "BYPASS";
    exchange->next();
    return;
  }
  const auto& gen_reply = result.reply.elements[0];
  std::string generation = gen_reply.type == RedisReply::Type::kString ? gen_reply.str : "0";
  auto now = now_ms();
  if (auto entry = fresh_l1(entry_key, generation, now)) {
    counters(route).hit_l1->inc();
    serve(exchange, route, *entry, "HIT");
    return;
  }
  const auto& shared = result.reply.elements[1];
  if (shared.type == RedisReply::Type::kString) {
    auto entry = CacheEntry::parse(shared.str);
    if (entry && fresh(*entry, generation, now)) {
      store_l1(entry_key, *entry);
      counters(route).hit_l2->inc();
      serve(exchange, route, *entry, "HIT");
      return;
    }
  }
  // Miss: the first request for this key asks the service; others wait.
  auto coalesce_key = entry_key + "#" + generation;
  {
    std::lock_guard lock(leaders_mutex_);
    auto [it, first] = waiting_.try_emplace(coalesce_key);
    if (!first) {
      it->second.push_back(exchange);
      counters(route).coalesced->inc();
      return;
    }
  }
  counters(route).miss->inc();
  auto& context = exchange->context;
  context.cache_result = "MISS";
  context.cache_key = entry_key;
  context.cache_generation = generation;
  context.cache_leader = true;
  exchange->next();
}

void CacheFilter::serve(const ExchangePtr& exchange, const CacheRoute& route,
                        const CacheEntry& entry, std::string_view result) {
  auto ttl_left = static_cast<int>((entry.expires_at_ms - now_ms()) / 1000);
  HttpResponse response;
  if (etag_matches(exchange->request.header("if-none-match"), entry.etag)) {
    response.status = 304;
  } else {
    response = json_response(200, entry.body);
  }
  add_cache_headers(response, route, entry.etag, ttl_left, result);
  exchange->respond(std::move(response));
}

void CacheFilter::on_response(Exchange& exchange) {
  auto& context = exchange.context;
  const auto* route = context.route ? cached_route(context.route->path.text) : nullptr;
  if (!route || exchange.request.method != "GET" || context.cache_result.empty()) return;
  if (!context.cache_leader) return;  // hits and coalesced answers carry their headers already
  auto& response = exchange.response;
  std::vector<ExchangePtr> waiters;
  {
    std::lock_guard lock(leaders_mutex_);
    auto it = waiting_.find(context.cache_key + "#" + context.cache_generation);
    if (it != waiting_.end()) {
      waiters = std::move(it->second);
      waiting_.erase(it);
    }
  }
  if (response.status == 200) {
    CacheEntry entry;
    entry.generation = context.cache_generation;
    entry.etag = strong_etag(response.body);
    entry.body = response.body;
    entry.expires_at_ms = now_ms() + route->ttl_s * 1000LL;
    store_l1(context.cache_key, entry);
    redis_.command(
        {"SET", context.cache_key, entry.serialize(), "PX", std::to_string(route->ttl_s * 1000LL)},
        [](RedisResult) {});  // best effort: L2 is an optimisation
    for (auto& waiter : waiters) {
      waiter->post([this, waiter, route, entry] { serve(waiter, *route, entry, "HIT"); });
    }
    add_cache_headers(response, *route, entry.etag, route->ttl_s, "MISS");
    // 304 on a miss too: the client may already hold this version.
    if (etag_matches(exchange.request.header("if-none-match"), entry.etag)) {
      response.status = 304;
      response.body.clear();
    }
    return;
  }
  // Errors are not cached; waiters get the same answer rather than a second upstream call.
  for (auto& waiter : waiters) {
    waiter->post([waiter, copy = response] { waiter->respond(copy); });
  }
}

void CacheFilter::register_invalidation(const ExchangePtr& exchange,
                                        const std::string& route_template) {
  std::vector<std::string> keys;
  const auto& identity = exchange->context.identity;
  for (const auto& route : settings_.routes) {
    for (const auto& rule : route.invalidated_by) {
      auto space = rule.find(' ');
      if (space == std::string::npos || rule.substr(0, space) != exchange->request.method ||
          !route_pattern_matches(rule.substr(space + 1), route_template)) {
        continue;
      }
      if (route.per_user && !identity.authenticated()) continue;
      keys.push_back(cache_generation_key(route.route, route.per_user ? identity.user_id : "*"));
    }
  }
  if (keys.empty()) return;
  // Runs after the service succeeded and before the client sees the answer.
  exchange->context.before_success_response.push_back(
      [this, keys, exchange](std::function<void()> done) {
        auto remaining = std::make_shared<size_t>(keys.size());
        for (const auto& key : keys) {
          redis_.command({"INCR", key}, [this, exchange, remaining, done, key](RedisResult result) {
            // This replica's next request must not wait for Redis' invalidation message.
            tracked_.forget(key);
            exchange->post([exchange, remaining, done, key, ok = result.ok] {
              if (!ok) {
                exchange->context.log.warn("cache invalidation failed", {{"key", key}});
              }
              if (--*remaining == 0) done();
            });
          });
        }
      });
}

}  // namespace trellis::gateway
