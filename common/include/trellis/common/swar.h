// Byte tests on 8 bytes at once ("SIMD within a register"), for scanning text that is mostly
// plain: log values, response header values.
#pragma once

#include <cstdint>
#include <cstring>

namespace trellis::swar {

inline constexpr uint64_t kOnes = 0x0101010101010101ULL;
inline constexpr uint64_t kHigh = 0x8080808080808080ULL;

// The 8 bytes at `bytes` as one word (any alignment).
inline uint64_t load8(const char* bytes) {
  uint64_t word;
  std::memcpy(&word, bytes, 8);
  return word;
}

// Some byte of `word` is zero.
constexpr bool has_zero_byte(uint64_t word) {
  return ((word - kOnes) & ~word & kHigh) != 0;
}

// Some byte of `word` equals `c`.
constexpr bool has_byte(uint64_t word, unsigned char c) {
  return has_zero_byte(word ^ (kOnes * c));
}

// Some byte of `word` is below `n` (n <= 0x80); bytes from 0x80 up never count.
constexpr bool has_byte_below(uint64_t word, unsigned char n) {
  return ((word - kOnes * n) & ~word & kHigh) != 0;
}

// Some byte of `word` is below `n` or from 0x80 up (n <= 0x80).
constexpr bool has_byte_below_or_high(uint64_t word, unsigned char n) {
  return (((word - kOnes * n) | word) & kHigh) != 0;
}

}  // namespace trellis::swar
