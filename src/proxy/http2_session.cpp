#include "proxy/http2_session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "proxy/client_stream.hpp"

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
// Each stream's receive window, and the connection's: what a client may send ahead of the
// instance reading it. A response body waits while more than kQueuedOut is queued.
constexpr std::int32_t kStreamWindow = 256 * 1024;
constexpr std::int32_t kConnectionWindow = 1024 * 1024;
constexpr std::size_t kQueuedOut = 256 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kWriteBatch = 64 * 1024;

}  // namespace

class Http2Connection : public std::enable_shared_from_this<Http2Connection> {
 public:
  Http2Connection(ClientStream& client, Http2Options options, Http2Handler handler)
      : client_(client),
        client_role_(false),
        options_(options),
        handler_(std::move(handler)),
        write_signal_(client.get_executor()),
        handlers_done_(client.get_executor()),
        watchdog_(client.get_executor()) {}

  // The client's side of a connection to an instance: it owns the stream.
  Http2Connection(std::unique_ptr<ClientStream> owned, Http2Options options)
      : owned_(std::move(owned)),
        client_(*owned_),
        client_role_(true),
        options_(options),
        write_signal_(client_.get_executor()),
        handlers_done_(client_.get_executor()),
        watchdog_(client_.get_executor()) {}

  ~Http2Connection() {
    if (session_) nghttp2_session_del(session_);
  }

  bool open() {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);  // windows open as the proxy reads
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rv = client_role_ ? nghttp2_session_client_new2(&session_, cb, this, opt)
                          : nghttp2_session_server_new2(&session_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    std::array<nghttp2_settings_entry, 3> settings{{
        {client_role_ ? NGHTTP2_SETTINGS_ENABLE_PUSH : NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         client_role_ ? 0 : options_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(kStreamWindow)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.header_limit},
    }};
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size()) != 0)
      return false;
    return nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                                 kConnectionWindow) == 0;
  }

  asio::awaitable<void> run(std::string preread) {
    auto self = shared_from_this();
    writer_running_ = true;  // before the spawn: co_spawn may run the writer at once
    asio::co_spawn(client_.get_executor(), writer(self), [self](const std::exception_ptr&) {
      self->writer_running_ = false;
      self->handlers_done_.cancel();
    });
    asio::co_spawn(client_.get_executor(), watchdog(self), asio::detached);
    bool ok = receive(preread.data(), preread.size());
    std::array<char, kReadChunk> buffer;
    while (ok && !dead_ &&
           (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_))) {
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(buffer), kAwait);
      if (ec) break;
      last_activity_ = Clock::now();
      ok = receive(buffer.data(), n);
    }
    // The connection is over: every stream is gone; the handlers and the writer end.
    dead_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
    for (auto& [id, stream] : streams_) lose(*stream);
    streams_.clear();
    write_signal_.cancel();
    watchdog_.cancel();
    while (handlers_ > 0 || writer_running_) {
      handlers_done_.expires_at(Clock::time_point::max());
      co_await handlers_done_.async_wait(kAwait);
    }
    co_await client_.close_send();
  }

  nghttp2_session* session() { return session_; }
  void kick() { write_signal_.cancel(); }

  // --- the client's side (Http2Upstream) ---------------------------------------------------

  bool usable() const {
    return !dead_ && !goaway_ &&
           streams_.size() < nghttp2_session_get_remote_settings(
                                 session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }

  std::shared_ptr<Http2Stream> submit(const Http2Fields& all, bool end) {
    if (dead_) return nullptr;
    std::vector<nghttp2_nv> nva = name_values(all);
    auto stream = std::make_shared<Http2Stream>(*this, 0);
    nghttp2_data_provider p = provider(stream.get());
    std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                             end ? nullptr : &p, nullptr);
    if (id < 0) return nullptr;
    stream->id_ = id;
    if (end) stream->out_end_ = true;
    stream->keep_ = shared_from_this();
    streams_[id] = stream;
    kick();
    return stream;
  }

  void shut() {
    error_code ignored;
    client_.socket().close(ignored);
  }

 private:
  friend class Http2Stream;

  // Feeds bytes to nghttp2, then starts the handlers of the requests it completed.
  bool receive(const char* data, std::size_t n) {
    if (n > 0) {
      auto used =
          nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), n);
      if (used < 0) {
        dead_ = true;
        return false;
      }
    }
    for (auto& stream : ready_) {
      ++handlers_;
      auto self = shared_from_this();
      asio::co_spawn(client_.get_executor(), handler_(stream), [self](const std::exception_ptr&) {
        if (--self->handlers_ == 0) self->handlers_done_.cancel();
      });
    }
    ready_.clear();
    kick();
    return true;
  }

  asio::awaitable<void> writer(std::shared_ptr<Http2Connection> /*keeps this alive*/) {
    std::string batch;
    while (!dead_) {
      batch.clear();
      for (;;) {
        const std::uint8_t* data = nullptr;
        auto n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          dead_ = true;
          break;
        }
        if (n == 0) break;
        batch.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
        if (batch.size() >= kWriteBatch) break;
      }
      if (dead_) break;
      if (batch.empty()) {
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
        write_signal_.expires_at(Clock::time_point::max());
        co_await write_signal_.async_wait(kAwait);
        continue;
      }
      writing_since_ = Clock::now();
      auto [ec, n] = co_await asio::async_write(client_, asio::buffer(batch), kAwait);
      writing_since_ = Clock::time_point::max();
      if (ec) break;
      last_activity_ = Clock::now();
    }
    // Nothing more goes out: the reader ends too.
    dead_ = true;
    error_code ignored;
    client_.socket().cancel(ignored);
  }

  // Closes a connection idle without streams for idle_timeout (after a GOAWAY), or one whose
  // client has not taken a write for send_timeout.
  asio::awaitable<void> watchdog(std::shared_ptr<Http2Connection> /*keeps this alive*/) {
    bool said_goaway = false;
    while (!dead_) {
      auto now = Clock::now();
      bool idle = streams_.empty() && now >= last_activity_ + options_.idle_timeout;
      bool stuck = writing_since_ != Clock::time_point::max() &&
                   now >= writing_since_ + options_.send_timeout;
      if (stuck || (idle && said_goaway)) {
        error_code ignored;
        client_.socket().close(ignored);
        co_return;
      }
      if (idle) {
        nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
        said_goaway = true;
        last_activity_ = now;  // a moment for the GOAWAY to go out
        kick();
      }
      auto wake = std::min(now + std::chrono::seconds(5), last_activity_ + options_.idle_timeout);
      if (writing_since_ != Clock::time_point::max())
        wake = std::min(wake, writing_since_ + options_.send_timeout);
      watchdog_.expires_at(std::max(wake, now + std::chrono::milliseconds(10)));
      co_await watchdog_.async_wait(kAwait);
    }
  }

  void lose(Http2Stream& s) {
    if (s.gone_) return;
    s.gone_ = true;
    if (s.on_gone) {
      auto f = std::move(s.on_gone);
      s.on_gone = nullptr;
      f();
    }
    s.wake();
  }

  Http2Stream* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  static Http2Connection& of(void* user) { return *static_cast<Http2Connection*>(user); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& c = of(user);
    if (c.client_role_) return 0;
    c.streams_[frame->hd.stream_id] = std::make_shared<Http2Stream>(c, frame->hd.stream_id);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t /*flags*/, void* user) {
    auto& c = of(user);
    Http2Stream* s = c.find(frame->hd.stream_id);
    if (!s || frame->hd.type != NGHTTP2_HEADERS) return 0;
    s->header_bytes_ += namelen + valuelen + 32;
    if (s->header_bytes_ > c.options_.header_limit) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (c.client_role_ && !s->head_done_) {
      // An instance's response head (or an informational one before it, dropped at its end).
      if (n == ":status")
        s->status = std::atoi(v.c_str());
      else if (!n.empty() && n[0] != ':')
        s->headers.emplace_back(n, std::move(v));
      return 0;
    }
    if (c.client_role_ || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      s->trailers.emplace_back(n, std::move(v));
      return 0;
    }
    // nghttp2 has checked the fields (RFC 9113 §8.2): lower case, no connection-specific ones,
    // pseudo-fields first and once.
    if (n == ":method")
      s->method = std::move(v);
    else if (n == ":scheme")
      s->scheme = std::move(v);
    else if (n == ":authority")
      s->authority = std::move(v);
    else if (n == ":path")
      s->path = std::move(v);
    else if (!n.empty() && n[0] != ':')
      s->headers.emplace_back(n, std::move(v));
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = of(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) c.goaway_ = true;
    Http2Stream* s = c.find(frame->hd.stream_id);
    if (!s) return 0;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (c.client_role_ && frame->hd.type == NGHTTP2_HEADERS && !s->head_done_) {
      if (s->status >= 200) {
        s->head_done_ = true;
      } else {
        s->status = 0;  // 1xx: the final head follows
        s->headers.clear();
      }
      if (end) s->in_end_ = true;
      s->wake();
      return 0;
    }
    if (!c.client_role_ && frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s->body_expected = !end;
      s->in_end_ = end;
      c.ready_.push_back(c.streams_[frame->hd.stream_id]);
      return 0;
    }
    if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end) {
      s->in_end_ = true;
      s->wake();
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session* session, std::uint8_t /*flags*/,
                                std::int32_t stream_id, const std::uint8_t* data, std::size_t len,
                                void* user) {
    auto& c = of(user);
    Http2Stream* s = c.find(stream_id);
    if (!s) {
      nghttp2_session_consume_connection(session, len);
      return 0;
    }
    s->in_.append(reinterpret_cast<const char*>(data), len);
    s->wake();
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, std::int32_t stream_id,
                             std::uint32_t error_code, void* user) {
    auto& c = of(user);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) return 0;
    auto stream = it->second;
    c.streams_.erase(it);
    stream->closed_ = true;
    // Both sides ended it: an instance's response may still have bytes for the proxy to read.
    bool complete = error_code == NGHTTP2_NO_ERROR && stream->in_end_;
    if (complete && c.client_role_) {
      stream->wake();
      return 0;
    }
    // What the proxy will not read still counts against the connection's window.
    if (!stream->in_.empty()) nghttp2_session_consume_connection(session, stream->in_.size());
    stream->in_.clear();
    if (complete)
      stream->wake();
    else
      c.lose(*stream);
    return 0;
  }

  static ssize_t read_data(nghttp2_session* session, std::int32_t stream_id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags, nghttp2_data_source* source,
                           void* /*user*/) {
    auto* s = static_cast<Http2Stream*>(source->ptr);
    std::size_t queued = s->out_.size() - s->out_off_;
    std::size_t n = std::min(length, queued);
    if (n > 0) {
      std::memcpy(buf, s->out_.data() + s->out_off_, n);
      s->out_off_ += n;
      if (s->out_off_ == s->out_.size()) {
        s->out_.clear();
        s->out_off_ = 0;
      }
      if (queued - n <= kQueuedOut) s->wake();  // a writer waiting for room goes on
    }
    if (queued == n && s->out_end_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->out_trailers_.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva = name_values(s->out_trailers_);
        nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      s->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

 public:
  static std::vector<nghttp2_nv> name_values(const Http2Fields& fields) {
    std::vector<nghttp2_nv> nva;
    nva.reserve(fields.size());
    for (const auto& [n, v] : fields)
      nva.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                     reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(),
                     v.size(), NGHTTP2_NV_FLAG_NONE});
    return nva;
  }

  static nghttp2_data_provider provider(Http2Stream* s) {
    nghttp2_data_provider p;
    p.source.ptr = s;
    p.read_callback = &read_data;
    return p;
  }

  bool dead() const { return dead_; }

 private:
  std::unique_ptr<ClientStream> owned_;  // an upstream connection's
  ClientStream& client_;
  bool client_role_;
  bool goaway_ = false;
  Http2Options options_;
  Http2Handler handler_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::shared_ptr<Http2Stream>> streams_;
  std::vector<std::shared_ptr<Http2Stream>> ready_;  // requests whose handlers start next
  asio::steady_timer write_signal_;
  asio::steady_timer handlers_done_;
  asio::steady_timer watchdog_;
  int handlers_ = 0;
  bool writer_running_ = false;
  bool dead_ = false;
  Clock::time_point last_activity_ = Clock::now();
  Clock::time_point writing_since_ = Clock::time_point::max();
};

Http2Stream::Http2Stream(Http2Connection& connection, std::int32_t id)
    : connection_(connection), id_(id), signal_(connection.client_.get_executor()) {}

asio::awaitable<void> Http2Stream::wait() {
  signal_.expires_at(deadline_);
  auto [ec] = co_await signal_.async_wait(kAwait);
  if (!ec && Clock::now() >= deadline_ && !gone_) {  // the deadline, not a wake
    timed_out_ = true;
    reset();
    connection_.lose(*this);
  }
}

asio::awaitable<bool> Http2Stream::wait_head() {
  while (!head_done_ && !gone_ && !closed_) co_await wait();
  co_return head_done_ && !gone_;
}

asio::awaitable<Http2Stream::Read> Http2Stream::read_body(char* into, std::size_t size) {
  Read r;
  while (in_.empty() && !in_end_ && !gone_ && !closed_ && !stop_reading_) co_await wait();
  if (gone_ || stop_reading_) {
    r.gone = true;
    co_return r;
  }
  r.n = std::min(size, in_.size());
  std::memcpy(into, in_.data(), r.n);
  in_.erase(0, r.n);
  r.end = in_.empty() && in_end_;
  if (r.n > 0) {
    // The peer may send as much again.
    if (closed_)
      nghttp2_session_consume_connection(connection_.session(), r.n);
    else
      nghttp2_session_consume(connection_.session(), id_, r.n);
    connection_.kick();
  }
  co_return r;
}

bool Http2Stream::respond(int status, const Http2Fields& fields, bool end) {
  if (gone_ || responded_) return false;
  Http2Fields all;
  all.reserve(fields.size() + 1);
  all.emplace_back(":status", std::to_string(status));
  all.insert(all.end(), fields.begin(), fields.end());
  std::vector<nghttp2_nv> nva = Http2Connection::name_values(all);
  nghttp2_data_provider p = Http2Connection::provider(this);
  int rv = nghttp2_submit_response(connection_.session(), id_, nva.data(), nva.size(),
                                   end ? nullptr : &p);
  responded_ = true;
  if (end) out_end_ = true;
  connection_.kick();
  return rv == 0;
}

bool Http2Stream::put(std::string_view data) {
  if (gone_) return false;
  out_.append(data);
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(connection_.session(), id_);
  }
  connection_.kick();
  return true;
}

asio::awaitable<bool> Http2Stream::write(std::string_view data) {
  if (!put(data)) co_return false;
  while (!gone_ && out_.size() - out_off_ > kQueuedOut) co_await wait();
  co_return !gone_;
}

bool Http2Stream::finish(const Http2Fields& trailers) {
  if (gone_) return false;
  out_end_ = true;
  out_trailers_ = trailers;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(connection_.session(), id_);
  }
  connection_.kick();
  return true;
}

void Http2Stream::reset(std::uint32_t error_code) {
  if (gone_ || closed_) return;
  nghttp2_submit_rst_stream(connection_.session(), NGHTTP2_FLAG_NONE, id_, error_code);
  connection_.kick();
}

// --- Http2Upstream ----------------------------------------------------------------------------

Http2Upstream::Http2Upstream(std::shared_ptr<Http2Connection> connection)
    : connection_(std::move(connection)) {}
Http2Upstream::~Http2Upstream() = default;

asio::awaitable<std::shared_ptr<Http2Upstream>> Http2Upstream::connect(asio::any_io_executor ex,
                                                                       asio::ip::tcp::endpoint to,
                                                                       std::chrono::seconds timeout,
                                                                       error_code& ec) {
  auto stream = std::make_unique<ClientStream>(boost::beast::tcp_stream(ex));
  stream->next_layer().expires_after(timeout);
  std::tie(ec) = co_await stream->next_layer().async_connect(to, kAwait);
  if (ec) co_return nullptr;
  stream->next_layer().expires_never();
  error_code ignored;
  stream->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
  Http2Options options;
  options.idle_timeout = std::chrono::seconds(600);
  auto connection = std::make_shared<Http2Connection>(std::move(stream), options);
  if (!connection->open()) {
    ec = asio::error::operation_not_supported;
    co_return nullptr;
  }
  asio::co_spawn(ex, connection->run(std::string()), asio::detached);
  co_return std::shared_ptr<Http2Upstream>(new Http2Upstream(connection));
}

bool Http2Upstream::usable() const {
  return connection_->usable();
}

bool Http2Upstream::closed() const {
  return connection_->dead();
}

std::shared_ptr<Http2Stream> Http2Upstream::request(const std::string& method,
                                                    const std::string& authority,
                                                    const std::string& path,
                                                    const Http2Fields& fields, bool end) {
  Http2Fields all{
      {":method", method}, {":scheme", "http"}, {":authority", authority}, {":path", path}};
  all.insert(all.end(), fields.begin(), fields.end());
  return connection_->submit(all, end);
}

void Http2Upstream::close() {
  connection_->shut();
}

asio::awaitable<void> serve_http2(ClientStream& client, std::string preread, Http2Options options,
                                  Http2Handler handler) {
  auto connection = std::make_shared<Http2Connection>(client, options, std::move(handler));
  if (!connection->open()) co_return;
  co_await connection->run(std::move(preread));
}

}  // namespace elafros
