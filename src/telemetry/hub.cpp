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

struct TelemetryHub::Impl : std::enable_shared_from_this<TelemetryHub::Impl> {
  explicit Impl(SinkOptions o) : options(std::move(o)) {}

  struct Sink {
    explicit Sink(asio::io_context& io) : timer(io) {}
    std::shared_ptr<LogExporter> exporter;
    std::deque<LogRecord> queue;  // the hub thread's
    bool sending = false, waiting = false;
    std::chrono::milliseconds backoff{0};
    asio::steady_timer timer;
    std::atomic<std::uint64_t> sent{0}, dropped{0}, failed{0}, retries{0}, queued{0};
    std::atomic<bool> healthy{true};
    mutable std::mutex error_mu;  // the hub thread writes, health() copies
    std::string last_error;
  };

  void push(Sink& s, std::vector<LogRecord>& records, bool last) {
    for (auto& r : records) {
      if (s.queue.size() >= options.queue_limit) {
        ++s.dropped;
        continue;
      }
      s.queue.push_back(last ? std::move(r) : r);
    }
    s.queued.store(s.queue.size(), std::memory_order_relaxed);
  }

  void pump(Sink& s) {
    if (s.sending || s.waiting || s.queue.empty()) return;
    std::size_t n = std::min(options.batch, s.queue.size());
    std::vector<LogRecord> batch(std::make_move_iterator(s.queue.begin()),
                                 std::make_move_iterator(s.queue.begin() + static_cast<long>(n)));
    s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<long>(n));
    s.sending = true;
    auto keep = std::make_shared<std::vector<LogRecord>>(std::move(batch));
    std::vector<LogRecord> copy = *keep;  // the exporter's; `keep` comes back on a retry
    // The outcome is handled from the io_context, never inside send(): an exporter that
    // completes at once does not recurse into the next batch.
    s.exporter->send(std::move(copy), [self = shared_from_this(), &s, keep](SendOutcome o) {
      asio::post(self->io, [self, &s, keep, o = std::move(o)]() mutable {
        self->sent(s, *keep, std::move(o));
      });
    });
  }

  void sent(Sink& s, std::vector<LogRecord>& batch, SendOutcome o) {
    s.sending = false;
    if (o.ok) {
      s.sent += batch.size();
      s.backoff = std::chrono::milliseconds(0);
      s.healthy.store(true, std::memory_order_relaxed);
    } else {
      s.healthy.store(false, std::memory_order_relaxed);
      {
        std::lock_guard lock(s.error_mu);
        s.last_error = o.error;
      }
      if (o.retry && !stopping) {
        ++s.retries;
        // Back at the front, in order; what then exceeds the queue goes from its back.
        s.queue.insert(s.queue.begin(), std::make_move_iterator(batch.begin()),
                       std::make_move_iterator(batch.end()));
        while (s.queue.size() > options.queue_limit) {
          s.queue.pop_back();
          ++s.dropped;
        }
        s.backoff = std::clamp(s.backoff * 2, options.first_retry, options.max_retry);
        s.waiting = true;
        s.timer.expires_after(s.backoff);
        s.timer.async_wait([self = shared_from_this(), &s](boost::system::error_code) {
          s.waiting = false;
          self->pump(s);
        });
      } else {
        s.failed += batch.size();
      }
    }
    s.queued.store(s.queue.size(), std::memory_order_relaxed);
    pump(s);
  }

  SinkOptions options;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::vector<std::unique_ptr<Sink>> sinks;
  std::atomic<std::size_t> posted{0};  // records offered, not yet queued
  bool stopping = false;               // the hub thread's
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
  auto s = std::make_unique<Impl::Sink>(impl_->io);
  s->exporter = std::move(exporter);
  impl_->sinks.push_back(std::move(s));
}

bool TelemetryHub::empty() const {
  return impl_->sinks.empty();
}

bool TelemetryHub::takes(std::string_view source) const {
  const auto& s = impl_->options.sources;
  return !impl_->sinks.empty() && std::find(s.begin(), s.end(), source) != s.end();
}

void TelemetryHub::start() {
  if (impl_->sinks.empty() || impl_->thread.joinable()) return;
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
  // Bounded before the post: while the hub thread is behind, records are dropped here (one
  // offer always gets through to the sinks' own bounds).
  std::size_t n = records.size();
  std::size_t posted = impl_->posted.load(std::memory_order_relaxed);
  if (posted > 0 && posted + n > impl_->options.queue_limit) {
    for (auto& s : impl_->sinks) s->dropped += n;
    return;
  }
  impl_->posted += n;
  asio::post(impl_->io, [impl = impl_, records = std::move(records), n]() mutable {
    impl->posted -= n;
    for (std::size_t i = 0; i < impl->sinks.size(); ++i) {
      impl->push(*impl->sinks[i], records, i + 1 == impl->sinks.size());
      impl->pump(*impl->sinks[i]);
    }
  });
}

std::vector<TelemetryHub::SinkHealth> TelemetryHub::health() const {
  std::vector<SinkHealth> out;
  for (const auto& s : impl_->sinks) {
    SinkHealth h;
    h.name = s->exporter->name();
    h.healthy = s->healthy.load();
    {
      std::lock_guard lock(s->error_mu);
      h.last_error = s->last_error;
    }
    h.sent = s->sent.load();
    h.dropped = s->dropped.load();
    h.failed = s->failed.load();
    h.retries = s->retries.load();
    h.queued = s->queued.load();
    out.push_back(std::move(h));
  }
  return out;
}

std::string TelemetryHub::metrics() const {
  if (impl_->sinks.empty()) return "";
  PrometheusText w;
  auto sinks = health();
  w.family("elafros_log_sink_records_total", "counter",
           "Log records each sink (syslog, journald, otlp) took, by outcome: sent, dropped (its "
           "queue was full), failed (refused for good, e.g. an OTLP 400).");
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
  w.family("elafros_log_sink_queued_records", "gauge", "Log records waiting for each sink.");
  for (const auto& h : sinks)
    w.sample("elafros_log_sink_queued_records", fmt::format(R"(sink="{}")", h.name),
             static_cast<double>(h.queued));
  return w.take();
}

}  // namespace elafros
