// Input rules of the orders API. Each check returns an empty string when the input is acceptable,
// or a message naming the field at fault (e.g. "items[2].quantity must be at least 1"), which the
// client receives with INVALID_ARGUMENT (400).
#pragma once

#include "trellis/common/digest.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/orders/order.h"

namespace trellis::orders {

inline constexpr size_t kMinItems = 1;
inline constexpr size_t kMaxItems = 100;
inline constexpr size_t kMaxSkuChars = 64;

// A code from ISO 4217's list of currencies in circulation (compiled in; see currencies.cc).
bool is_iso4217_currency(std::string_view code);

// Validates items and currency and computes the total in integer cents, refusing a total that
// would overflow int64. On success fills `out`.
std::string check_new_order(const std::vector<LineItem>& items, const std::string& currency,
                            NewOrder& out);

// Order ids are UUIDs; anything else cannot name an order (answered as not found).
using trellis::is_uuid;  // trellis/common/digest.h

}  // namespace trellis::orders
