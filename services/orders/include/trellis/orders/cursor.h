// Opaque page tokens for keyset pagination. A token carries the position after which the next page
// starts (the seq of the last order shown: pages go by a monotonically increasing identity column,
// never by timestamps, so inserts while paging cannot make a page skip or repeat an order) and a
// check value bound to the listing's scope. Any change to a token, or a token from another scope
// (another user's listing), fails to decode: the client gets 400.
//
// The check is a truncated SHA-256, not a MAC: a client could forge a token, but a forged position
// only lists orders the viewer may see anyway, since every query filters by owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis::orders {

// `scope`: who lists (the user id, or "*" for an admin's listing of every order).
std::string encode_cursor(int64_t last_seq, std::string_view scope);

// The seq the token was made from; nullopt when the token is malformed, altered or from another
// scope.
std::optional<int64_t> decode_cursor(std::string_view token, std::string_view scope);

}  // namespace trellis::orders
