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

struct LogCollector::Spool {
  std::string path;
  std::string ns, service, revision, instance, stream;
  int fd = -1;
  std::uint64_t offset = 0;   // bytes consumed
  std::uint64_t punched = 0;  // bytes already punched out
  std::string carry;          // a line not finished yet
  bool done = false;          // the instance is gone: drain, then delete
  ~Spool() {
    if (fd >= 0) ::close(fd);
  }
  std::string offset_path() const {
    std::string base = path;
    if (done) base.resize(base.size() - 5);  // ".done"
    return base + ".offset";
  }
  // What is durable: the bytes consumed, less a line not finished yet (read again after a
  // restart). Saved only once the sinks have the lines: delivery is at least once.
  void save_offset() const {
    std::string text = std::to_string(offset - std::min<std::uint64_t>(offset, carry.size()));
    int fd2 = ::open(offset_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd2 < 0) return;
    if (::write(fd2, text.data(), text.size()) < 0) {
    }
    ::close(fd2);
  }
};

struct LogCollector::Queue {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  asio::steady_timer timer{io};
};

LogCollector::LogCollector(std::string data_dir, std::vector<std::shared_ptr<LogSink>> sinks,
                           std::shared_ptr<FileLogStore> store, std::chrono::milliseconds interval)
    : data_dir_(std::move(data_dir)),
      sinks_(std::move(sinks)),
      store_(std::move(store)),
      interval_(interval),
      queue_(std::make_unique<Queue>()) {
  std::error_code ec;
  fs::create_directories(spool_dir(data_dir_), ec);
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
    queue_->timer.expires_after(interval_);
    queue_->timer.async_wait([&tick](boost::system::error_code ec) {
      if (!ec) tick();
    });
  };
  asio::post(queue_->io, tick);
  queue_->io.run();
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
    if (revision.empty())
      for (auto it = followers_.begin(); it != followers_.end();) {
        if (it->second.query.namespace_ == ns && it->second.query.service == service) {
          it->second.deliver({});
          it = followers_.erase(it);
        } else {
          ++it;
        }
      }
    if (done) done();
  });
}

void LogCollector::flush(std::function<void()> done) {
  post([this, done = std::move(done)] {
    collect();
    done();
  });
}

void LogCollector::collect() {
  // Discover new spools and instances that are gone (renamed *.done by the runtime).
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
    auto sp = std::make_unique<Spool>();
    sp->path = path;
    sp->done = done;
    sp->stream = stream;
    sp->ns = ident.substr(0, u1);
    sp->service = ident.substr(u1 + 1, u2 - u1 - 1);
    sp->instance = ident.substr(u2 + 1);
    auto dash = sp->instance.rfind('-');
    sp->revision = dash == std::string::npos ? sp->instance : sp->instance.substr(0, dash);
    if (dns1035_label_problem(sp->ns) || dns1035_label_problem(sp->service) ||
        dns1035_label_problem(sp->revision))
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
    sp->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (sp->fd < 0) continue;
    std::ifstream saved(sp->offset_path());
    saved >> sp->offset;
    sp->punched = sp->offset > kKeepReadable ? sp->offset - kKeepReadable : 0;
    spools_[path] = std::move(sp);
  }

  std::vector<LogLine> lines;
  auto now = std::chrono::system_clock::now();
  std::vector<std::string> finished;
  std::vector<Spool*> advanced;
  for (auto& [key, sp] : spools_) {
    struct stat st {};
    if (::fstat(sp->fd, &st) != 0) continue;
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (size < sp->offset) sp->offset = sp->punched = 0;  // replaced by a new file
    bool drained = true;
    if (size > sp->offset) {
      std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(size - sp->offset, kReadPerTick));
      drained = sp->offset + n >= size;
      std::string text = sp->carry + read_range(sp->fd, sp->offset, n);
      sp->offset += n;
      sp->carry.clear();
      std::size_t i = 0;
      for (;;) {
        auto nl = text.find('\n', i);
        if (nl == std::string::npos) {
          if (text.size() - i >= kMaxLine)
            nl = i + kMaxLine;
          else
            break;
        } else if (nl - i > kMaxLine) {
          nl = i + kMaxLine;
        }
        std::string msg = text.substr(i, nl - i);
        if (!msg.empty() && msg.back() == '\r') msg.pop_back();
        msg.erase(std::remove(msg.begin(), msg.end(), '\0'), msg.end());
        lines.push_back(
            {now, sp->ns, sp->service, sp->revision, sp->instance, sp->stream, std::move(msg)});
        i = (nl < text.size() && text[nl] == '\n') ? nl + 1 : nl;
      }
      sp->carry = text.substr(i);
      advanced.push_back(sp.get());
    }
    if (sp->done && drained) {
      if (!sp->carry.empty())
        lines.push_back({now, sp->ns, sp->service, sp->revision, sp->instance, sp->stream,
                         std::move(sp->carry)});
      finished.push_back(key);
    }
  }
  if (!lines.empty()) {
    for (const auto& sink : sinks_) sink->write(lines);
    for (const auto& [id, f] : followers_) {
      std::vector<LogLine> mine;
      for (const auto& l : lines)
        if (f.query.matches(l)) mine.push_back(l);
      if (!mine.empty()) f.deliver(std::move(mine));
    }
  }
  // The sinks have the lines: remember how far each spool is read, and free what is behind.
  for (Spool* sp : advanced) {
    sp->save_offset();
    if (sp->offset - sp->punched < kPunchEvery + kKeepReadable) continue;
    std::uint64_t upto = (sp->offset - kKeepReadable) & ~std::uint64_t{4095};
    if (upto <= sp->punched) continue;
    int wfd = ::open(sp->path.c_str(), O_WRONLY | O_CLOEXEC);
    if (wfd >= 0) {
      ::fallocate(wfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(sp->punched),
                  static_cast<off_t>(upto - sp->punched));
      ::close(wfd);
    }
    sp->punched = upto;
  }
  for (const auto& key : finished) {
    auto& sp = spools_[key];
    fs::remove(sp->offset_path(), ec);
    fs::remove(sp->path, ec);
    spools_.erase(key);
  }
}

}  // namespace elafros
