#include "trellis/common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>

namespace trellis::log {
namespace {

struct State {
  std::shared_ptr<spdlog::logger> logger;
  std::string component = "trellis";
  Level min_level = Level::kInfo;
};

State& state() {
  static State s = [] {
    State fresh;
    fresh.logger = spdlog::stdout_logger_mt("trellis");
    fresh.logger->set_pattern("%v");
    // One write per line: logs are read live by operators and tests; buffering hid lines on crash.
    fresh.logger->flush_on(spdlog::level::trace);
    return fresh;
  }();
  return s;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  auto seconds = std::chrono::system_clock::to_time_t(now);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buffer;
}

}  // namespace

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug")
    out = Level::kDebug;
  else if (text == "info")
    out = Level::kInfo;
  else if (text == "warn")
    out = Level::kWarn;
  else if (text == "error")
    out = Level::kError;
  else
    return false;
  return true;
}

void init(std::string_view component, std::string_view level) {
  auto& s = state();
  s.component = std::string(component);
  Level parsed;
  if (parse_level(level, parsed)) s.min_level = parsed;
}

std::string render(Level level, std::string_view component, std::string_view message,
                   std::span<const Field> fields, std::span<const Field> more) {
  nlohmann::ordered_json line;
  line["ts"] = now_rfc3339();
  line["level"] = level_name(level);
  line["component"] = component;
  line["msg"] = message;
  for (auto group : {fields, more}) {
    for (const auto& field : group) {
      if (field.numeric) {
        line[std::string(field.key)] = nlohmann::ordered_json::parse(field.value, nullptr, false);
      } else {
        line[std::string(field.key)] = field.value;
      }
    }
  }
  // Invalid UTF-8 from a client (e.g. a path) must not make logging throw.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write(Level level, std::string_view message, std::span<const Field> fields,
           std::span<const Field> more) {
  auto& s = state();
  if (level < s.min_level) return;
  s.logger->info(render(level, s.component, message, fields, more));
}

RequestLog::RequestLog(std::string request_id, std::string trace_id, std::string span_id) {
  scope_.emplace_back("request_id", std::move(request_id));
  scope_.emplace_back("trace_id", std::move(trace_id));
  scope_.emplace_back("span_id", std::move(span_id));
}

void RequestLog::write(Level level, std::string_view message,
                       std::initializer_list<Field> fields) const {
  log::write(level, message, std::span<const Field>(scope_),
             std::span<const Field>(fields.begin(), fields.size()));
}

void flush() {
  state().logger->flush();
}

}  // namespace trellis::log
