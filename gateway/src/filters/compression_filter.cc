#include "trellis/gateway/filters/compression_filter.h"

#include <strings.h>
#include <zlib.h>

#include <cstdlib>

namespace trellis::gateway {

bool accepts_gzip(std::string_view header) {
  // Items like "gzip", "gzip;q=0.5", "*;q=1"; "gzip;q=0" refuses it.
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    auto semicolon = item.find(';');
    auto coding = item.substr(0, semicolon);
    while (!coding.empty() && coding.back() == ' ') coding.remove_suffix(1);
    bool gzip_item = coding.size() == 4 && strncasecmp(coding.data(), "gzip", 4) == 0;
    if (!gzip_item && coding != "*") continue;
    if (semicolon != std::string_view::npos) {
      auto params = std::string(item.substr(semicolon + 1));
      auto q = params.find("q=");
      if (q != std::string::npos && std::strtod(params.c_str() + q + 2, nullptr) <= 0) {
        return false;
      }
    }
    return true;
  }
  return false;
}

bool gzip(std::string_view input, std::string& out) {
  z_stream stream{};
  // 15 + 16: a gzip wrapper; level 5 is the usual speed/size balance for dynamic content.
  if (deflateInit2(&stream, 5, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out.resize(deflateBound(&stream, input.size()));
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return result == Z_STREAM_END;
}

void CompressionFilter::on_response(Exchange& exchange) {
  auto& response = exchange.response;
  if (min_bytes_ == 0 || response.body.size() < min_bytes_) return;
  if (!response.header("content-encoding").empty()) return;
  auto type = response.header("content-type");
  bool compressible = type.rfind("application/json", 0) == 0 || type.rfind("text/", 0) == 0;
  if (!compressible) return;
  auto vary = response.header("vary");
  set_header(response.headers, "Vary",
             vary.empty() ? "Accept-Encoding" : std::string(vary) + ", Accept-Encoding");
  if (!accepts_gzip(exchange.request.header("accept-encoding"))) return;
  std::string compressed;
  if (!gzip(response.body, compressed) || compressed.size() >= response.body.size()) return;
  response.body = std::move(compressed);
  set_header(response.headers, "Content-Encoding", "gzip");
}

}  // namespace trellis::gateway
