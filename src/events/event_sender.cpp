#include "events/event_sender.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "elafros/naming.hpp"
#include "elafros/prometheus_text.hpp"
#include "events/event_credentials.hpp"
#include "events/http_post.hpp"

namespace asio = boost::asio;

namespace elafros {
namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr int kRetries = 5;
constexpr std::chrono::milliseconds kFirstDelay{50};
constexpr std::chrono::milliseconds kTimeout{10000};
constexpr int kMaxInFlight = 1024;  // beyond: lost at once, not queued without bound
}  // namespace

class EventSender::Impl : public std::enable_shared_from_this<EventSender::Impl> {
 public:
  Impl(asio::io_context& io, const EventCredentials* credentials)
      : io_(io), credentials_(credentials) {}

  // `self` keeps this alive while the send runs.
  asio::awaitable<void> run(std::shared_ptr<Impl> self, CloudEvent event, std::string target,
                            EventOrigin origin) {
    const std::string from = origin.describe();
    const std::string id = event.get("id");
    std::string error;
    auto url = parse_url(target);
    if (!url) {
      error = url.error().message;
    } else {
      HttpHeaders headers = cloudevent_binary_headers(event);
      if (credentials_)
        if (std::string a =
                credentials_->authorization(target, origin.kind, origin.ns, origin.name);
            !a.empty())
          headers.emplace_back("authorization", std::move(a));
      for (int attempt = 0;; ++attempt) {
        Answer a = co_await post(*url, headers, event.data, kTimeout);
        if (a.status >= 200 && a.status < 300) {
          ++stats_.sent;
          --in_flight_;
          co_return;
        }
        error = !a.error.empty() ? a.error
                                 : fmt::format("{} answered {}: {}", target, a.status,
                                               std::string_view(a.body).substr(0, 200));
        if (!retryable(a.status) || attempt >= kRetries) break;
        ++stats_.retries;
        asio::steady_timer timer(io_, kFirstDelay * (1 << attempt));
        co_await timer.async_wait(kAwait);
      }
    }
    ++stats_.lost;
    --in_flight_;
    spdlog::warn("event {} of {} is lost: {}; check that its sink (status.sinkUri) takes events",
                 id, from, error);
  }

  asio::io_context& io_;
  const EventCredentials* credentials_;
  SenderStats stats_;
  int in_flight_ = 0;  // on io_
};

std::string EventOrigin::describe() const {
  return fmt::format("{} {}/{}", ascii_lower(kind), ns, name);
}

EventSender::EventSender(asio::io_context& io, const EventCredentials* credentials)
    : impl_(std::make_shared<Impl>(io, credentials)) {}
EventSender::~EventSender() = default;

void EventSender::send(CloudEvent event, std::string url, EventOrigin from) {
  asio::post(impl_->io_, [impl = impl_, event = std::move(event), url = std::move(url),
                          from = std::move(from)]() mutable {
    if (impl->in_flight_ >= kMaxInFlight) {
      ++impl->stats_.lost;
      spdlog::warn(
          "event {} of {} is lost: {} events of sources are in flight already (is a "
          "sink slow or down?)",
          event.get("id"), from.describe(), kMaxInFlight);
      return;
    }
    ++impl->in_flight_;
    asio::co_spawn(impl->io_, impl->run(impl, std::move(event), std::move(url), std::move(from)),
                   asio::detached);
  });
}

const SenderStats& EventSender::stats() const {
  return impl_->stats_;
}

std::string render_source_metrics(const SenderStats& s) {
  PrometheusText w;
  w.family("elafros_source_events_total", "counter",
           "Events the sources (PingSource, ApiServerSource) sent, by outcome: sent (2xx from "
           "the sink), lost (retries exhausted or not retryable).");
  w.sample("elafros_source_events_total", R"(outcome="sent")", static_cast<double>(s.sent.load()));
  w.sample("elafros_source_events_total", R"(outcome="lost")", static_cast<double>(s.lost.load()));
  w.family("elafros_source_event_retries_total", "counter",
           "Sends of source events that failed and were retried.");
  w.sample("elafros_source_event_retries_total", "", static_cast<double>(s.retries.load()));
  return w.take();
}

}  // namespace elafros
