// JSON-lines logging to stdout. Every line is one JSON object with ts, level, component,
// msg and the given fields; request-scoped lines carry request_id, trace_id and span_id.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace trellis::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Shortest fixed-point text that reads back as the same double ("0.125", "3", "nan"); no
// printf, which showed up in the access log's cost.
std::string fixed_text(double value);

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <class Number, class = std::enable_if_t<std::is_arithmetic_v<Number>>>
  Field(std::string_view k, Number v) : key(k), value(number_text(v)), numeric(true) {}
  // The number units / 10^decimals, e.g. (20062, 3) is 20.062: what a double would show, without
  // the cost of formatting one (the access log's latency on every request).
  static Field fixed_point(std::string_view key, long long units, int decimals);
  bool numeric = false;

 private:
  template <class Number>
  static std::string number_text(Number v) {
    if constexpr (std::is_floating_point_v<Number>) {
      return fixed_text(static_cast<double>(v));
    } else {
      return std::to_string(v);
    }
  }
};

// Sets the component name and minimum level ("debug", "info", "warn", "error"). Safe to call once
// at start-up; before it, lines go to stdout at info level with component "trellis".
void init(std::string_view component, std::string_view level);
bool parse_level(std::string_view text, Level& out);

void write(Level level, std::string_view message, std::span<const Field> fields,
           std::span<const Field> more = {});
inline void write(Level level, std::string_view message, std::initializer_list<Field> fields = {}) {
  write(level, message, std::span<const Field>(fields.begin(), fields.size()));
}
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kDebug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kInfo, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kWarn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::kError, m, f);
}

// Lines about one request: each carries the request id and trace context, so that one grep for a
// request id finds everything that happened to it in every process.
class RequestLog {
 public:
  RequestLog() = default;
  RequestLog(std::string request_id, std::string trace_id, std::string span_id);
  void write(Level level, std::string_view message, std::initializer_list<Field> fields) const;
  void debug(std::string_view m, std::initializer_list<Field> f = {}) const {
    write(Level::kDebug, m, f);
  }
  void info(std::string_view m, std::initializer_list<Field> f = {}) const {
    write(Level::kInfo, m, f);
  }
  void warn(std::string_view m, std::initializer_list<Field> f = {}) const {
    write(Level::kWarn, m, f);
  }
  void error(std::string_view m, std::initializer_list<Field> f = {}) const {
    write(Level::kError, m, f);
  }

 private:
  std::vector<Field> scope_;
};

// Renders one line (without newline); exposed for tests.
std::string render(Level level, std::string_view component, std::string_view message,
                   std::span<const Field> fields, std::span<const Field> more = {});

void flush();

}  // namespace trellis::log
