#include "access_log.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "llmgw/net/http_types.hpp"
#include "llmgw/server/logging.hpp"
#include "local_endpoints.hpp"

namespace llmgw::server::detail {

void access_log(const config::LogConfig& log, const std::string& client_ip, const Request& request,
                const RequestIdentity& identity, std::string_view key_name,
                const ProxyResult& result, std::chrono::steady_clock::time_point started) {
  const std::string_view path = net::target_path(request.target());
  if (!log.access_log || (!log.access_log_probes && is_probe_path(path))) {
    return;
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const std::string_view node = result.node.empty() ? "-" : std::string_view{result.node};
  if (log.format == "json") {
    nlohmann::json line{{"client", client_ip},
                        {"method", std::string{request.method_string()}},
                        {"path", std::string{path}},
                        {"status", result.status},
                        {"node", node},
                        {"route", result.route},
                        {"duration_ms", ms},
                        {"bytes", result.bytes},
                        {"request_id", identity.request_id},
                        {"trace_id", identity.trace_id}};
    if (!key_name.empty()) {
      line["key"] = key_name;
    }
    access_logger().info("{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    access_logger().info(
        "{} {} {} {} node={} route={} duration_ms={:.2f} bytes={} request_id={} trace_id={}{}",
        client_ip, std::string_view{request.method_string()}, path, result.status, node,
        result.route, ms, result.bytes, identity.request_id, identity.trace_id,
        key_name.empty() ? std::string{} : " key=" + std::string{key_name});
  }
}

}  // namespace llmgw::server::detail
