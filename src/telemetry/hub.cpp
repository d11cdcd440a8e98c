// The telemetry hub: a thread and io_context of its own, a bounded queue per sink, batches sent
// one at a time per sink, and retries with doubling backoff while a sink fails.

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <mutex>
#include <thread>

#include "elafros/prometheus_text.hpp"
#include "telemetry/telemetry.hpp"

namespace asio = boost::asio;

namespace elafros {

// One destination's queue of T (log records, spans, metric bodies): bounded, sent a batch at a
// time, a failed batch kept at the front and retried after a doubling backoff.
template <class T>
struct Pipe {
  using Send = std::function<void(std::vector<T>, std::function<void(SendOutcome)>)>;
  Pipe(asio::io_context& io, std::string n, Send s)
      : name(std::move(n)), send(std::move(s)), timer(io) {}
  std::string name;
  Send send;
  std::deque<T> queue;  // the hub thread's
  bool sending = false, waiting = false;
  std::chrono::milliseconds backoff{0};
  asio::steady_timer timer;
  std::atomic<std::uint64_t> sent{0}, dropped{0}, failed{0}, retries{0}, queued{0};
  std::atomic<bool> healthy{true};
  mutable std::mutex error_mu;  // the hub thread writes, health() copies
  std::string last_error;

  TelemetryHub::SinkHealth health() const {
    TelemetryHub::SinkHealth h;
    h.name = name;
    h.healthy = healthy.load();
    {
      std::lock_guard lock(error_mu);
      h.last_error = last_error;
    }
    h.sent = sent.load();
    h.dropped = dropped.load();
    h.failed = failed.load();
    h.retries = retries.load();
    h.queued = queued.load();
    return h;
  }
};

struct TelemetryHub::Impl : std::enable_shared_from_this<TelemetryHub::Impl> {
  explicit Impl(SinkOptions o) : options(std::move(o)) {}

  template <class T>
  void push(Pipe<T>& p, std::vector<T>& items, bool last) {
    for (auto& item : items) {
      if (p.queue.size() >= options.queue_limit) {
        ++p.dropped;
        continue;
      }
      p.queue.push_back(last ? std::move(item) : item);
    }
    p.queued.store(p.queue.size(), std::memory_order_relaxed);
  }

  template <class T>
  void pump(Pipe<T>& p) {
    if (p.sending || p.waiting || p.queue.empty()) return;
    std::size_t n = std::min(options.batch, p.queue.size());
    auto keep = std::make_shared<std::vector<T>>(
        std::make_move_iterator(p.queue.begin()),
        std::make_move_iterator(p.queue.begin() + static_cast<long>(n)));
    p.queue.erase(p.queue.begin(), p.queue.begin() + static_cast<long>(n));
    p.sending = true;
    std::vector<T> copy = *keep;  // the sender's; `keep` comes back on a retry
    // The outcome is handled from the io_context, never inside send(): a sender that
    // completes at once does not recurse into the next batch.
    p.send(std::move(copy), [self = shared_from_this(), &p, keep](SendOutcome o) {
      asio::post(self->io, [self, &p, keep, o = std::move(o)]() mutable {
        self->sent(p, *keep, std::move(o));
      });
    });
  }

  template <class T>
  void sent(Pipe<T>& p, std::vector<T>& batch, SendOutcome o) {
    p.sending = false;
    if (o.ok) {
      p.sent += batch.size();
      p.backoff = std::chrono::milliseconds(0);
      p.healthy.store(true, std::memory_order_relaxed);
    } else {
      p.healthy.store(false, std::memory_order_relaxed);
      {
        std::lock_guard lock(p.error_mu);
        p.last_error = o.error;
      }
      if (o.retry && !stopping) {
        ++p.retries;
        // Back at the front, in order; what then exceeds the queue goes from its back.
        p.queue.insert(p.queue.begin(), std::make_move_iterator(batch.begin()),
                       std::make_move_iterator(batch.end()));
        while (p.queue.size() > options.queue_limit) {
          p.queue.pop_back();
          ++p.dropped;
        }
        p.backoff = std::clamp(p.backoff * 2, options.first_retry, options.max_retry);
        p.waiting = true;
        p.timer.expires_after(p.backoff);
        p.timer.async_wait([self = shared_from_this(), &p](boost::system::error_code) {
          p.waiting = false;
          self->pump(p);
        });
      } else {
        p.failed += batch.size();
      }
    }
    p.queued.store(p.queue.size(), std::memory_order_relaxed);
    pump(p);
  }

  // Bounded before the post: while the hub thread is behind, items are dropped here (one
  // offer always gets through to the pipes' own bounds).
  bool admit(std::size_t n) {
    std::size_t in_flight = posted.load(std::memory_order_relaxed);
    if (in_flight > 0 && in_flight + n > options.queue_limit) return false;
    posted += n;
    return true;
  }

  SinkOptions options;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::vector<std::unique_ptr<Pipe<LogRecord>>> sinks;
  std::unique_ptr<Pipe<Span>> traces;
  std::unique_ptr<Pipe<std::string>> metrics;  // OTLP metrics bodies
  std::atomic<std::size_t> posted{0};          // items offered, not yet queued
  bool stopping = false;                       // the hub thread's
};

TelemetryHub::TelemetryHub(SinkOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {}

TelemetryHub::~TelemetryHub() {
  stop(std::chrono::milliseconds(0));
}

asio::io_context& TelemetryHub::io() {
  return impl_->io;
}

void TelemetryHub::add(std::shared_ptr<LogExporter> exporter) {
  std::string name = exporter->name();
  impl_->sinks.push_back(std::make_unique<Pipe<LogRecord>>(
      impl_->io, name,
      [exporter](std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) {
        exporter->send(std::move(batch), std::move(done));
      }));
}

void TelemetryHub::set_traces(std::shared_ptr<SpanExporter> exporter) {
  impl_->traces = std::make_unique<Pipe<Span>>(
      impl_->io, "otlp-traces",
      [exporter](std::vector<Span> batch, std::function<void(SendOutcome)> done) {
        exporter->send(std::move(batch), std::move(done));
      });
}

void TelemetryHub::set_metrics(std::shared_ptr<MetricsExporter> exporter) {
  impl_->metrics = std::make_unique<Pipe<std::string>>(
      impl_->io, "otlp-metrics",
      [exporter](std::vector<std::string> bodies, std::function<void(SendOutcome)> done) {
        exporter->send(std::move(bodies), std::move(done));
      });
}

bool TelemetryHub::empty() const {
  return impl_->sinks.empty() && !impl_->traces && !impl_->metrics;
}

bool TelemetryHub::tracing() const {
  return impl_->traces != nullptr;
}

bool TelemetryHub::pushing_metrics() const {
  return impl_->metrics != nullptr;
}

bool TelemetryHub::takes(std::string_view source) const {
  const auto& s = impl_->options.sources;
  return !impl_->sinks.empty() && std::find(s.begin(), s.end(), source) != s.end();
}

void TelemetryHub::start() {
  if (empty() || impl_->thread.joinable()) return;
  impl_->work.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

void TelemetryHub::stop(std::chrono::milliseconds grace) {
  if (!impl_->thread.joinable()) return;
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto busy = [this] {
    if (impl_->posted.load() != 0) return true;
    for (const auto& s : impl_->sinks)
      if (s->queued.load() != 0 && s->healthy.load()) return true;
    if (impl_->traces && impl_->traces->queued.load() != 0 && impl_->traces->healthy.load())
      return true;
    return false;
  };
  while (busy() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  asio::post(impl_->io, [impl = impl_] { impl->stopping = true; });
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

void TelemetryHub::offer(std::vector<LogRecord> records) {
  if (records.empty() || impl_->sinks.empty()) return;
  const auto& sources = impl_->options.sources;
  std::erase_if(records, [&sources](const LogRecord& r) {
    return std::find(sources.begin(), sources.end(), r.source) == sources.end();
  });
  if (records.empty()) return;
  std::size_t n = records.size();
  if (!impl_->admit(n)) {
    for (auto& s : impl_->sinks) s->dropped += n;
    return;
  }
  asio::post(impl_->io, [impl = impl_, records = std::move(records), n]() mutable {
    impl->posted -= n;
    for (std::size_t i = 0; i < impl->sinks.size(); ++i) {
      impl->push(*impl->sinks[i], records, i + 1 == impl->sinks.size());
      impl->pump(*impl->sinks[i]);
    }
  });
}

void TelemetryHub::offer_spans(std::vector<Span> spans) {
  if (spans.empty() || !impl_->traces) return;
  std::size_t n = spans.size();
  if (!impl_->admit(n)) {
    impl_->traces->dropped += n;
    return;
  }
  asio::post(impl_->io, [impl = impl_, spans = std::move(spans), n]() mutable {
    impl->posted -= n;
    impl->push(*impl->traces, spans, true);
    impl->pump(*impl->traces);
  });
}

void TelemetryHub::offer_metrics(std::string body) {
  if (!impl_->metrics) return;
  asio::post(impl_->io, [impl = impl_, body = std::move(body)]() mutable {
    std::vector<std::string> one{std::move(body)};
    impl->push(*impl->metrics, one, true);
    impl->pump(*impl->metrics);
  });
}

std::vector<TelemetryHub::SinkHealth> TelemetryHub::health() const {
  std::vector<SinkHealth> out;
  for (const auto& s : impl_->sinks) out.push_back(s->health());
  if (impl_->traces) out.push_back(impl_->traces->health());
  if (impl_->metrics) out.push_back(impl_->metrics->health());
  return out;
}

std::string TelemetryHub::metrics() const {
  if (empty()) return "";
  PrometheusText w;
  auto sinks = health();
  w.family("elafros_log_sink_records_total", "counter",
           "Records each sink (syslog, journald, otlp; otlp-traces: spans; otlp-metrics: "
           "exports) took, by outcome: sent, dropped (its queue was full), failed (refused for "
           "good, e.g. an OTLP 400).");
  for (const auto& h : sinks)
    for (const auto& [outcome, n] : {std::pair{"sent", h.sent}, std::pair{"dropped", h.dropped},
                                     std::pair{"failed", h.failed}})
      w.sample("elafros_log_sink_records_total",
               fmt::format(R"(sink="{}",outcome="{}")", h.name, outcome), static_cast<double>(n));
  w.family("elafros_log_sink_retries_total", "counter",
           "Batches a sink failed to send and kept to send again.");
  for (const auto& h : sinks)
    w.sample("elafros_log_sink_retries_total", fmt::format(R"(sink="{}")", h.name),
             static_cast<double>(h.retries));
  w.family("elafros_log_sink_queued_records", "gauge", "Records waiting for each sink.");
  for (const auto& h : sinks)
    w.sample("elafros_log_sink_queued_records", fmt::format(R"(sink="{}")", h.name),
             static_cast<double>(h.queued));
  return w.take();
}

}  // namespace elafros
