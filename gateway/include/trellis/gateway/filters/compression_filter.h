// gzip for responses that are large enough, when the client accepts it (Accept-Encoding, q > 0).
// Small bodies are sent as they are: compressing them costs more CPU than it saves bytes.
#pragma once

#include <string>

#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class CompressionFilter final : public Filter {
 public:
  explicit CompressionFilter(size_t min_bytes) : min_bytes_(min_bytes) {}
  std::string_view name() const override { return "compression"; }
  void on_request(const ExchangePtr& exchange) override { exchange->next(); }
  void on_response(Exchange& exchange) override;

 private:
  size_t min_bytes_;
};

bool accepts_gzip(std::string_view accept_encoding);
// Returns false (and leaves `out` unspecified) if zlib fails.
bool gzip(std::string_view input, std::string& out);

}  // namespace trellis::gateway
