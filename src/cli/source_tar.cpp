#include "cli/source_tar.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "elafros/naming.hpp"

namespace fs = std::filesystem;

namespace elafros::cli {
namespace {

constexpr std::int64_t kSourceMtime = 315532801;  // 1980-01-01T00:00:01Z

bool class_match(std::string_view pattern, std::size_t& i, char c) {
  // pattern[i] is '['; on return i is past ']'.
  std::size_t j = i + 1;
  bool negate = j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^');
  if (negate) ++j;
  bool matched = false;
  bool first = true;
  for (; j < pattern.size() && (first || pattern[j] != ']'); ++j) {
    first = false;
    if (j + 2 < pattern.size() && pattern[j + 1] == '-' && pattern[j + 2] != ']') {
      if (c >= pattern[j] && c <= pattern[j + 2]) matched = true;
      j += 2;
    } else if (pattern[j] == c) {
      matched = true;
    }
  }
  i = j + 1;
  return matched != negate;
}

}  // namespace

bool glob_match(std::string_view p, std::string_view s) {
  std::size_t pi = 0, si = 0;
  while (pi < p.size()) {
    if (p.substr(pi, 2) == "**") {
      // "**/" matches zero or more directories; a trailing "**" matches everything.
      std::string_view rest = p.substr(pi + 2);
      if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
      if (rest.empty()) return true;
      for (std::size_t k = si; k <= s.size(); ++k)
        if ((k == si || s[k - 1] == '/') && glob_match(rest, s.substr(k))) return true;
      return false;
    }
    char c = p[pi];
    if (c == '*') {
      std::string_view rest = p.substr(pi + 1);
      for (std::size_t k = si; k <= s.size(); ++k) {
        if (glob_match(rest, s.substr(k))) return true;
        if (k < s.size() && s[k] == '/') break;
      }
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '?') {
      if (s[si] == '/') return false;
      ++pi, ++si;
      continue;
    }
    if (c == '[') {
      if (s[si] == '/' || !class_match(p, pi, s[si])) return false;
      ++si;
      continue;
    }
    if (c == '\\' && pi + 1 < p.size()) c = p[++pi];
    if (c != s[si]) return false;
    ++pi, ++si;
  }
  return si == s.size();
}

void IgnoreRules::add_file(const std::string& path, const std::string& base) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) add_pattern(line, base);
}

void IgnoreRules::add_pattern(const std::string& raw, const std::string& base) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  while (!line.empty() && line.back() == ' ' && (line.size() < 2 || line[line.size() - 2] != '\\'))
    line.pop_back();
  if (line.empty() || line[0] == '#') return;
  Rule r;
  r.base = base;
  if (line[0] == '!') {
    r.negate = true;
    line.erase(0, 1);
  } else if (line[0] == '\\' && line.size() > 1 && (line[1] == '!' || line[1] == '#')) {
    line.erase(0, 1);
  }
  if (!line.empty() && line.back() == '/') {
    r.dir_only = true;
    line.pop_back();
  }
  if (line.empty()) return;
  r.anchored = line.find('/') != std::string::npos;
  if (line[0] == '/') line.erase(0, 1);
  r.pattern = line;
  rules_.push_back(std::move(r));
}

bool IgnoreRules::ignored(const std::string& path, bool is_dir) const {
  bool out = false;
  for (const auto& r : rules_) {
    if (r.dir_only && !is_dir) continue;
    std::string_view rel = path;
    if (!r.base.empty()) {
      if (path.size() <= r.base.size() || path.compare(0, r.base.size(), r.base) != 0 ||
          path[r.base.size()] != '/')
        continue;
      rel = std::string_view(path).substr(r.base.size() + 1);
    }
    bool match = false;
    if (r.anchored) {
      match = glob_match(r.pattern, rel);
    } else {
      auto slash = rel.rfind('/');
      match = glob_match(r.pattern, slash == std::string_view::npos ? rel : rel.substr(slash + 1));
    }
    if (match) out = !r.negate;
  }
  return out;
}

namespace {

struct Walk {
  std::string root;
  IgnoreRules rules;
  std::vector<std::pair<std::string, struct stat>> entries;
  std::vector<std::string> ignored;
};

void walk(Walk& w, const std::string& rel) {
  std::string dir = rel.empty() ? w.root : w.root + "/" + rel;
  if (fs::exists(dir + "/.gitignore")) w.rules.add_file(dir + "/.gitignore", rel);
  if (rel.empty() && fs::exists(dir + "/.elafrosignore"))
    w.rules.add_file(dir + "/.elafrosignore", rel);
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    names.push_back(e.path().filename().string());
  if (ec) throw std::runtime_error(fmt::format("cannot read {}: {}", dir, ec.message()));
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string path = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    if (::lstat((w.root + "/" + path).c_str(), &st) != 0)
      throw std::runtime_error(fmt::format("cannot read {}/{}", w.root, path));
    bool is_dir = S_ISDIR(st.st_mode);
    if ((is_dir && name == ".git") || w.rules.ignored(path, is_dir)) {
      w.ignored.push_back(path);
      continue;
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
      throw std::runtime_error(fmt::format(
          "{}/{} is a device, FIFO or socket, which a source upload cannot carry; add it to "
          ".elafrosignore",
          w.root, path));
    if (S_ISLNK(st.st_mode)) {
      std::error_code lec;
      std::string target = fs::read_symlink(w.root + "/" + path, lec).string();
      if (!link_stays_inside(path, target))
        throw std::runtime_error(fmt::format(
            "{}/{} is a symlink to \"{}\", which is absolute or leaves {}; make it relative and "
            "inside the directory, or add it to .elafrosignore",
            w.root, path, target, w.root));
    }
    w.entries.emplace_back(path, st);
    if (is_dir) walk(w, path);
  }
}

la_ssize_t append(archive*, void* out, const void* buffer, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buffer), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

SourceTar pack_source(const std::string& dir_in) {
  std::error_code ec;
  if (!fs::is_directory(dir_in, ec))
    throw std::runtime_error(fmt::format("--source {}: not a directory", dir_in));
  Walk w;
  w.root = fs::canonical(dir_in, ec).string();
  walk(w, "");
  SourceTar out;
  out.ignored = std::move(w.ignored);
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                            archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  archive_write_open(a.get(), &out.data, nullptr, append, nullptr);
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(),
                                                                  archive_entry_free);
  std::vector<char> buf(1 << 16);
  for (const auto& [path, st] : w.entries) {
    archive_entry_clear(e.get());
    archive_entry_set_pathname(e.get(), path.c_str());
    archive_entry_set_mtime(e.get(), kSourceMtime, 0);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_perm(e.get(), st.st_mode & 0777);
    std::string full = w.root + "/" + path;
    if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), fs::read_symlink(full, ec).c_str());
    } else {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
      throw std::runtime_error(fmt::format("packing {}: {}", full, archive_error_string(a.get())));
    if (S_ISREG(st.st_mode)) {
      std::ifstream in(full, std::ios::binary);
      if (!in) throw std::runtime_error(fmt::format("cannot read {}", full));
      std::int64_t left = st.st_size;
      while (left > 0 && in) {
        in.read(buf.data(), static_cast<std::streamsize>(std::min<std::int64_t>(left, buf.size())));
        auto n = in.gcount();
        if (n <= 0) break;
        archive_write_data(a.get(), buf.data(), static_cast<std::size_t>(n));
        left -= n;
      }
      if (left != 0) throw std::runtime_error(fmt::format("{} changed while it was packed", full));
      ++out.files;
      out.bytes += static_cast<std::uint64_t>(st.st_size);
    }
  }
  archive_write_close(a.get());
  return out;
}

}  // namespace elafros::cli
