#include "layer_unpacker.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros;
using test::TarEntry;
namespace fs = std::filesystem;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Sandbox {
  test::TempDir dir;
  std::string root = dir.path() + "/root";
  std::string outside = dir.path() + "/outside";
  Sandbox() {
    fs::create_directories(root);
    fs::create_directories(outside);
  }
  Result<void> apply(const std::vector<TarEntry>& entries, bool gzip = false) {
    std::string layer = dir.path() + "/layer-" + std::to_string(n++) + ".tar";
    test::write_tar(layer, entries, gzip);
    return unpack_layer(layer, root);
  }
  bool outside_empty() const { return fs::is_empty(outside); }
  int n = 0;
};

}  // namespace

TEST_CASE("a layer unpacks files, directories, symlinks and hardlinks with their modes") {
  Sandbox s;
  auto r = s.apply({{TarEntry::kDir, "bin", "", 0755},
                    {TarEntry::kFile, "bin/app", "#!/bin/sh\n", 0755},
                    {TarEntry::kSymlink, "bin/link", "app"},
                    {TarEntry::kHardlink, "bin/hard", "bin/app"},
                    {TarEntry::kFile, "etc/deep/config", "x=1\n", 0600}},  // parents created
                   true);
  REQUIRE(r.ok());
  CHECK(read(s.root + "/bin/app") == "#!/bin/sh\n");
  CHECK((fs::status(s.root + "/bin/app").permissions() & fs::perms::owner_exec) != fs::perms::none);
  CHECK(fs::read_symlink(s.root + "/bin/link") == "app");
  struct stat a {
  }, b{};
  ::stat((s.root + "/bin/app").c_str(), &a);
  ::stat((s.root + "/bin/hard").c_str(), &b);
  CHECK(a.st_ino == b.st_ino);
  CHECK(read(s.root + "/etc/deep/config") == "x=1\n");
  CHECK((fs::status(s.root + "/etc/deep/config").permissions() & fs::perms::others_read) ==
        fs::perms::none);
}

TEST_CASE("zstd-compressed layers unpack like gzip ones") {
  test::TempDir dir;
  std::string layer = dir.path() + "/layer.tar.zst", root = dir.path() + "/root";
  test::write_tar(layer, {{TarEntry::kFile, "etc/zstd", "compressed with zstd\n", 0644}},
                  test::Compression::kZstd);
  std::ifstream magic(layer, std::ios::binary);
  unsigned char head[4] = {};
  magic.read(reinterpret_cast<char*>(head), 4);
  CHECK((head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd));  // zstd
  fs::create_directories(root);
  REQUIRE(unpack_layer(layer, root, UnpackLimits{}).ok());
  CHECK(read(root + "/etc/zstd") == "compressed with zstd\n");
}

TEST_CASE("whiteouts remove what lower layers added; opaque markers hide directories") {
  Sandbox s;
  REQUIRE(s.apply({{TarEntry::kFile, "a/b", "b"},
                   {TarEntry::kFile, "a/c", "c"},
                   {TarEntry::kFile, "d/e", "e"},
                   {TarEntry::kDir, "d/sub", ""},
                   {TarEntry::kFile, "d/sub/x", "x"}})
              .ok());
  REQUIRE(
      s.apply({{TarEntry::kFile, "a/.wh.b", ""},
               {TarEntry::kFile, "d/f", "f"},  // written before the marker, in the same layer: kept
               {TarEntry::kFile, "d/.wh..wh..opq", ""},
               {TarEntry::kFile, "d/g", "g"}})
          .ok());
  CHECK_FALSE(fs::exists(s.root + "/a/b"));
  CHECK(fs::exists(s.root + "/a/c"));
  CHECK_FALSE(fs::exists(s.root + "/a/.wh.b"));
  CHECK_FALSE(fs::exists(s.root + "/d/e"));
  CHECK_FALSE(fs::exists(s.root + "/d/sub"));
  CHECK(read(s.root + "/d/f") == "f");
  CHECK(read(s.root + "/d/g") == "g");
  CHECK_FALSE(fs::exists(s.root + "/d/.wh..wh..opq"));
}

TEST_CASE("a later layer replaces a file with a directory and back") {
  Sandbox s;
  REQUIRE(s.apply({{TarEntry::kFile, "x", "file"},
                   {TarEntry::kDir, "y", ""},
                   {TarEntry::kFile, "y/inner", "i"}})
              .ok());
  REQUIRE(s.apply({{TarEntry::kDir, "x", ""}, {TarEntry::kFile, "y", "now a file"}}).ok());
  CHECK(fs::is_directory(s.root + "/x"));
  CHECK(read(s.root + "/y") == "now a file");
}

TEST_CASE("no entry is written through a symlink, even one that points inside") {
  Sandbox s;
  REQUIRE(s.apply({{TarEntry::kDir, "usr/bin", ""},
                   {TarEntry::kSymlink, "bin", "usr/bin"},
                   {TarEntry::kSymlink, "abs", "/usr"}})
              .ok());
  auto lower = s.apply({{TarEntry::kFile, "bin/tool", "t"}});  // through a lower layer's link
  REQUIRE_FALSE(lower.ok());
  CHECK(lower.error().message.find(
            "entry \"bin/tool\" would be written through the symlink \"bin\"") !=
        std::string::npos);
  auto same = s.apply({{TarEntry::kSymlink, "lib", "usr"}, {TarEntry::kFile, "lib/x", "x"}});
  REQUIRE_FALSE(same.ok());  // through a link from earlier in the same layer
  CHECK(same.error().message.find("\"lib/x\"") != std::string::npos);
  CHECK_FALSE(fs::exists(s.root + "/usr/bin/tool"));
  CHECK(s.outside_empty());
  // The real path is fine, and a hardlink may name its target through an in-root link.
  REQUIRE(s.apply({{TarEntry::kFile, "usr/bin/tool", "t"},
                   {TarEntry::kHardlink, "usr/tool", "bin/tool"}})
              .ok());
  CHECK(read(s.root + "/usr/tool") == "t");
}

TEST_CASE("hostile layers are refused, naming the entry, and nothing escapes the root") {
  Sandbox s;

  SECTION("dot-dot path") {
    auto r = s.apply({{TarEntry::kFile, "../outside/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("\"../outside/pwned\"") != std::string::npos);
    CHECK(r.error().message.find("..") != std::string::npos);
  }
  SECTION("dot-dot in the middle") {
    auto r = s.apply({{TarEntry::kFile, "a/../../outside/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("a/../../outside/pwned") != std::string::npos);
  }
  SECTION("absolute path") {
    auto r = s.apply({{TarEntry::kFile, s.outside + "/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("absolute path") != std::string::npos);
  }
  SECTION("symlink escape, then a write through it") {
    auto r = s.apply({{TarEntry::kSymlink, "escape", "../../../../../../.." + s.outside},
                      {TarEntry::kFile, "escape/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("\"escape/pwned\"") != std::string::npos);
    CHECK(r.error().message.find("symlink") != std::string::npos);
  }
  SECTION("symlink escape planted in one layer, used by the next") {
    REQUIRE(
        s.apply({{TarEntry::kSymlink, "dir", "../outside"}}).ok());  // a dangling link is harmless
    auto r = s.apply({{TarEntry::kFile, "dir/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("dir/pwned") != std::string::npos);
  }
  SECTION("chained symlinks that climb out") {
    auto r = s.apply({{TarEntry::kDir, "a", ""},
                      {TarEntry::kSymlink, "a/up", ".."},
                      {TarEntry::kSymlink, "a/up2", "up/.."},
                      {TarEntry::kFile, "a/up2/outside/pwned", "x"}});
    REQUIRE_FALSE(r.ok());
  }
  SECTION("hardlink to a file outside") {
    std::ofstream(s.outside + "/secret") << "secret";
    auto r = s.apply({{TarEntry::kHardlink, "stolen", "../outside/secret"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("\"stolen\"") != std::string::npos);
    CHECK_FALSE(fs::exists(s.root + "/stolen"));
    fs::remove(s.outside + "/secret");
  }
  SECTION("hardlink through a symlink that points outside") {
    std::ofstream(s.outside + "/secret") << "secret";
    auto r = s.apply(
        {{TarEntry::kSymlink, "out", "../outside"}, {TarEntry::kHardlink, "stolen", "out/secret"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("\"stolen\"") != std::string::npos);
    CHECK_FALSE(fs::exists(s.root + "/stolen"));
    fs::remove(s.outside + "/secret");
  }
  SECTION("a device node") {
    auto r = s.apply({{TarEntry::kCharDevice, "dev/mem", ""}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("\"dev/mem\" is a device node") != std::string::npos);
    CHECK_FALSE(fs::exists(s.root + "/dev/mem"));
  }
  SECTION("hardlink with an absolute target") {
    auto r = s.apply({{TarEntry::kHardlink, "stolen", "/etc/passwd"}});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("absolute path") != std::string::npos);
  }
  CHECK(s.outside_empty());
}

TEST_CASE("a corrupt layer is refused") {
  Sandbox s;
  std::string layer = s.dir.path() + "/garbage.tar";
  std::ofstream(layer) << std::string(1000, 'z');
  auto r = unpack_layer(layer, s.root);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("garbage.tar") != std::string::npos);
}

TEST_CASE("a layer larger than the limit is refused") {
  Sandbox s;
  std::string layer = s.dir.path() + "/big.tar";
  test::write_tar(layer, {{TarEntry::kFile, "big", std::string(10000, 'x')}}, true);
  UnpackLimits limits;
  limits.max_layer_bytes = 4096;
  auto r = unpack_layer(layer, s.root, limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("more than 4096 bytes") != std::string::npos);
}

TEST_CASE("a truncated or corrupt compressed layer is refused, never thrown") {
  // Found by tests/fuzz: libarchive can fail without a message; the unpacker must still answer.
  Sandbox s;
  std::string good = s.dir.path() + "/good.tar.gz";
  test::write_tar(
      good, {{TarEntry::kFile, "a/b", std::string(5000, 'x')}, {TarEntry::kFile, "c", "y"}}, true);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (std::size_t cut : {std::size_t{10}, bytes.size() / 2, bytes.size() - 4}) {
    std::string bad = s.dir.path() + "/bad.tar.gz";
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, cut);
    Result<void> r = Error::internal("not run");
    REQUIRE_NOTHROW(r = unpack_layer(bad, s.root));
    CHECK_FALSE(r.ok());
  }
  std::string flipped = bytes;
  for (std::size_t i = 20; i < flipped.size(); i += 7)
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
  std::string bad = s.dir.path() + "/flipped.tar.gz";
  std::ofstream(bad, std::ios::binary) << flipped;
  REQUIRE_NOTHROW((void)unpack_layer(bad, s.root));
  CHECK(s.outside_empty());
}
