#include "log_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace elafros {

std::string format_log_time(std::chrono::system_clock::time_point t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, static_cast<int>(us % 1000000));
}

namespace {

std::optional<std::chrono::system_clock::time_point> parse_log_time(std::string_view s) {
  // 2026-11-29T01:02:03.123456Z
  if (s.size() != 27 || s[10] != 'T' || s[26] != 'Z') return std::nullopt;
  std::tm tm{};
  std::string head(s.substr(0, 19));
  if (!::strptime(head.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  int us = 0;
  for (char c : s.substr(20, 6)) {
    if (c < '0' || c > '9') return std::nullopt;
    us = us * 10 + (c - '0');
  }
  return std::chrono::system_clock::from_time_t(::timegm(&tm)) + std::chrono::microseconds(us);
}

}  // namespace

json::object log_line_json(const LogLine& l) {
  json::object o{{"time", format_log_time(l.time)},
                 {"namespace", l.namespace_},
                 {"service", l.service},
                 {"revision", l.revision},
                 {"instance", l.instance},
                 {"stream", l.stream},
                 {"message", l.message}};
  if (!l.container.empty()) o["container"] = l.container;
  return o;
}

std::optional<LogLine> log_line_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  auto str = [&](const char* k) -> const json::string* {
    const auto* f = o.if_contains(k);
    return f && f->is_string() ? &f->get_string() : nullptr;
  };
  const json::string* fields[] = {str("time"),     str("namespace"), str("service"),
                                  str("revision"), str("instance"),  str("stream"),
                                  str("message")};
  for (const auto* f : fields)
    if (!f) return std::nullopt;
  auto t = parse_log_time(*fields[0]);
  if (!t) return std::nullopt;
  const json::string* container = str("container");
  return LogLine{*t,
                 std::string(*fields[1]),
                 std::string(*fields[2]),
                 std::string(*fields[3]),
                 std::string(*fields[4]),
                 std::string(*fields[5]),
                 std::string(*fields[6]),
                 container ? std::string(*container) : std::string()};
}

bool LogQuery::matches(const LogLine& l) const {
  return l.namespace_ == namespace_ && l.service == service &&
         (revision.empty() || l.revision == revision) &&
         (instance.empty() || l.instance == instance) && (!since || l.time >= *since);
}

FileLogStore::FileLogStore(std::string root, LogRetention retention)
    : root_(std::move(root)), retention_(retention) {
  std::error_code ec;
  fs::create_directories(root_, ec);
}

std::string FileLogStore::dir_of(const LogLine& l) const {
  return fmt::format("{}/{}/{}/{}", root_, l.namespace_, l.service, l.revision);
}

// Appends to <dir>/current.jsonl, rotating it to .1 (and .1 to .2, …) once it is full.
Result<void> FileLogStore::append(const std::string& dir, const std::string& text,
                                  std::vector<Appended>& undo) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::internal(fmt::format("cannot create {}: {}", dir, errno_text(ec)));
  std::string current = dir + "/current.jsonl";
  auto size = fs::file_size(current, ec);
  if (!ec && size > 0 && size + text.size() > retention_.max_file_bytes) {
    for (int i = retention_.max_files - 1; i >= 1; --i) {
      std::string from = i == 1 ? current : fmt::format("{}/current.jsonl.{}", dir, i - 1);
      std::string to = fmt::format("{}/current.jsonl.{}", dir, i);
      if (i == retention_.max_files - 1) fs::remove(to, ec);
      fs::rename(from, to, ec);
    }
    if (retention_.max_files <= 1) fs::remove(current, ec);
  }
  int fd = ::open(current.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return Error::internal(fmt::format("cannot write logs to {}: {}", current, errno_text(errno)));
  struct stat st {};
  ::fstat(fd, &st);
  undo.push_back({current, static_cast<std::uint64_t>(st.st_size)});
  bool ok = write_all(fd, text);
  int err = errno;
  ::close(fd);
  if (!ok)
    return Error::internal(fmt::format("cannot write logs to {}: {}", current, errno_text(err)));
  return {};
}

Result<void> FileLogStore::write(const std::vector<LogLine>& lines) {
  // One append per revision per batch; a batch never crosses a rotation in the middle of a line.
  std::vector<Appended> undo;
  auto fail = [&](Error e) -> Result<void> {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it)
      (void)::truncate(it->file.c_str(), static_cast<off_t>(it->size_before));
    return e;
  };
  std::string dir, text;
  for (const auto& l : lines) {
    std::string d = dir_of(l);
    if (d != dir && !text.empty()) {
      if (auto r = append(dir, text, undo); !r) return fail(r.error());
      text.clear();
    }
    dir = d;
    text += json::serialize(log_line_json(l));
    text += '\n';
    if (text.size() >= retention_.max_file_bytes / 4) {
      if (auto r = append(dir, text, undo); !r) return fail(r.error());
      text.clear();
    }
  }
  if (!text.empty())
    if (auto r = append(dir, text, undo); !r) return fail(r.error());
  return {};
}

std::vector<LogLine> FileLogStore::read(const LogQuery& q) const {
  std::vector<LogLine> out;
  std::error_code ec;
  std::string service_dir = fmt::format("{}/{}/{}", root_, q.namespace_, q.service);
  std::vector<std::string> revisions;
  if (!q.revision.empty()) {
    revisions.push_back(q.revision);
  } else {
    for (const auto& e : fs::directory_iterator(service_dir, ec))
      if (e.is_directory()) revisions.push_back(e.path().filename().string());
  }
  for (const auto& rev : revisions) {
    std::string dir = service_dir + "/" + rev;
    for (int i = retention_.max_files + 4; i >= 0; --i) {  // oldest first; a few spare
      std::string file =
          i == 0 ? dir + "/current.jsonl" : fmt::format("{}/current.jsonl.{}", dir, i);
      std::ifstream in(file);
      std::string text;
      while (std::getline(in, text)) {
        auto line = log_line_from_json(text);
        if (line && q.matches(*line)) out.push_back(std::move(*line));
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const LogLine& a, const LogLine& b) { return a.time < b.time; });
  if (q.tail && out.size() > *q.tail)
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(*q.tail));
  return out;
}

void FileLogStore::remove(const std::string& ns, const std::string& service,
                          const std::string& revision) {
  std::error_code ec;
  if (ns.empty() || service.empty()) return;
  std::string dir = fmt::format("{}/{}/{}", root_, ns, service);
  if (!revision.empty()) dir += "/" + revision;
  fs::remove_all(dir, ec);
}

std::uint64_t FileLogStore::disk_bytes() const {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  return total;
}

Result<void> StdoutLogSink::write(const std::vector<LogLine>& lines) {
  std::string text;
  for (const auto& l : lines) {
    text += json::serialize(log_line_json(l));
    text += '\n';
  }
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    return Error::internal(fmt::format("cannot write logs to stdout: {}", errno_text(errno)));
  return {};
}

}  // namespace elafros
