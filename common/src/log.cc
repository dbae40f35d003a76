#include "trellis/common/log.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "trellis/common/line_writer.h"
#include "trellis/common/swar.h"

namespace trellis::log {
namespace {

struct State {
  std::unique_ptr<LineWriter> output;
  std::string component = "trellis";
  Level min_level = Level::kInfo;
};

State& state() {
  // Never destroyed: objects destroyed at exit may still log; exit flushes what is queued.
  static State* s = [] {
    auto* fresh = new State;
    LineWriterOptions options;
    options.dropped_line = [fresh](size_t dropped) {
      Field fields[] = {{"dropped", dropped}};
      return render(Level::kWarn, fresh->component, "log lines dropped: stdout did not keep up",
                    fields);
    };
    fresh->output = std::make_unique<LineWriter>(STDOUT_FILENO, options);
    std::atexit([] { flush(); });
    return fresh;
  }();
  return *s;
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

// "2026-11-29T13:47:02.123456Z" into `buffer` (kTimestampLength bytes). The part up to the
// seconds is formatted once per second per thread: this runs for every log line.
constexpr size_t kTimestampLength = 27;
void format_now_rfc3339(char* buffer) {
  thread_local std::time_t cached_second = -1;
  thread_local char cached_prefix[72];  // "2026-11-29T13:47:02." (room for any int fields)
  auto now = std::chrono::system_clock::now();
  auto micros_total =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  auto second = static_cast<std::time_t>(micros_total / 1000000);
  auto micros = micros_total % 1000000;
  if (micros < 0) {  // before 1970: floor, not truncate
    micros += 1000000;
    --second;
  }
  if (second != cached_second) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    std::snprintf(cached_prefix, sizeof cached_prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = second;
  }
  std::memcpy(buffer, cached_prefix, 20);
  for (int digit = 25; digit >= 20; --digit) {
    buffer[digit] = static_cast<char>('0' + micros % 10);
    micros /= 10;
  }
  buffer[26] = 'Z';
}

}  // namespace

std::string fixed_text(double value) {
  char buffer[400];  // the longest fixed-point double is 309 digits plus sign and fraction
  auto [end, error] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
  if (error != std::errc()) return "nan";
  return std::string(buffer, end);
}

Field Field::fixed_point(std::string_view key, long long units, int decimals) {
  bool negative = units < 0;
  auto magnitude = negative ? 0 - static_cast<unsigned long long>(units)
                            : static_cast<unsigned long long>(units);
  char digits[48];  // 20 digits, up to 18 decimals, point and sign
  char* end = digits + sizeof digits;
  char* at = end;
  decimals = std::clamp(decimals, 0, 18);
  for (int i = 0; i < decimals; ++i) {
    *--at = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  }
  if (decimals > 0) *--at = '.';
  do {
    *--at = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude > 0);
  if (negative) *--at = '-';
  Field field(key, std::string(at, end));
  field.numeric = true;
  return field;
}

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

namespace {

constexpr bool is_plain_json_char(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// Whether 8 bytes are all plain, tested a word at a time: log lines are mostly ids and names.
bool all_plain_json_chars(const char* bytes) {
  auto word = swar::load8(bytes);
  return !swar::has_byte_below_or_high(word, 0x20) && !swar::has_byte(word, '"') &&
         !swar::has_byte(word, '\\');
}

// Length of the leading run of plain characters. Text of 8 bytes or more is tested a word at a
// time, its last word overlapping the one before; shorter text (most keys) a byte at a time.
size_t plain_prefix(std::string_view text) {
  size_t plain = 0;
  if (text.size() >= 8) {
    while (plain + 8 <= text.size() && all_plain_json_chars(text.data() + plain)) plain += 8;
    if (plain == text.size()) return plain;
    if (plain + 8 > text.size() && all_plain_json_chars(text.data() + text.size() - 8)) {
      return text.size();
    }
  }
  while (plain < text.size() && is_plain_json_char(static_cast<unsigned char>(text[plain]))) {
    ++plain;
  }
  return plain;
}

// Appends `text` as a JSON string body: quotes, backslashes and control characters escaped, and
// each byte that is not part of valid UTF-8 replaced by U+FFFD (client text such as a path may be
// anything), so the line always parses.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  // Most values (keys, ids, names) need no escaping: one append, one capacity check.
  if (plain_prefix(text) == text.size()) {
    auto at = out.size();
    out.append(text.size() + 2, '"');
    std::memcpy(out.data() + at + 1, text.data(), text.size());
    return;
  }
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    // Printable ASCII other than '"' and '\\' is copied as it is, a run at a time.
    size_t plain = i + plain_prefix(text.substr(i));
    if (plain > i) {
      out.append(text.data() + i, plain - i);
      i = plain;
      continue;
    }
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xf]);
          } else {
            out.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    // Length and the allowed range of the second byte (no overlongs, surrogates or > U+10FFFF).
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    }
    bool valid = length > 0 && i + length <= text.size();
    for (size_t k = 1; valid && k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      valid = k == 1 ? (next >= low && next <= high) : (next >= 0x80 && next <= 0xBF);
    }
    if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  out.push_back('"');
}

// A numeric field's text as a JSON number ("1.500000" from std::to_string becomes 1.5), or null
// when it is not a finite number.
void append_json_number(std::string& out, std::string_view text) {
  size_t i = 0;
  if (i < text.size() && text[i] == '-') ++i;
  size_t digits = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  bool ok = i > digits;
  bool fraction = false;
  if (ok && i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    ok = i > start;
    fraction = true;
  }
  ok = ok && i == text.size() &&
       (text.size() - digits == 1 || text[digits] != '0' ||
        (text.size() > digits + 1 && text[digits + 1] == '.'));
  if (!ok) {
    out += "null";
    return;
  }
  if (fraction) {
    while (text.back() == '0' && text[text.size() - 2] != '.') text.remove_suffix(1);
  }
  out.append(text);
}

}  // namespace

std::string render(Level level, std::string_view component, std::string_view message,
                   std::span<const Field> fields, std::span<const Field> more) {
  // Built directly (no JSON DOM): this runs for every access-log line. A key given twice keeps
  // its first place and its last value, as a JSON object would.
  // Every field is kept; up to 32 without allocating (every access-log line comes here).
  constexpr size_t kInline = 32;
  const Field* inline_chosen[kInline];
  std::vector<const Field*> spilled;
  const Field** chosen = inline_chosen;
  if (fields.size() + more.size() > kInline) {
    spilled.resize(fields.size() + more.size());
    chosen = spilled.data();
  }
  size_t count = 0;
  std::string_view reserved[] = {"ts", "level", "component", "msg"};
  char timestamp[kTimestampLength];
  format_now_rfc3339(timestamp);
  std::string_view reserved_value[4] = {std::string_view(timestamp, kTimestampLength),
                                        level_name(level), component, message};
  const Field* reserved_override[4] = {nullptr, nullptr, nullptr, nullptr};
  for (auto group : {fields, more}) {
    for (const auto& field : group) {
      auto same_key = [&](const Field* other) { return other->key == field.key; };
      bool placed = false;
      for (size_t r = 0; r < 4 && !placed; ++r) {
        if (reserved[r] == field.key) {
          reserved_override[r] = &field;
          placed = true;
        }
      }
      for (size_t k = 0; k < count && !placed; ++k) {
        if (same_key(chosen[k])) {
          chosen[k] = &field;
          placed = true;
        }
      }
      if (!placed) chosen[count++] = &field;
    }
  }
  std::string out;
  out.reserve(512);  // an access-log line fits
  auto append_field = [&out](std::string_view key, const Field* field, std::string_view text) {
    if (out.size() > 1) out.push_back(',');
    append_json_string(out, key);
    out.push_back(':');
    if (field && field->numeric) {
      append_json_number(out, field->value);
    } else {
      append_json_string(out, field ? std::string_view(field->value) : text);
    }
  };
  out.push_back('{');
  // The reserved keys are ours and plain: written as they are, and so are the timestamp and the
  // level name (this runs for every access-log line).
  static constexpr std::string_view kReservedKeys[] = {
      "\"ts\":", ",\"level\":", ",\"component\":", ",\"msg\":"};
  for (size_t r = 0; r < 4; ++r) {
    if (reserved_override[r]) {
      append_field(reserved[r], reserved_override[r], {});
    } else if (r < 2) {
      out.append(kReservedKeys[r]).append(1, '"').append(reserved_value[r]).append(1, '"');
    } else {
      out.append(kReservedKeys[r]);
      append_json_string(out, reserved_value[r]);
    }
  }
  for (size_t k = 0; k < count; ++k) append_field(chosen[k]->key, chosen[k], {});
  out.push_back('}');
  return out;
}

void write(Level level, std::string_view message, std::span<const Field> fields,
           std::span<const Field> more) {
  auto& s = state();
  if (level < s.min_level) return;
  // Warnings are written at once by the writer thread; errors, which may be the last lines before
  // a crash, by this thread unless a write is under way (a stalled stdout never blocks two).
  s.output->append(render(level, s.component, message, fields, more), level >= Level::kWarn);
  if (level >= Level::kError) s.output->flush_unless_busy();
}

RequestLog::RequestLog(std::string request_id, std::string trace_id, std::string span_id) {
  scope_.reserve(3);
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
  state().output->flush();
}

}  // namespace trellis::log
