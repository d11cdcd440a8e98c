#include "log_collector.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "elafros/naming.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace elafros {
namespace {

constexpr std::size_t kMaxLine = 16 * 1024;         // longer lines are split
constexpr std::size_t kReadPerTick = 4 << 20;       // per spool, so one app cannot starve others
constexpr std::uint64_t kKeepReadable = 64 * 1024;  // for failure messages (spool_tail)
constexpr std::uint64_t kPunchEvery = 1 << 20;

std::string read_range(int fd, std::uint64_t from, std::size_t n) {
  std::string buf(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf.data() + got, n - got, static_cast<off_t>(from + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  buf.resize(got);
  return buf;
}

}  // namespace

std::string spool_dir(const std::string& data_dir) {
  return data_dir + "/logs/spool";
}

std::string build_data_dir(const std::string& data_dir) {
  return data_dir + "/builds";
}

std::string spool_path(const std::string& data_dir, const std::string& ns,
                       const std::string& service, const std::string& instance,
                       const char* stream) {
  return fmt::format("{}/{}_{}_{}.{}", spool_dir(data_dir), ns, service, instance, stream);
}

std::string spool_tail(const std::string& data_dir, const std::string& instance,
                       std::size_t lines) {
  std::string out_text, err_text;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_dir(data_dir), ec)) {
    std::string name = e.path().filename().string();
    auto mark = name.find("_" + instance + ".");
    if (mark == std::string::npos || name.find(".offset") != std::string::npos) continue;
    bool err = name.find(".stderr") != std::string::npos;
    int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    ::fstat(fd, &st);
    auto size = static_cast<std::uint64_t>(st.st_size);
    std::uint64_t from = size > kKeepReadable ? size - kKeepReadable : 0;
    std::string text = read_range(fd, from, static_cast<std::size_t>(size - from));
    ::close(fd);
    text.erase(std::remove(text.begin(), text.end(), '\0'), text.end());  // punched holes
    (err ? err_text : out_text) += text;
  }
  // Keep at most `lines` lines overall, preferring stderr's, which is usually the reason.
  std::string all = out_text + (out_text.empty() || out_text.back() == '\n' ? "" : "\n") + err_text;
  std::deque<std::string> kept;
  std::size_t i = 0;
  while (i < all.size()) {
    auto j = all.find('\n', i);
    if (j == std::string::npos) j = all.size();
    if (j > i) kept.push_back(all.substr(i, j - i));
    if (kept.size() > lines) kept.pop_front();
    i = j + 1;
  }
  std::string result;
  for (const auto& l : kept) result += l + "\n";
  return result;
}

// What one read of a spool from an offset gave: its lines and where each ends. Cached for the
// length of one collection, so sinks at the same offset share it and get the same time stamps.
struct Chunk {
  std::vector<LogLine> lines;
  std::uint64_t to = 0;  // the offset after the last whole line
};

struct LogCollector::Spool {
  std::string path;
  std::string ns, service, revision, instance, stream;
  std::string container;  // "<instance>_<name>": a sidecar's or init container's spool
  int fd = -1;
  std::uint64_t size = 0;                 // at this collection
  std::vector<std::uint64_t> delivered;   // per sink: the bytes it has
  std::uint64_t seen = 0;                 // the bytes live followers were given
  std::uint64_t punched = 0;              // bytes already punched out
  bool done = false;                      // the instance is gone: drain, then delete
  bool dirty = false;                     // an offset moved: save them
  std::map<std::uint64_t, Chunk> chunks;  // this collection's reads, by offset

  ~Spool() {
    if (fd >= 0) ::close(fd);
  }
  std::uint64_t least() const {
    return delivered.empty() ? size : *std::min_element(delivered.begin(), delivered.end());
  }
  std::uint64_t most() const {
    return delivered.empty() ? size : *std::max_element(delivered.begin(), delivered.end());
  }
  std::string offset_path() const {
    std::string base = path;
    if (done) base.resize(base.size() - 5);  // ".done"
    return base + ".offset";
  }

  // Whole lines from `from`; with `done`, a last line without a newline counts too.
  const Chunk& read(std::uint64_t from, std::chrono::system_clock::time_point now) {
    if (auto it = chunks.find(from); it != chunks.end()) return it->second;
    Chunk& c = chunks[from];
    c.to = from;
    if (size <= from) return c;
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - from, kReadPerTick));
    std::string text = read_range(fd, from, n);
    bool last = done && from + text.size() >= size;
    std::size_t i = 0;
    while (i < text.size()) {
      auto nl = text.find('\n', i);
      std::size_t end;  // of the message
      std::size_t next;
      if (nl != std::string::npos && nl - i <= kMaxLine) {
        end = nl;
        next = nl + 1;
      } else if (text.size() - i >= kMaxLine) {
        end = next = i + kMaxLine;  // a long line is split
      } else if (last) {
        end = next = text.size();
      } else {
        break;  // not finished yet: read again next time
      }
      std::string msg = text.substr(i, end - i);
      bool hole = !msg.empty() && msg.find_first_not_of('\0') == std::string::npos;
      msg.erase(std::remove(msg.begin(), msg.end(), '\0'), msg.end());
      if (!msg.empty() && msg.back() == '\r') msg.pop_back();
      if (!hole)
        c.lines.push_back(
            {now, ns, service, revision, instance, stream, std::move(msg), container});
      i = next;
    }
    c.to = from + i;
    return c;
  }

  // "NAME OFFSET" per sink, fixed width, rewritten in place: saving needs no new disk space, so a
  // full disk cannot lose the offsets. Saved only once the sinks have the lines.
  void save_offsets(const std::vector<std::shared_ptr<LogSink>>& sinks) {
    std::string text;
    for (std::size_t s = 0; s < sinks.size(); ++s)
      text += fmt::format("{} {:020d}\n", sinks[s]->name(), delivered[s]);
    int ofd = ::open(offset_path().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (ofd < 0) return;  // still dirty: tried again at the next collection
    if (::pwrite(ofd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size())) {
      struct stat st {};
      if (::fstat(ofd, &st) == 0 && static_cast<std::size_t>(st.st_size) > text.size())
        (void)::ftruncate(ofd, static_cast<off_t>(text.size()));
      dirty = false;
    }
    ::close(ofd);
  }

  // Either format: one number (older versions, every sink), or "NAME OFFSET" lines. A sink with no
  // line starts where the least advanced of the others is.
  void load_offsets(const std::vector<std::shared_ptr<LogSink>>& sinks) {
    std::ifstream in(offset_path());
    std::map<std::string, std::uint64_t> by_name;
    std::optional<std::uint64_t> all;
    for (std::string line; std::getline(in, line);) {
      std::istringstream fields(line);
      std::string a;
      std::uint64_t v = 0;
      if (!(fields >> a)) continue;
      if (fields >> v)
        by_name[a] = v;
      else if (std::all_of(a.begin(), a.end(), ::isdigit))
        all = std::stoull(a);
    }
    std::uint64_t start = all.value_or(0);
    if (!all && !by_name.empty()) {
      start = UINT64_MAX;
      for (const auto& [n, v] : by_name) start = std::min(start, v);
    }
    delivered.assign(sinks.size(), start);
    for (std::size_t s = 0; s < sinks.size(); ++s)
      if (auto it = by_name.find(sinks[s]->name()); it != by_name.end()) delivered[s] = it->second;
    seen = most();
    std::uint64_t low = least();
    punched = low > kKeepReadable ? low - kKeepReadable : 0;
  }
};

struct LogCollector::SinkState {
  std::chrono::steady_clock::time_point retry_at{};
  std::chrono::milliseconds backoff{0};
  bool healthy = true;
  std::string last_error;
  std::int64_t failing_since = 0;
  std::uint64_t failed_writes = 0;
  std::uint64_t dropped_lines = 0;
};

struct LogCollector::Queue {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  asio::steady_timer timer{io};
};

LogCollector::LogCollector(std::string data_dir, std::vector<std::shared_ptr<LogSink>> sinks,
                           std::shared_ptr<FileLogStore> store, LogCollectorOptions options)
    : data_dir_(std::move(data_dir)),
      sinks_(std::move(sinks)),
      store_(std::move(store)),
      options_(options),
      sink_states_(sinks_.size()),
      queue_(std::make_unique<Queue>()) {
  std::error_code ec;
  fs::create_directories(spool_dir(data_dir_), ec);
  for (const auto& sink : sinks_) {
    LogHealth::Sink h;
    h.name = sink->name();
    health_.sinks.push_back(std::move(h));
  }
}

LogCollector::~LogCollector() {
  stop();
}

void LogCollector::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void LogCollector::stop() {
  if (!thread_.joinable()) return;
  asio::post(queue_->io, [this] {
    collect();  // what the apps wrote until now is stored before the daemon exits
    queue_->timer.cancel();
    queue_->guard.reset();
  });
  thread_.join();
}

void LogCollector::post(std::function<void()> fn) {
  asio::post(queue_->io, std::move(fn));
}

void LogCollector::run() {
  std::function<void()> tick = [this, &tick] {
    try {
      collect();
    } catch (const std::exception& e) {
      spdlog::warn("collecting logs failed: {}", e.what());
    }
    if (!queue_->guard.owns_work()) return;
    queue_->timer.expires_after(options_.interval);
    queue_->timer.async_wait([&tick](boost::system::error_code ec) {
      if (!ec) tick();
    });
  };
  asio::post(queue_->io, tick);
  queue_->io.run();
}

LogHealth LogCollector::health() const {
  std::lock_guard lock(health_mutex_);
  return health_;
}

void LogCollector::open(
    LogQuery query, bool follow, Deliver deliver,
    std::function<void(std::vector<LogLine>, std::uint64_t, std::string)> done) {
  post([this, query = std::move(query), follow, deliver = std::move(deliver),
        done = std::move(done)]() mutable {
    if (!store_) {
      done({}, 0,
           "the daemon keeps no logs: its log-sinks do not include \"file\" (they go to its "
           "stdout). Read them there (journalctl -u elafrosd under systemd), or add file to "
           "log-sinks in the daemon config and restart it");
      return;
    }
    collect();  // the backlog includes what the apps wrote until now
    std::vector<LogLine> backlog = store_->read(query);
    std::uint64_t id = 0;
    if (follow) {
      id = next_follower_++;
      LogQuery live = query;
      live.tail.reset();
      live.since.reset();
      followers_[id] = Follower{std::move(live), std::move(deliver)};
    }
    done(std::move(backlog), id, "");
  });
}

void LogCollector::close(std::uint64_t follower) {
  post([this, follower] { followers_.erase(follower); });
}

void LogCollector::remove(std::string ns, std::string service, std::string revision,
                          std::function<void()> done) {
  post([this, ns = std::move(ns), service = std::move(service), revision = std::move(revision),
        done = std::move(done)] {
    collect();  // the spools of its last instances first, or they would recreate it
    if (store_) store_->remove(ns, service, revision);
    // Followers of a deleted service are done: an empty delivery tells them so.
    if (revision.empty()) end_followers(ns, service);
    if (done) done();
  });
}

void LogCollector::end_follows(std::string ns, std::string service, std::function<void()> done) {
  post([this, ns = std::move(ns), service = std::move(service), done = std::move(done)] {
    collect();
    end_followers(ns, service);
    if (done) done();
  });
}

void LogCollector::end_followers(const std::string& ns, const std::string& service) {
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (it->second.query.namespace_ == ns && it->second.query.service == service) {
      it->second.deliver({});
      it = followers_.erase(it);
    } else {
      ++it;
    }
  }
}

void LogCollector::flush(std::function<void()> done) {
  post([this, done = std::move(done)] {
    collect();
    done();
  });
}

// New spools, and instances that are gone (renamed *.done by the runtime).
void LogCollector::discover() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_dir(data_dir_), ec)) {
    std::string path = e.path().string();
    std::string name = e.path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".offset") == 0) continue;
    if (spools_.count(path)) continue;
    bool done = name.size() > 5 && name.compare(name.size() - 5, 5, ".done") == 0;
    std::string base = done ? name.substr(0, name.size() - 5) : name;
    auto dot = base.rfind('.');
    if (dot == std::string::npos) continue;
    std::string stream = base.substr(dot + 1);
    std::string ident = base.substr(0, dot);
    auto u1 = ident.find('_'), u2 = ident.find('_', u1 == std::string::npos ? 0 : u1 + 1);
    if ((stream != "stdout" && stream != "stderr") || u1 == std::string::npos ||
        u2 == std::string::npos)
      continue;
    // A spool that was renamed *.done while open keeps its state under the new path.
    if (done) {
      std::string live_path = path.substr(0, path.size() - 5);
      if (auto it = spools_.find(live_path); it != spools_.end()) {
        auto moved = std::move(it->second);
        spools_.erase(it);
        moved->path = path;
        moved->done = true;
        spools_[path] = std::move(moved);
        continue;
      }
    }
    auto sp = std::make_unique<Spool>();
    sp->path = path;
    sp->done = done;
    sp->stream = stream;
    sp->ns = ident.substr(0, u1);
    sp->service = ident.substr(u1 + 1, u2 - u1 - 1);
    sp->instance = ident.substr(u2 + 1);
    if (auto u3 = sp->instance.find('_'); u3 != std::string::npos) {
      sp->container = sp->instance.substr(u3 + 1);
      sp->instance.resize(u3);
    }
    auto dash = sp->instance.rfind('-');
    sp->revision = dash == std::string::npos ? sp->instance : sp->instance.substr(0, dash);
    if (dns1035_label_problem(sp->ns) || dns1035_label_problem(sp->service) ||
        dns1035_label_problem(sp->revision))
      continue;
    sp->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (sp->fd < 0) continue;  // EMFILE: found again at the next collection
    sp->load_offsets(sinks_);
    spools_[path] = std::move(sp);
  }
}

void LogCollector::collect() {
  discover();
  auto steady = std::chrono::steady_clock::now();
  for (auto& [key, sp] : spools_) {
    sp->chunks.clear();
    struct stat st {};
    if (::fstat(sp->fd, &st) != 0) continue;
    sp->size = static_cast<std::uint64_t>(st.st_size);
    if (sp->size < sp->least()) {  // replaced by a new file
      std::fill(sp->delivered.begin(), sp->delivered.end(), 0);
      sp->seen = sp->punched = 0;
    }
  }
  for (std::size_t s = 0; s < sinks_.size(); ++s) deliver_to(s, steady);
  follow_new();
  bound_spools();

  // Remember how far each sink has read, free what every sink has, and delete finished spools.
  std::error_code ec;
  std::vector<std::string> finished;
  for (auto& [key, sp] : spools_) {
    if (sp->dirty) sp->save_offsets(sinks_);
    std::uint64_t low = sp->least();
    if (sp->done && low >= sp->size) {
      finished.push_back(key);
      continue;
    }
    if (low - sp->punched < kPunchEvery + kKeepReadable) continue;
    std::uint64_t upto = (low - kKeepReadable) & ~std::uint64_t{4095};
    if (upto <= sp->punched) continue;
    int wfd = ::open(sp->path.c_str(), O_WRONLY | O_CLOEXEC);
    if (wfd < 0) continue;
    ::fallocate(wfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(sp->punched),
                static_cast<off_t>(upto - sp->punched));
    ::close(wfd);
    sp->punched = upto;
  }
  for (const auto& key : finished) {
    auto& sp = spools_[key];
    fs::remove(sp->offset_path(), ec);
    fs::remove(sp->path, ec);
    spools_.erase(key);
  }
  publish_health();
}

// One write per sink per collection, of every spool's lines past that sink's offset. A failed
// write moves nothing: the same lines are offered again after a backoff.
void LogCollector::deliver_to(std::size_t s, std::chrono::steady_clock::time_point steady) {
  SinkState& st = sink_states_[s];
  if (steady < st.retry_at) return;
  auto now = std::chrono::system_clock::now();
  std::vector<LogLine> batch;
  std::vector<std::pair<Spool*, std::uint64_t>> moves;
  for (auto& [key, sp] : spools_) {
    std::uint64_t from = sp->delivered[s];
    if (sp->size <= from) continue;
    const Chunk& c = sp->read(from, now);
    if (c.to == from) continue;
    batch.insert(batch.end(), c.lines.begin(), c.lines.end());
    moves.emplace_back(sp.get(), c.to);
  }
  if (!batch.empty()) {
    auto r = sinks_[s]->write(batch);
    if (!r) {
      if (st.healthy)
        spdlog::warn("log sink {} failed; its lines stay spooled and are retried: {}",
                     sinks_[s]->name(), r.error().message);
      st.healthy = false;
      st.last_error = r.error().message;
      if (st.failing_since == 0)
        st.failing_since = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
      ++st.failed_writes;
      st.backoff = st.backoff.count() == 0 ? options_.retry_initial
                                           : std::min(st.backoff * 2, options_.retry_max);
      st.retry_at = steady + st.backoff;
      return;
    }
    if (!st.healthy)
      spdlog::info("log sink {} works again; its spooled lines are delivered", sinks_[s]->name());
    st.healthy = true;
    st.failing_since = 0;
    st.backoff = std::chrono::milliseconds(0);
  }
  for (auto& [sp, to] : moves) {
    sp->delivered[s] = to;
    sp->dirty = true;
  }
}

// Live followers get each line once, when it is first read, whether a sink has it yet or not.
void LogCollector::follow_new() {
  auto now = std::chrono::system_clock::now();
  for (auto& [key, sp] : spools_) {
    if (followers_.empty()) {
      sp->seen = std::max(sp->seen, sp->most());
      continue;
    }
    if (sp->size <= sp->seen) continue;
    const Chunk& c = sp->read(sp->seen, now);
    sp->seen = c.to;
    for (const auto& [id, f] : followers_) {
      std::vector<LogLine> mine;
      for (const auto& l : c.lines)
        if (f.query.matches(l)) mine.push_back(l);
      if (!mine.empty()) f.deliver(std::move(mine));
    }
  }
}

// A sink more than spool_max_bytes behind on a spool loses that spool's oldest lines, counted.
void LogCollector::bound_spools() {
  for (auto& [key, sp] : spools_) {
    if (sp->size - std::min(sp->size, sp->least()) <= options_.spool_max_bytes) continue;
    std::uint64_t cut = sp->size - options_.spool_max_bytes;
    std::string probe = read_range(sp->fd, cut, kMaxLine + 1);
    auto nl = probe.find('\n');
    if (nl != std::string::npos) cut += nl + 1;
    for (std::size_t s = 0; s < sinks_.size(); ++s) {
      std::uint64_t from = sp->delivered[s];
      if (from >= cut) continue;
      std::uint64_t lines = 0;
      for (std::uint64_t at = from; at < cut;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(cut - at, 1 << 20));
        std::string text = read_range(sp->fd, at, n);
        if (text.empty()) break;
        lines += static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
        at += text.size();
      }
      sink_states_[s].dropped_lines += lines;
      spdlog::warn(
          "dropped the {} oldest log lines of instance {} ({}) for sink {}: it is more than "
          "log-spool-max-bytes ({}) behind; last error: {}",
          lines, sp->instance, sp->stream, sinks_[s]->name(), options_.spool_max_bytes,
          sink_states_[s].last_error.empty() ? "none" : sink_states_[s].last_error);
      sp->delivered[s] = cut;
      sp->dirty = true;
    }
    sp->seen = std::max(sp->seen, cut);
  }
}

void LogCollector::publish_health() {
  LogHealth h;
  for (std::size_t s = 0; s < sinks_.size(); ++s) {
    const SinkState& st = sink_states_[s];
    LogHealth::Sink out{sinks_[s]->name(), st.healthy, st.last_error,   st.failing_since,
                        st.failed_writes,  0,          st.dropped_lines};
    for (const auto& [key, sp] : spools_)
      out.pending_bytes += sp->size - std::min(sp->size, sp->delivered[s]);
    h.sinks.push_back(std::move(out));
  }
  std::lock_guard lock(health_mutex_);
  health_ = std::move(h);
}

}  // namespace elafros
