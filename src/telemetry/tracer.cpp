#include "telemetry/tracer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace asio = boost::asio;

namespace elafros {

namespace {
constexpr std::size_t kFlushAt = 256;
constexpr auto kFlushEvery = std::chrono::milliseconds(500);
}  // namespace

struct Tracer::Impl {
  Impl(asio::io_context& io, TelemetryHub& h, double r)
      : hub(h), rate(r), timer(io), random(std::random_device{}()) {}
  TelemetryHub& hub;
  double rate;
  asio::steady_timer timer;
  bool armed = false;
  std::mt19937_64 random;
  std::uniform_real_distribution<double> unit{0.0, 1.0};
  std::vector<Span> buffer;
};

Tracer::Tracer(asio::io_context& io, TelemetryHub& hub, double rate)
    : impl_(std::make_unique<Impl>(io, hub, rate)) {}

Tracer::~Tracer() {
  if (!impl_->buffer.empty()) impl_->hub.offer_spans(std::move(impl_->buffer));
}

std::array<std::uint8_t, 8> Tracer::new_span_id() {
  std::array<std::uint8_t, 8> id{};
  do {
    std::uint64_t v = impl_->random();
    for (int i = 0; i < 8; ++i)
      id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
  } while (id == std::array<std::uint8_t, 8>{});
  return id;
}

Tracer::Context Tracer::begin(std::string_view header) {
  Context c;
  if (auto parent = parse_traceparent(header)) {
    c.trace_id = parent->trace_id;
    c.parent_id = parent->parent_id;
    c.has_parent = true;
    c.sampled = parent->sampled;  // the caller decided
  } else {
    auto a = new_span_id(), b = new_span_id();
    std::copy(a.begin(), a.end(), c.trace_id.begin());
    std::copy(b.begin(), b.end(), c.trace_id.begin() + 8);
    c.sampled = impl_->rate > 0 && impl_->unit(impl_->random) < impl_->rate;
  }
  c.span_id = new_span_id();
  c.traceparent = format_traceparent(c.trace_id, c.span_id, c.sampled);
  return c;
}

void Tracer::finish(std::vector<Span> spans) {
  for (auto& s : spans) impl_->buffer.push_back(std::move(s));
  if (impl_->buffer.size() >= kFlushAt) return flush();
  if (impl_->armed) return;
  impl_->armed = true;
  impl_->timer.expires_after(kFlushEvery);
  impl_->timer.async_wait([this](boost::system::error_code ec) {
    impl_->armed = false;
    if (!ec) flush();
  });
}

void Tracer::flush() {
  if (impl_->buffer.empty()) return;
  std::vector<Span> out;
  out.swap(impl_->buffer);
  impl_->hub.offer_spans(std::move(out));
}

}  // namespace elafros
