#include "trellis/common/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

extern char** environ;

namespace trellis::config {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_secret_key(const std::string& key) {
  auto name = lower(key);
  for (const char* word : {"password", "secret", "token"}) {
    if (ends_with(name, word)) return true;
  }
  return false;
}

}  // namespace

void apply_env_overrides(nlohmann::json& config, const std::string& prefix, char** environment) {
  auto lead = prefix + "__";
  for (char** entry = environment; entry && *entry; ++entry) {
    std::string text = *entry;
    auto equals = text.find('=');
    if (equals == std::string::npos || text.rfind(lead, 0) != 0) continue;
    auto name = text.substr(lead.size(), equals - lead.size());
    auto value_text = text.substr(equals + 1);
    std::vector<std::string> path;
    size_t start = 0;
    while (true) {
      auto separator = name.find("__", start);
      path.push_back(lower(name.substr(start, separator - start)));
      if (separator == std::string::npos) break;
      start = separator + 2;
    }
    if (std::any_of(path.begin(), path.end(), [](const std::string& p) { return p.empty(); })) {
      throw ConfigError("environment override " + text.substr(0, equals) + " has an empty key");
    }
    nlohmann::json* node = &config;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      if (!node->is_object())
        throw ConfigError("environment override " + text.substr(0, equals) +
                          " goes through a non-object");
      node = &(*node)[path[i]];
      if (node->is_null()) *node = nlohmann::json::object();
    }
    if (!node->is_object())
      throw ConfigError("environment override " + text.substr(0, equals) +
                        " goes through a non-object");
    auto parsed = nlohmann::json::parse(value_text, nullptr, false);
    // A number is taken as such only if it reads back identically ("007" or "1e5" stay text).
    if (parsed.is_number() && parsed.dump() != value_text) parsed = nlohmann::json(value_text);
    (*node)[path.back()] =
        parsed.is_discarded() || parsed.is_string() ? nlohmann::json(value_text) : parsed;
  }
}

nlohmann::json load_with_env(const std::string& path, const std::string& prefix) {
  auto config = load_file(path);
  if (config.is_null()) config = nlohmann::json::object();
  if (!config.is_object()) throw ConfigError("config file " + path + " must hold a JSON object");
  apply_env_overrides(config, prefix, environ);
  return config;
}

nlohmann::json redact(const nlohmann::json& config) {
  if (config.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = config.begin(); it != config.end(); ++it) {
      bool secret = is_secret_key(it.key()) && !it.value().is_object() &&
                    !(it.value().is_string() && it.value().get<std::string>().empty());
      out[it.key()] = secret ? nlohmann::json("<redacted>") : redact(it.value());
    }
    return out;
  }
  if (config.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : config) out.push_back(redact(item));
    return out;
  }
  return config;
}

nlohmann::json load_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file " + path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("config file " + path + " is not valid JSON: " + e.what());
  }
}

ObjectReader::ObjectReader(const nlohmann::json& object, std::string where)
    : object_(object.is_null() ? nlohmann::json::object() : object), where_(std::move(where)) {
  if (!object_.is_object()) throw ConfigError(where_ + " must be a JSON object");
}

const nlohmann::json* ObjectReader::find(const std::string& key) {
  consumed_.insert(key);
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

bool ObjectReader::has(const std::string& key) const {
  return object_.contains(key);
}

void ObjectReader::fail(const std::string& key, const std::string& problem) const {
  throw ConfigError(where_ + "." + key + ": " + problem);
}

// A number where text is expected is taken as its digits: an all-digit password or key id set
// through an environment override arrives as a JSON number.
std::string ObjectReader::get_string(const std::string& key, const std::string& default_value) {
  const auto* value = find(key);
  if (!value) return default_value;
  if (value->is_number_integer()) return value->dump();
  if (!value->is_string()) fail(key, "must be a string");
  return value->get<std::string>();
}

std::string ObjectReader::require_string(const std::string& key) {
  const auto* value = find(key);
  if (!value) fail(key, "is required");
  if (value->is_number_integer()) return value->dump();
  if (!value->is_string() || value->get<std::string>().empty()) {
    fail(key, "must be a non-empty string");
  }
  return value->get<std::string>();
}

int64_t ObjectReader::get_int(const std::string& key, int64_t default_value, int64_t min,
                              int64_t max) {
  const auto* value = find(key);
  if (!value) return default_value;
  if (!value->is_number_integer()) fail(key, "must be an integer");
  auto number = value->get<int64_t>();
  if (number < min || number > max) {
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return number;
}

bool ObjectReader::get_bool(const std::string& key, bool default_value) {
  const auto* value = find(key);
  if (!value) return default_value;
  if (!value->is_boolean()) fail(key, "must be true or false");
  return value->get<bool>();
}

std::vector<std::string> ObjectReader::get_string_list(
    const std::string& key, const std::vector<std::string>& default_value) {
  const auto* value = find(key);
  if (!value) return default_value;
  if (!value->is_array()) fail(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *value) {
    if (!item.is_string()) fail(key, "must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

ObjectReader ObjectReader::get_object(const std::string& key) {
  const auto* value = find(key);
  if (value && !value->is_object()) fail(key, "must be an object");
  return ObjectReader(value ? *value : nlohmann::json::object(), where_ + "." + key);
}

std::vector<ObjectReader> ObjectReader::get_object_list(const std::string& key) {
  const auto* value = find(key);
  std::vector<ObjectReader> items;
  if (!value) return items;
  if (!value->is_array()) fail(key, "must be a list of objects");
  for (size_t i = 0; i < value->size(); ++i) {
    if (!(*value)[i].is_object()) fail(key, "must be a list of objects");
    items.emplace_back((*value)[i], where_ + "." + key + "[" + std::to_string(i) + "]");
  }
  return items;
}

std::vector<std::string> ObjectReader::object_keys(const std::string& key) {
  const auto* value = find(key);
  if (!value) return {};
  if (!value->is_object()) fail(key, "must be an object");
  std::vector<std::string> keys;
  for (auto it = value->begin(); it != value->end(); ++it) keys.push_back(it.key());
  return keys;
}

void ObjectReader::reject_unknown_keys() const {
  std::ostringstream unknown;
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (!consumed_.count(it.key())) unknown << (unknown.tellp() > 0 ? ", " : "") << it.key();
  }
  if (unknown.tellp() > 0) throw ConfigError(where_ + ": unknown key(s): " + unknown.str());
}

}  // namespace trellis::config
