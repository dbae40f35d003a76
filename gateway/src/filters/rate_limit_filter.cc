#include "trellis/gateway/filters/rate_limit_filter.h"

#include "trellis/common/digest.h"

#include <chrono>

#include "trellis/common/log.h"
#include "trellis/gateway/readiness.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/route_table.h"

namespace trellis::gateway {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Check {
  const RateLimitPolicy* policy;
  std::string key;
  RateLimitDecision decision;
};

// Collects the decisions of one request's policies; the last one to arrive finishes.
struct PendingChecks {
  std::vector<Check> checks;
  size_t outstanding = 0;
};

RateLimitDecision parse_reply(const RedisReply& reply, bool& ok) {
  RateLimitDecision decision;
  ok = reply.type == RedisReply::Type::kArray && reply.elements.size() == 4;
  if (!ok) return decision;
  for (const auto& element : reply.elements) {
    if (element.type != RedisReply::Type::kInteger) ok = false;
  }
  if (!ok) return decision;
  decision.allowed = reply.elements[0].integer == 1;
  decision.remaining = reply.elements[1].integer;
  decision.reset_ms = reply.elements[2].integer;
  decision.retry_after_ms = reply.elements[3].integer;
  return decision;
}

int64_t ceil_seconds(int64_t ms) {
  return (ms + 999) / 1000;
}

}  // namespace

RateLimitState::RateLimitState(RateLimitSettings settings, RedisClient& redis, Readiness& readiness,
                               metrics::Registry& registry)
    : settings_(std::move(settings)),
      addresses_(settings_.trusted_proxies),
      redis_(redis),
      readiness_(readiness),
      decisions_(registry.counter("gateway_ratelimit_decisions_total",
                                  "Rate-limit decisions by policy, decision and mode",
                                  {"policy", "decision", "mode"})),
      mode_gauge_(registry
                      .gauge("gateway_ratelimit_shared_mode",
                             "1 while decisions are shared through Redis, 0 in local fallback")
                      .with({})) {}

void RateLimitState::note_mode(bool shared) {
  int mode = shared ? 1 : 0;
  if (mode_.exchange(mode) == mode) return;
  mode_gauge_.set(mode);
  if (shared) {
    log::info("rate limiting shared through redis again");
    readiness_.set("ratelimit", true, "shared (redis)");
  } else {
    log::warn("redis unreachable: rate limiting locally", {{"replicas", settings_.replicas}});
    readiness_.set("ratelimit", true, "local fallback: limit / replicas per replica");
  }
}

void RateLimitState::count(const std::string& policy, bool allowed, bool shared) {
  decisions_.with({policy, allowed ? "allowed" : "refused", shared ? "shared" : "local"}).inc();
}

RateLimitFilter::RateLimitFilter(RateLimitStage stage, std::shared_ptr<RateLimitState> state)
    : stage_(stage), state_(std::move(state)) {}

void RateLimitFilter::on_request(const ExchangePtr& exchange) {
  // Per-user limits only once the token's revocation check passed: a revoked token must not spend
  // its user's budget.
  if (stage_ == RateLimitStage::kAfterAuth) {
    exchange->after_hold([this, exchange] { check(exchange); });
    return;
  }
  check(exchange);
}

void RateLimitFilter::check(const ExchangePtr& exchange) {
  auto& context = exchange->context;
  std::string route = context.route ? context.route->path.text : "-";
  std::shared_ptr<PendingChecks> pending;  // made only when a policy applies (most routes: none)
  for (const auto& policy : state_->settings().policies) {
    bool user_policy = policy.key == RateLimitKey::kUser;
    if (user_policy != (stage_ == RateLimitStage::kAfterAuth)) continue;
    if (!policy.applies_to(route)) continue;
    std::string identity;
    switch (policy.key) {
      case RateLimitKey::kClientIp:
        identity = state_->addresses().resolve(exchange->request.remote_address,
                                               exchange->request.header("x-forwarded-for"));
        break;
      case RateLimitKey::kUser:
        identity = context.identity.user_id;
        break;
      case RateLimitKey::kApiKey: {
        auto key = exchange->request.header("x-api-key");
        // Only a digest of the key is stored in Redis.
        if (!key.empty()) identity = sha256_hex(key);
        break;
      }
    }
    if (identity.empty()) continue;  // e.g. no API key sent: that policy does not apply
    if (!pending) pending = std::make_shared<PendingChecks>();
    pending->checks.push_back({&policy, "trellis:rl:" + policy.name + ":" + identity, {}});
  }
  if (!pending) {
    exchange->next();
    return;
  }

  auto finish = [this, exchange, pending] {
    const Check* refused = nullptr;
    for (const auto& check : pending->checks) {
      auto& policy_header = exchange->context.ratelimit_policy_header;
      auto& state_header = exchange->context.ratelimit_header;
      const auto& p = *check.policy;
      policy_header +=
          (policy_header.empty() ? "" : ", ") +
          ("\"" + p.name + "\";q=" + std::to_string(p.limit) + ";w=" + std::to_string(p.window_s));
      state_header += (state_header.empty() ? "" : ", ") +
                      ("\"" + p.name + "\";r=" + std::to_string(check.decision.remaining) +
                       ";t=" + std::to_string(ceil_seconds(check.decision.reset_ms)));
      if (!check.decision.allowed &&
          (!refused || check.decision.retry_after_ms > refused->decision.retry_after_ms)) {
        refused = &check;
      }
    }
    if (!refused) {
      exchange->next();
      return;
    }
    auto response = json_error(429, "rate_limited",
                               "rate limit \"" + refused->policy->name + "\" exceeded; retry later",
                               exchange->context.request_id);
    response.headers.emplace_back(
        "Retry-After",
        std::to_string(std::max<int64_t>(1, ceil_seconds(refused->decision.retry_after_ms))));
    exchange->respond(std::move(response));
  };

  auto decide_locally = [this](Check& check) {
    const auto& p = *check.policy;
    // Each replica takes its share of the limit while they cannot coordinate.
    RateLimitPolicy share = p;
    share.limit = std::max<int64_t>(1, p.limit / std::max(1, state_->settings().replicas));
    share.burst = std::min(p.burst, share.limit);
    check.decision = state_->local().decide(check.key, now_us(), share.emission_interval_us(),
                                            share.tolerance_us());
    state_->count(p.name, check.decision.allowed, false);
  };

  if (!state_->redis().connected()) {
    state_->note_mode(false);
    for (auto& check : pending->checks) decide_locally(check);
    finish();
    return;
  }
  pending->outstanding = pending->checks.size();
  for (size_t i = 0; i < pending->checks.size(); ++i) {
    const auto& p = *pending->checks[i].policy;
    std::vector<std::string> command = {"EVALSHA",
                                        gcra_script_sha1(),
                                        "1",
                                        pending->checks[i].key,
                                        std::to_string(p.emission_interval_us()),
                                        std::to_string(p.tolerance_us())};
    auto on_reply = [this, exchange, pending, i, finish, decide_locally](RedisResult result) {
      exchange->post([=, this, result = std::move(result)]() mutable {
        auto& check = pending->checks[i];
        bool ok = false;
        if (result.ok) check.decision = parse_reply(result.reply, ok);
        if (ok) {
          state_->note_mode(true);
          state_->count(check.policy->name, check.decision.allowed, true);
        } else {
          if (result.ok) {
            exchange->context.log.warn("rate-limit script failed", {{"error", result.reply.str}});
          }
          state_->note_mode(false);
          decide_locally(check);
        }
        if (--pending->outstanding == 0) finish();
      });
    };
    // EVALSHA, and EVAL once when the server does not know the script yet (e.g. after a restart).
    auto& redis = state_->redis();
    redis.command(command, [&redis, command, on_reply](RedisResult result) mutable {
      if (result.ok && result.reply.type == RedisReply::Type::kError &&
          result.reply.str.rfind("NOSCRIPT", 0) == 0) {
        command[0] = "EVAL";
        command[1] = gcra_script();
        redis.command(std::move(command), std::move(on_reply));
        return;
      }
      on_reply(std::move(result));
    });
  }
}

void RateLimitFilter::on_response(Exchange& exchange) {
  const auto& context = exchange.context;
  if (context.ratelimit_policy_header.empty()) return;
  set_header(exchange.response.headers, "RateLimit-Policy", context.ratelimit_policy_header);
  set_header(exchange.response.headers, "RateLimit", context.ratelimit_header);
}

}  // namespace trellis::gateway
