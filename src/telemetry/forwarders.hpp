#pragma once
// What feeds the telemetry hub: the log collector's lines (a LogSink), the access log's chunks,
// and the daemon's own spdlog messages. Each only offers records: none waits on a sink.

#include <functional>
#include <memory>
#include <string_view>

#include "log_store.hpp"
#include "telemetry/telemetry.hpp"

namespace spdlog::sinks {
class sink;
}

namespace elafros {

// Apps' lines, as the log collector hands them to its sinks.
std::shared_ptr<LogSink> make_forwarding_log_sink(TelemetryHub& hub);
// Access log chunks (JSON lines), on the access log's writer thread.
std::function<void(std::string_view)> access_log_forwarder(TelemetryHub& hub);
// The daemon's own messages, as an spdlog sink.
std::shared_ptr<spdlog::sinks::sink> make_daemon_log_forwarder(TelemetryHub& hub);

}  // namespace elafros
