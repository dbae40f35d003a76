// Strict configuration reading: every component parses its JSON config through ObjectReader,
// which type-checks each key and refuses keys nobody asked for (a typo must not be ignored).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace trellis::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Loads a JSON file; throws ConfigError with the path on I/O or syntax errors.
nlohmann::json load_file(const std::string& path);

// Environment overrides: <prefix>__<KEY>[__<SUBKEY>...]=<value> sets config[key][subkey] (keys
// lower-cased), e.g. TRELLIS_USERS__DATABASE__PASSWORD=... or TRELLIS_GATEWAY__LISTEN__PORT=9000.
// A value that parses as JSON (number, true/false, object, array) is used as such, anything else
// as a string. Overrides go through the same strict reader, so a misspelt key is refused too.
void apply_env_overrides(nlohmann::json& config, const std::string& prefix, char** environment);
// load_file + apply_env_overrides with the process environment.
nlohmann::json load_with_env(const std::string& path, const std::string& prefix);

// A copy for logging with secret values replaced by "<redacted>": any key named or ending in
// password, secret or token (case-insensitive).
nlohmann::json redact(const nlohmann::json& config);

class ObjectReader {
 public:
  // `where` names the object in error messages, e.g. "gateway.upstreams.users".
  ObjectReader(const nlohmann::json& object, std::string where);

  std::string get_string(const std::string& key, const std::string& default_value);
  std::string require_string(const std::string& key);
  int64_t get_int(const std::string& key, int64_t default_value, int64_t min, int64_t max);
  bool get_bool(const std::string& key, bool default_value);
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& default_value);
  // A nested object; an absent key reads as an empty object (all defaults).
  ObjectReader get_object(const std::string& key);
  // A list of objects (each read strictly by its own reader); absent reads as empty.
  std::vector<ObjectReader> get_object_list(const std::string& key);
  // Keys of a nested object whose values are objects (e.g. a map of upstreams).
  std::vector<std::string> object_keys(const std::string& key);
  bool has(const std::string& key) const;

  // Throws ConfigError naming every key of this object that was never read.
  void reject_unknown_keys() const;

  const std::string& where() const { return where_; }

 private:
  const nlohmann::json* find(const std::string& key);
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

  nlohmann::json object_;
  std::string where_;
  std::set<std::string> consumed_;
};

}  // namespace trellis::config
