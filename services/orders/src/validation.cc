#include "trellis/orders/validation.h"

#include <cctype>
#include <limits>

namespace trellis::orders {
namespace {

bool is_sku_character(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '/';
}

std::string check_sku(const std::string& field, const std::string& sku) {
  if (sku.empty()) return field + " is required";
  if (sku.size() > kMaxSkuChars) return field + " must be at most 64 characters";
  for (char c : sku) {
    if (!is_sku_character(c)) {
      return field + " may contain only letters, digits, '-', '_', '.' and '/'";
    }
  }
  return {};
}

}  // namespace

std::string check_new_order(const std::vector<LineItem>& items, const std::string& currency,
                            NewOrder& out) {
  if (items.size() < kMinItems) return "items must contain at least 1 item";
  if (items.size() > kMaxItems) return "items must contain at most 100 items";
  int64_t total = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    auto field = "items[" + std::to_string(i) + "]";
    if (auto problem = check_sku(field + ".sku", item.sku); !problem.empty()) return problem;
    if (item.quantity < 1) return field + ".quantity must be at least 1";
    if (item.unit_price_cents < 0) return field + ".unit_price_cents must be at least 0";
    // Checked arithmetic: a wrapped total would be a wrong price, not an error.
    int64_t line = 0;
    if (__builtin_mul_overflow(item.unit_price_cents, static_cast<int64_t>(item.quantity), &line) ||
        __builtin_add_overflow(total, line, &total)) {
      return field + " makes total_cents exceed " +
             std::to_string(std::numeric_limits<int64_t>::max());
    }
  }
  if (currency.empty()) return "currency is required";
  if (!is_iso4217_currency(currency)) {
    return "currency must be an ISO 4217 code in upper case, such as EUR or USD";
  }
  out.items = items;
  out.currency = currency;
  out.total_cents = total;
  return {};
}

}  // namespace trellis::orders
