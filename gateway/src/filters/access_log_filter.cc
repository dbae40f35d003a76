#include "trellis/gateway/filters/access_log_filter.h"

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

void AccessLogFilter::on_response(Exchange& exchange) {
  const auto& context = exchange.context;
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(context.answered - context.started)
          .count();
  // Unmatched paths are logged as "-" so that scanners cannot fill the logs with their paths.
  std::string route = context.route ? context.route->path.text : "-";
  std::string upstream = context.route ? context.route->upstream : "-";
  context.log.info("access", {{"method", exchange.request.method},
                              {"route", route},
                              {"status", exchange.response.status},
                              log::Field::fixed_point("latency_ms", micros, 3),
                              {"bytes_in", exchange.request.body.size()},
                              {"bytes_out", exchange.response.body.size()},
                              {"user_id", context.identity.user_id},
                              {"upstream", upstream},
                              {"remote", exchange.request.remote_address}});
}

}  // namespace trellis::gateway
