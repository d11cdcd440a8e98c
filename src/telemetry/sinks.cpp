// The sinks' transports, on the hub's thread: syslog over a unix datagram socket, UDP or TCP
// (octet counting); the journal's native datagram socket (a sealed memfd for an entry too big for
// one datagram); OTLP/HTTP JSON to /v1/logs. Nothing here blocks: sockets are non-blocking or
// async, each send has a timeout.

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>

#include "elafros/errno_text.hpp"
#include "events/http_post.hpp"
#include "telemetry/telemetry.hpp"

namespace asio = boost::asio;
using asio::awaitable;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr auto kSendTimeout = std::chrono::seconds(5);

// "tcp://HOST:PORT" → (HOST, PORT).
Result<std::pair<std::string, std::string>> host_port(std::string_view rest,
                                                      const std::string& address) {
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
    return Error::invalid(fmt::format(
        "syslog-address \"{}\" needs a host and a port, e.g. tcp://127.0.0.1:601", address));
  std::string host(rest.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::pair{host, std::string(rest.substr(colon + 1))};
}

// Runs a send on `io`; `done` gets its outcome (a retry, should it throw).
void spawn_send(asio::io_context& io, awaitable<SendOutcome> send,
                std::function<void(SendOutcome)> done, const char* what) {
  asio::co_spawn(io, std::move(send),
                 [done = std::move(done), what](std::exception_ptr e, SendOutcome o) {
                   if (e) o = SendOutcome{false, true, fmt::format("the {} sender failed", what)};
                   done(std::move(o));
                 });
}

class SyslogExporter : public LogExporter, public std::enable_shared_from_this<SyslogExporter> {
 public:
  enum class Transport { kUnix, kUdp, kTcp };
  SyslogExporter(asio::io_context& io, Transport t, std::string target, std::string port,
                 SyslogFormat f)
      : io_(io),
        transport_(t),
        target_(std::move(target)),
        port_(std::move(port)),
        format_(std::move(f)),
        tcp_(io) {}

  std::string name() const override { return "syslog"; }

  void send(std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) override {
    spawn_send(io_, run(shared_from_this(), std::move(batch)), std::move(done), "syslog");
  }

 private:
  // The first argument keeps this alive while the send runs.
  awaitable<SendOutcome> run(std::shared_ptr<SyslogExporter>, std::vector<LogRecord> batch) {
    if (transport_ == Transport::kTcp) co_return co_await send_tcp(batch);
    co_return send_datagrams(batch);
  }

  // One datagram per record, non-blocking: a full socket buffer is a retry.
  SendOutcome send_datagrams(const std::vector<LogRecord>& batch) {
    if (fd_ < 0) {
      if (auto r = open_datagram(); !r.ok) return r;
    }
    for (std::size_t i = sent_in_batch_; i < batch.size(); ++i) {
      std::string m = syslog_message(batch[i], format_);
      if (::send(fd_, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        int err = errno;
        if (err == EMSGSIZE) continue;  // one record too big for a datagram: it alone is lost
        sent_in_batch_ = i;             // the rest, when retried (what went is not sent again)
        ::close(fd_);
        fd_ = -1;
        return {false, true, fmt::format("syslog {}: {}", describe(), errno_text(err))};
      }
    }
    sent_in_batch_ = 0;
    return {};
  }

  SendOutcome open_datagram() {
    if (transport_ == Transport::kUnix) {
      fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::strncpy(sa.sun_path, target_.c_str(), sizeof sa.sun_path - 1);
      if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return {};
    } else {
      addrinfo hints{};
      hints.ai_socktype = SOCK_DGRAM;
      hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
      addrinfo* found = nullptr;
      if (::getaddrinfo(target_.c_str(), port_.c_str(), &hints, &found) != 0 || !found)
        return {false, true,
                fmt::format("syslog {}: give a numeric address (an IP and a port)", describe())};
      fd_ = ::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      bool ok = fd_ >= 0 && ::connect(fd_, found->ai_addr, found->ai_addrlen) == 0;
      ::freeaddrinfo(found);
      if (ok) return {};
    }
    int err = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return {false, true, fmt::format("syslog {}: {}", describe(), errno_text(err))};
  }

  // The whole batch, octet-counted, in one write; a broken connection is made again.
  awaitable<SendOutcome> send_tcp(const std::vector<LogRecord>& batch) {
    std::string frames;
    for (const auto& r : batch) frames += octet_counted(syslog_message(r, format_));
    asio::steady_timer deadline(io_, kSendTimeout);
    deadline.async_wait([this](boost::system::error_code ec) {
      if (!ec) tcp_.close();  // a receiver that takes nothing in time
    });
    if (!tcp_.is_open()) {
      asio::ip::tcp::resolver resolver(io_);
      auto [rec, endpoints] = co_await resolver.async_resolve(target_, port_, kAwait);
      if (rec)
        co_return SendOutcome{false, true, fmt::format("syslog {}: {}", describe(), rec.message())};
      auto [cec, ep] = co_await asio::async_connect(tcp_, endpoints, kAwait);
      if (cec) {
        tcp_.close();
        co_return SendOutcome{false, true, fmt::format("syslog {}: {}", describe(), cec.message())};
      }
    }
    auto [wec, n] = co_await asio::async_write(tcp_, asio::buffer(frames), kAwait);
    deadline.cancel();
    if (wec) {
      tcp_.close();
      co_return SendOutcome{false, true, fmt::format("syslog {}: {}", describe(), wec.message())};
    }
    co_return SendOutcome{};
  }

  std::string describe() const {
    switch (transport_) {
      case Transport::kUnix:
        return "unix://" + target_;
      case Transport::kUdp:
        return fmt::format("udp://{}:{}", target_, port_);
      case Transport::kTcp:
        break;
    }
    return fmt::format("tcp://{}:{}", target_, port_);
  }

  asio::io_context& io_;
  Transport transport_;
  std::string target_, port_;
  SyslogFormat format_;
  int fd_ = -1;
  std::size_t sent_in_batch_ = 0;
  asio::ip::tcp::socket tcp_;
};

class JournaldExporter : public LogExporter {
 public:
  explicit JournaldExporter(std::string socket_path) : path_(std::move(socket_path)) {}
  ~JournaldExporter() override {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string name() const override { return "journald"; }

  void send(std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) override {
    if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof sa.sun_path - 1);
    for (std::size_t i = next_; i < batch.size(); ++i) {
      std::string entry = journal_entry(batch[i]);
      ssize_t n = ::sendto(fd_, entry.data(), entry.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                           reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      int err = errno;
      if (n < 0 && (err == EMSGSIZE || err == ENOBUFS) && send_memfd(entry, sa)) continue;
      if (n < 0) {
        next_ = i;  // the rest, when retried
        return done({false, true, fmt::format("journald {}: {}", path_, errno_text(err))});
      }
    }
    next_ = 0;
    done({});
  }

 private:
  // An entry too big for a datagram goes as a sealed memfd passed with SCM_RIGHTS.
  bool send_memfd(const std::string& entry, sockaddr_un& sa) {
    int mfd = ::memfd_create("elafros-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) return false;
    bool ok =
        ::write(mfd, entry.data(), entry.size()) == static_cast<ssize_t>(entry.size()) &&
        ::fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
    if (ok) {
      char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_name = &sa;
      msg.msg_namelen = sizeof sa;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &mfd, sizeof(int));
      ok = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
    }
    ::close(mfd);
    return ok;
  }

  std::string path_;
  int fd_ = -1;
  std::size_t next_ = 0;
};

// POSTs OTLP/HTTP JSON bodies to one path of a collector.
class OtlpPoster : public std::enable_shared_from_this<OtlpPoster> {
 public:
  OtlpPoster(asio::io_context& io, Url url) : io_(io), url_(std::move(url)) {}
  void send(std::string body, std::function<void(SendOutcome)> done) {
    spawn_send(io_, run(shared_from_this(), std::move(body)), std::move(done), "OTLP");
  }

 private:
  // The first argument keeps this alive while the send runs.
  awaitable<SendOutcome> run(std::shared_ptr<OtlpPoster>, std::string body) {
    const HttpHeaders headers{{"content-type", "application/json"}};
    const std::chrono::milliseconds timeout = kSendTimeout;
    Answer a = co_await post(url_, headers, body, timeout);
    if (a.status >= 200 && a.status < 300) co_return SendOutcome{};
    std::string where = fmt::format("otlp http://{}{}", url_.host, url_.path);
    if (a.status == 0) co_return SendOutcome{false, true, fmt::format("{}: {}", where, a.error)};
    // OTLP/HTTP: only 429, 502, 503 and 504 are retried; any other answer is final.
    bool retry = a.status == 429 || a.status == 502 || a.status == 503 || a.status == 504;
    co_return SendOutcome{false, retry,
                          fmt::format("{} answered {}: {}", where, a.status,
                                      std::string_view(a.body).substr(0, 200))};
  }

  asio::io_context& io_;
  Url url_;
};

Result<std::shared_ptr<OtlpPoster>> otlp_poster(asio::io_context& io, const std::string& endpoint,
                                                const char* path, const char* key) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  auto url = parse_url(base + path);
  if (!url)
    return Error::invalid(fmt::format(
        "{} \"{}\" is not an http://HOST:PORT URL (the collector's OTLP/HTTP port, 4318 by "
        "default)",
        key, endpoint));
  return std::make_shared<OtlpPoster>(io, std::move(*url));
}

class OtlpLogExporter : public LogExporter {
 public:
  OtlpLogExporter(std::shared_ptr<OtlpPoster> poster, std::string version)
      : poster_(std::move(poster)), version_(std::move(version)) {}
  std::string name() const override { return "otlp"; }
  void send(std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) override {
    poster_->send(otlp_logs_json(batch, version_), std::move(done));
  }

 private:
  std::shared_ptr<OtlpPoster> poster_;
  std::string version_;
};

class OtlpSpanExporter : public SpanExporter {
 public:
  OtlpSpanExporter(std::shared_ptr<OtlpPoster> poster, std::string version)
      : poster_(std::move(poster)), version_(std::move(version)) {}
  void send(std::vector<Span> batch, std::function<void(SendOutcome)> done) override {
    poster_->send(otlp_traces_json(batch, version_), std::move(done));
  }

 private:
  std::shared_ptr<OtlpPoster> poster_;
  std::string version_;
};

class OtlpMetricsExporter : public MetricsExporter {
 public:
  explicit OtlpMetricsExporter(std::shared_ptr<OtlpPoster> poster) : poster_(std::move(poster)) {}
  void send(std::vector<std::string> bodies, std::function<void(SendOutcome)> done) override {
    if (bodies.empty()) return done({});
    poster_->send(std::move(bodies.back()), std::move(done));  // cumulative: the newest says all
  }

 private:
  std::shared_ptr<OtlpPoster> poster_;
};

}  // namespace

Result<std::shared_ptr<LogExporter>> make_syslog_exporter(asio::io_context& io,
                                                          const std::string& address,
                                                          SyslogFormat format) {
  using T = SyslogExporter::Transport;
  std::string_view a = address;
  if (a.rfind("unix://", 0) == 0 && a.size() > 7)
    return std::shared_ptr<LogExporter>(
        std::make_shared<SyslogExporter>(io, T::kUnix, address.substr(7), "", format));
  for (auto [scheme, t] : {std::pair{"udp://", T::kUdp}, std::pair{"tcp://", T::kTcp}}) {
    if (a.rfind(scheme, 0) != 0) continue;
    auto hp = host_port(a.substr(6), address);
    if (!hp) return hp.error();
    return std::shared_ptr<LogExporter>(
        std::make_shared<SyslogExporter>(io, t, hp->first, hp->second, format));
  }
  return Error::invalid(fmt::format(
      "syslog-address \"{}\" is not unix:///PATH, udp://HOST:PORT or tcp://HOST:PORT", address));
}

std::shared_ptr<LogExporter> make_journald_exporter(asio::io_context&,
                                                    const std::string& socket_path) {
  return std::make_shared<JournaldExporter>(socket_path);
}

Result<std::shared_ptr<LogExporter>> make_otlp_log_exporter(asio::io_context& io,
                                                            const std::string& endpoint,
                                                            std::string version) {
  auto poster = otlp_poster(io, endpoint, "/v1/logs", "otlp-endpoint");
  if (!poster) return poster.error();
  return std::shared_ptr<LogExporter>(
      std::make_shared<OtlpLogExporter>(std::move(*poster), std::move(version)));
}

Result<std::shared_ptr<SpanExporter>> make_otlp_trace_exporter(asio::io_context& io,
                                                               const std::string& endpoint,
                                                               std::string version) {
  auto poster = otlp_poster(io, endpoint, "/v1/traces", "tracing-endpoint");
  if (!poster) return poster.error();
  return std::shared_ptr<SpanExporter>(
      std::make_shared<OtlpSpanExporter>(std::move(*poster), std::move(version)));
}

Result<std::shared_ptr<MetricsExporter>> make_otlp_metrics_exporter(asio::io_context& io,
                                                                    const std::string& endpoint) {
  auto poster = otlp_poster(io, endpoint, "/v1/metrics", "metrics-endpoint");
  if (!poster) return poster.error();
  return std::shared_ptr<MetricsExporter>(
      std::make_shared<OtlpMetricsExporter>(std::move(*poster)));
}

}  // namespace elafros
