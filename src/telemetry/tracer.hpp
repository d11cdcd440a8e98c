#pragma once
// Tracing of proxied requests (docs/architecture.md, "Tracing"): a request's W3C traceparent is
// continued (its sampled flag decides) or a new trace begins (sampled at tracing-sampling-rate);
// the app gets a traceparent naming the proxy's span. Sampled requests' spans are buffered on the
// proxy thread and handed to the telemetry hub in batches: the proxy never waits on an exporter.

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "telemetry/telemetry.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class Tracer {
 public:
  // On the proxy's io_context; rate: the share of new traces sampled, 0 to 1.
  Tracer(boost::asio::io_context& proxy_io, TelemetryHub& hub, double sampling_rate);
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  struct Context {
    std::array<std::uint8_t, 16> trace_id{};
    std::array<std::uint8_t, 8> span_id{}, parent_id{};
    bool has_parent = false;
    bool sampled = false;
    std::string traceparent;  // what the app gets
  };
  // The proxy thread's, as is all of this: a request arriving with this traceparent ("" if none).
  Context begin(std::string_view traceparent);
  std::array<std::uint8_t, 8> new_span_id();
  // Spans of one finished request, sent within a second.
  void finish(std::vector<Span> spans);

 private:
  void flush();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace elafros
