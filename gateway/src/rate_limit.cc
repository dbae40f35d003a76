#include "trellis/gateway/rate_limit.h"

#include "trellis/common/digest.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

bool RateLimitPolicy::applies_to(const std::string& route_template) const {
  for (const auto& pattern : routes) {
    if (route_pattern_matches(pattern, route_template)) return true;
  }
  return false;
}

int64_t RateLimitPolicy::emission_interval_us() const {
  // limit - burst + 1 emissions per window keep any window at `limit` (see the header).
  return window_s * 1000000 / std::max<int64_t>(1, limit - burst + 1);
}

int64_t RateLimitPolicy::tolerance_us() const {
  return (std::max<int64_t>(1, burst) - 1) * emission_interval_us();
}

RateLimitDecision gcra(int64_t& tat, int64_t now_us, int64_t t_us, int64_t tau_us) {
  RateLimitDecision decision;
  int64_t current = std::max(tat, now_us);
  if (current - now_us > tau_us) {
    decision.allowed = false;
    decision.retry_after_ms = (current - now_us - tau_us + 999) / 1000;
    decision.reset_ms = (current - now_us + 999) / 1000;
    return decision;
  }
  tat = current + t_us;
  decision.remaining = std::max<int64_t>(0, (tau_us - (tat - now_us)) / t_us + 1);
  decision.reset_ms = (tat - now_us + 999) / 1000;
  return decision;
}

const std::string& gcra_script() {
  static const std::string script = R"lua(
local t_us = tonumber(ARGV[1])
local tau_us = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tau_us then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((tat - now - tau_us) / 1000)}
end
local new_tat = tat + t_us
local remaining = math.floor((tau_us - (new_tat - now)) / t_us) + 1
if remaining < 0 then remaining = 0 end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {1, remaining, math.ceil((new_tat - now) / 1000), 0}
)lua";
  return script;
}

const std::string& gcra_script_sha1() {
  static const std::string sha = sha1_hex(gcra_script());
  return sha;
}

RateLimitDecision LocalRateLimiter::decide(const std::string& key, int64_t now_us, int64_t t_us,
                                           int64_t tau_us) {
  std::lock_guard lock(mutex_);
  if (tat_.size() >= max_keys_ && !tat_.count(key)) {
    // Drop keys whose quota is full again; if none, drop an arbitrary one (bounded memory wins).
    std::erase_if(tat_, [now_us](const auto& entry) { return entry.second <= now_us; });
    if (tat_.size() >= max_keys_) tat_.erase(tat_.begin());
  }
  auto& tat = tat_[key];
  return gcra(tat, now_us, t_us, tau_us);
}

ClientAddressResolver::ClientAddressResolver(const std::vector<std::string>& trusted_proxies) {
  for (const auto& cidr : trusted_proxies) {
    auto slash = cidr.find('/');
    auto address = cidr.substr(0, slash);
    Network network{};
    if (inet_pton(AF_INET, address.c_str(), network.bytes) == 1) {
      network.family = AF_INET;
      network.prefix = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), network.bytes) == 1) {
      network.family = AF_INET6;
      network.prefix = 128;
    } else {
      throw std::invalid_argument("bad trusted proxy address " + cidr);
    }
    if (slash != std::string::npos) {
      int prefix = std::stoi(cidr.substr(slash + 1));
      if (prefix < 0 || prefix > network.prefix) {
        throw std::invalid_argument("bad prefix length in " + cidr);
      }
      network.prefix = prefix;
    }
    trusted_.push_back(network);
  }
}

bool ClientAddressResolver::is_trusted(const std::string& address) const {
  unsigned char bytes[16];
  int family = AF_INET;
  if (inet_pton(AF_INET, address.c_str(), bytes) != 1) {
    if (inet_pton(AF_INET6, address.c_str(), bytes) != 1) return false;
    family = AF_INET6;
  }
  for (const auto& network : trusted_) {
    if (network.family != family) continue;
    int full = network.prefix / 8, rest = network.prefix % 8;
    if (std::memcmp(bytes, network.bytes, full) != 0) continue;
    if (rest && ((bytes[full] ^ network.bytes[full]) & (0xFF << (8 - rest)) & 0xFF)) continue;
    return true;
  }
  return false;
}

std::string ClientAddressResolver::resolve(const std::string& peer,
                                           std::string_view forwarded_for) const {
  if (forwarded_for.empty() || !is_trusted(peer)) return peer;
  // Right to left: the first address not added by one of our own proxies is the client's.
  std::string client = peer;
  while (!forwarded_for.empty()) {
    auto comma = forwarded_for.rfind(',');
    auto item = comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    client = std::string(item);
    if (!is_trusted(client)) break;
  }
  return client;
}

}  // namespace trellis::gateway
