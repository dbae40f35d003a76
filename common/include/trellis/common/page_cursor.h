// Opaque page tokens for keyset pagination, shared by every service that lists rows. A token
// carries the position after which the next page starts (the seq of the last row shown: pages go
// by a monotonically increasing identity column, never by timestamps, so inserts while paging
// cannot make a page skip or repeat a row) and a check value bound to the listing (e.g.
// "trellis.orders.cursor") and its scope (whose rows). Any change to a token, or a token of another
// listing or scope, fails to decode: the client gets 400.
//
// The check is a truncated SHA-256, not a MAC: a client could forge a token, but a forged position
// only lists rows the viewer may see anyway, since every query filters by owner.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trellis {

// `listing`: a constant naming the list; `scope`: who lists (a user id, or "*" for an admin).
std::string encode_page_cursor(std::string_view listing, int64_t last_seq, std::string_view scope);

// The seq the token was made from; nullopt when the token is malformed, altered, or from another
// listing or scope.
std::optional<int64_t> decode_page_cursor(std::string_view listing, std::string_view token,
                                          std::string_view scope);

inline constexpr int kDefaultPageSize = 20;
inline constexpr int kMaxPageSize = 100;

// The page size of a list request: kDefaultPageSize when absent, otherwise 1..kMaxPageSize.
// Returns an empty string, or the message for the client ("limit must be between 1 and 100").
std::string check_page_size(bool present, int requested, int& out);

}  // namespace trellis
