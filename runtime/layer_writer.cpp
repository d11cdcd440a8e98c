#include "layer_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "elafros/errno_text.hpp"
#include "elafros/naming.hpp"

namespace elafros {
namespace {

std::string hex(const unsigned char* md, unsigned int n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    return "sha256:" + hex(md, n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// The tar stream's sink: hashes it (the diff_id), deflates it into a gzip member with an empty
// header (no name, mtime 0), hashes and writes the result.
class GzipSink {
 public:
  explicit GzipSink(int fd) : fd_(fd) {
    std::memset(&z_, 0, sizeof z_);
    // 15 + 16: a gzip wrapper; zlib writes mtime 0 and no name without a gz_header.
    ok_ = deflateInit2(&z_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipSink() { deflateEnd(&z_); }

  bool write(const void* data, std::size_t n) {
    raw_hash_.update(data, n);
    raw_bytes_ += n;
    return pump(static_cast<const unsigned char*>(data), n, Z_NO_FLUSH);
  }
  bool finish() { return pump(nullptr, 0, Z_FINISH); }

  std::string diff_id() { return raw_hash_.finish(); }
  std::string digest() { return blob_hash_.finish(); }
  std::int64_t size() const { return blob_bytes_; }
  std::uint64_t raw_bytes() const { return raw_bytes_; }
  const std::string& error() const { return error_; }
  bool ok() const { return ok_; }

 private:
  bool pump(const unsigned char* data, std::size_t n, int flush) {
    z_.next_in = const_cast<unsigned char*>(data);
    z_.avail_in = static_cast<uInt>(n);
    unsigned char out[1 << 16];
    for (;;) {
      z_.next_out = out;
      z_.avail_out = sizeof out;
      int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return fail("compression failed");
      std::size_t produced = sizeof out - z_.avail_out;
      if (produced > 0) {
        blob_hash_.update(out, produced);
        blob_bytes_ += static_cast<std::int64_t>(produced);
        const unsigned char* p = out;
        while (produced > 0) {
          ssize_t w = ::write(fd_, p, produced);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return fail(errno_text(errno));
          p += w;
          produced -= static_cast<std::size_t>(w);
        }
      }
      if (flush == Z_FINISH ? rc == Z_STREAM_END : z_.avail_in == 0 && z_.avail_out != 0) break;
    }
    return true;
  }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    ok_ = false;
    return false;
  }

  int fd_;
  z_stream z_;
  bool ok_ = false;
  std::string error_;
  Sha256 raw_hash_, blob_hash_;
  std::uint64_t raw_bytes_ = 0;
  std::int64_t blob_bytes_ = 0;
};

la_ssize_t on_write(archive*, void* sink, const void* buffer, size_t length) {
  auto* s = static_cast<GzipSink*>(sink);
  return s->write(buffer, length) ? static_cast<la_ssize_t>(length) : -1;
}

struct Entry {
  std::string rel;  // relative to the walked directory, "" for itself
  struct stat st {};
};

// Every entry under dir, with lstat, in no particular order.
Result<void> walk(const std::string& dir, const std::string& rel, std::vector<Entry>& out) {
  std::string path = rel.empty() ? dir : dir + "/" + rel;
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> d(::opendir(path.c_str()));
  if (!d) return Error::internal(fmt::format("cannot read {}: {}", path, errno_text(errno)));
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    Entry entry;
    entry.rel = rel.empty() ? name : rel + "/" + name;
    if (::lstat((dir + "/" + entry.rel).c_str(), &entry.st) != 0)
      return Error::internal(
          fmt::format("cannot stat {}/{}: {}", dir, entry.rel, errno_text(errno)));
    bool is_dir = S_ISDIR(entry.st.st_mode);
    out.push_back(entry);
    if (is_dir)
      if (auto r = walk(dir, out.back().rel, out); !r) return r;
  }
  return {};
}

}  // namespace

Result<WrittenLayer> write_layer(const std::string& dir, const std::string& out_path,
                                 const LayerWriteOptions& o) {
  struct stat root {};
  if (::stat(dir.c_str(), &root) != 0 || !S_ISDIR(root.st_mode))
    return Error::invalid(fmt::format("{} is not a directory", dir));
  std::vector<Entry> entries;
  if (auto r = walk(dir, "", entries); !r) return r.error();
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.rel < b.rel; });

  std::string prefix = o.image_path;
  while (!prefix.empty() && prefix.front() == '/') prefix.erase(0, 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();

  for (const auto& e : entries) {
    mode_t m = e.st.st_mode;
    if (S_ISCHR(m) || S_ISBLK(m) || S_ISFIFO(m) || S_ISSOCK(m))
      return Error::invalid(fmt::format(
          "{}/{} is a device, FIFO or socket, which an image layer may not carry; remove it "
          "from the output",
          o.image_path, e.rel));
    if (S_ISLNK(m)) {
      std::string target(static_cast<std::size_t>(e.st.st_size) + 1, '\0');
      ssize_t n = ::readlink((dir + "/" + e.rel).c_str(), target.data(), target.size());
      if (n < 0)
        return Error::internal(
            fmt::format("cannot read the link {}: {}", e.rel, errno_text(errno)));
      target.resize(static_cast<std::size_t>(n));
      if (!link_stays_inside(e.rel, target))
        return Error::invalid(fmt::format(
            "{}/{} is a symlink to \"{}\", which is absolute or leaves {}; make it relative "
            "and inside the output",
            o.image_path, e.rel, target, o.image_path));
    }
  }

  int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Error::internal(fmt::format("cannot create {}: {}", out_path, errno_text(errno)));
  GzipSink sink(fd);
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(),
                                                            archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  std::string failure;
  auto fail = [&](std::string why) -> Result<WrittenLayer> {
    ::close(fd);
    ::unlink(out_path.c_str());
    return Error::internal(fmt::format("writing the layer of {}: {}", o.image_path, why));
  };
  if (!sink.ok() ||
      archive_write_open2(a.get(), &sink, nullptr, on_write, nullptr, nullptr) != ARCHIVE_OK)
    return fail(archive_error_string(a.get()) ? archive_error_string(a.get()) : "cannot start");

  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> ae(archive_entry_new(),
                                                                   archive_entry_free);
  auto header = [&](const std::string& path, const struct stat& st) {
    archive_entry_clear(ae.get());
    archive_entry_set_pathname(ae.get(), path.c_str());
    archive_entry_set_uid(ae.get(), o.uid);
    archive_entry_set_gid(ae.get(), o.gid);
    archive_entry_set_mtime(ae.get(), o.mtime, 0);
    archive_entry_set_perm(ae.get(), st.st_mode & 07777);
  };
  auto write_header = [&]() -> bool {
    if (archive_write_header(a.get(), ae.get()) == ARCHIVE_OK) return true;
    failure = archive_error_string(a.get()) ? archive_error_string(a.get()) : sink.error();
    return false;
  };

  // The parents of the image path, then the directory itself.
  if (!prefix.empty()) {
    std::size_t at = 0;
    struct stat parent {};
    parent.st_mode = S_IFDIR | 0755;
    for (;;) {
      at = prefix.find('/', at);
      std::string part = at == std::string::npos ? prefix : prefix.substr(0, at);
      header(part + "/", at == std::string::npos ? root : parent);
      archive_entry_set_filetype(ae.get(), AE_IFDIR);
      if (!write_header()) return fail(failure);
      if (at == std::string::npos) break;
      ++at;
    }
  }
  std::string base = prefix.empty() ? "" : prefix + "/";
  std::map<std::pair<dev_t, ino_t>, std::string> first_links;
  std::vector<char> buffer(1 << 16);
  for (const auto& e : entries) {
    std::string path = base + e.rel;
    header(S_ISDIR(e.st.st_mode) ? path + "/" : path, e.st);
    const mode_t m = e.st.st_mode;
    if (S_ISDIR(m)) {
      archive_entry_set_filetype(ae.get(), AE_IFDIR);
      if (!write_header()) return fail(failure);
    } else if (S_ISLNK(m)) {
      std::string target(static_cast<std::size_t>(e.st.st_size) + 1, '\0');
      ssize_t n = ::readlink((dir + "/" + e.rel).c_str(), target.data(), target.size());
      target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      archive_entry_set_filetype(ae.get(), AE_IFLNK);
      archive_entry_set_symlink(ae.get(), target.c_str());
      if (!write_header()) return fail(failure);
    } else if (S_ISREG(m)) {
      if (e.st.st_nlink > 1) {
        auto key = std::make_pair(e.st.st_dev, e.st.st_ino);
        if (auto it = first_links.find(key); it != first_links.end()) {
          archive_entry_set_filetype(ae.get(), AE_IFREG);
          archive_entry_set_hardlink(ae.get(), it->second.c_str());
          archive_entry_set_size(ae.get(), 0);
          if (!write_header()) return fail(failure);
          continue;
        }
        first_links.emplace(key, path);
      }
      archive_entry_set_filetype(ae.get(), AE_IFREG);
      archive_entry_set_size(ae.get(), e.st.st_size);
      if (!write_header()) return fail(failure);
      int in = ::open((dir + "/" + e.rel).c_str(), O_RDONLY | O_CLOEXEC);
      if (in < 0) return fail(fmt::format("cannot read {}: {}", e.rel, errno_text(errno)));
      off_t left = e.st.st_size;
      while (left > 0) {
        ssize_t n = ::read(in, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          ::close(in);
          return fail(
              fmt::format("{} changed while it was written (shorter than its size)", e.rel));
        }
        n = std::min<ssize_t>(n, left);
        if (archive_write_data(a.get(), buffer.data(), static_cast<std::size_t>(n)) != n) {
          ::close(in);
          return fail(archive_error_string(a.get()) ? archive_error_string(a.get()) : sink.error());
        }
        left -= n;
      }
      ::close(in);
    }
    if (sink.raw_bytes() > o.max_bytes) {
      ::close(fd);
      ::unlink(out_path.c_str());
      return Error::invalid(fmt::format("the output {} is over the layer limit of {} bytes",
                                        o.image_path, o.max_bytes));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK || !sink.finish())
    return fail(sink.error().empty() ? "cannot finish the archive" : sink.error());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(out_path.c_str());
    return Error::internal(fmt::format("writing {}: {}", out_path, errno_text(errno)));
  }
  WrittenLayer w;
  w.diff_id = sink.diff_id();
  w.digest = sink.digest();
  w.size = sink.size();
  return w;
}

}  // namespace elafros
