#include "id_shift.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros;
namespace fs = std::filesystem;

namespace {

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_CASE("copy_shifted copies a tree with every owner moved into the mapping") {
  if (::geteuid() != 0) {
    WARN("skipped: chown needs root");
    return;
  }
  test::TempDir dir;
  std::string from = dir.path() + "/from", to = dir.path() + "/to";
  fs::create_directories(from + "/etc/sub");
  { std::ofstream(from + "/etc/passwd") << "root:x:0:0::/:/bin/sh\n"; }
  { std::ofstream(from + "/bin") << std::string(100000, 'b'); }
  REQUIRE(::chown((from + "/etc/passwd").c_str(), 65534, 65534) == 0);
  REQUIRE(::chmod((from + "/bin").c_str(), 04755) == 0);  // set-user-ID survives the chown
  REQUIRE(::chown((from + "/etc/sub").c_str(), 70000, 1) == 0);  // past the range
  REQUIRE(::link((from + "/bin").c_str(), (from + "/etc/hardlink").c_str()) == 0);
  REQUIRE(::symlink("../bin", (from + "/etc/link").c_str()) == 0);
  REQUIRE(::mkfifo((from + "/fifo").c_str(), 0640) == 0);

  auto copied = copy_shifted(from, to, IdMapping{100000, 65536});
  REQUIRE(copied.ok());
  CHECK(copied->bytes == 100000 + 22);
  CHECK(copied->entries == 8);

  CHECK(lstat_of(to).st_uid == 100000);
  CHECK(lstat_of(to + "/etc/passwd").st_uid == 165534);
  CHECK(lstat_of(to + "/etc/passwd").st_gid == 165534);
  CHECK((lstat_of(to + "/bin").st_mode & 07777) == 04755);
  CHECK(lstat_of(to + "/bin").st_size == 100000);
  CHECK(lstat_of(to + "/etc/sub").st_uid == 165535);
  CHECK(lstat_of(to + "/etc/sub").st_gid == 100001);
  CHECK(lstat_of(to + "/etc/hardlink").st_ino == lstat_of(to + "/bin").st_ino);
  CHECK(lstat_of(to + "/etc/hardlink").st_ino != lstat_of(from + "/bin").st_ino);
  CHECK(S_ISLNK(lstat_of(to + "/etc/link").st_mode));
  CHECK(lstat_of(to + "/etc/link").st_uid == 100000);
  CHECK(fs::read_symlink(to + "/etc/link") == "../bin");
  CHECK(S_ISFIFO(lstat_of(to + "/fifo").st_mode));
  CHECK(lstat_of(to + "/etc/passwd").st_mtim.tv_sec == lstat_of(from + "/etc/passwd").st_mtim.tv_sec);
  // The original is untouched.
  CHECK(lstat_of(from + "/etc/passwd").st_uid == 65534);
  CHECK(lstat_of(from + "/bin").st_uid == 0);
}

TEST_CASE("copy_shifted says which path failed") {
  test::TempDir dir;
  auto copied = copy_shifted(dir.path() + "/missing", dir.path() + "/to", IdMapping{});
  REQUIRE(!copied.ok());
  CHECK(copied.error().message.find("missing") != std::string::npos);
}
