// The reproducible app layer (sorted, parents first, fixed mtime and owner, gzip without a time)
// and the checks of uploaded source archives.
#include "layer_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"
#include "source_archive_store.hpp"

using namespace elafros;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

struct Read {
  std::string path;
  std::int64_t mtime;
  std::int64_t uid, gid;
  bool has_uname;
};

std::vector<Read> entries_of(const std::string& layer) {
  std::vector<Read> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, layer.c_str(), 1 << 16) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    const char* uname = archive_entry_uname(e);
    out.push_back({archive_entry_pathname(e), archive_entry_mtime(e), archive_entry_uid(e),
                   archive_entry_gid(e), uname && *uname});
    archive_read_data_skip(a);
  }
  archive_read_free(a);
  return out;
}

}  // namespace

TEST_CASE("the same tree gives the same layer bytes, whatever its times") {
  test::TempDir dir;
  std::string src = dir.path() + "/src";
  write(src + "/b.txt", "b");
  write(src + "/a/z.txt", "z");
  write(src + "/a-b/y.txt", "y");
  fs::create_symlink("b.txt", src + "/link");
  fs::create_hard_link(src + "/b.txt", src + "/hard");
  LayerWriteOptions o;
  auto first = write_layer(src, dir.path() + "/1.tgz", o);
  REQUIRE(first);
  // Touch everything: new mtimes must not change the layer.
  for (const auto& e : fs::recursive_directory_iterator(src))
    if (!e.is_symlink()) ::utime(e.path().c_str(), nullptr);
  ::sleep(1);
  write(src + "/b.txt", "b");
  auto second = write_layer(src, dir.path() + "/2.tgz", o);
  REQUIRE(second);
  CHECK(first->digest == second->digest);
  CHECK(first->diff_id == second->diff_id);
  CHECK(first->digest != first->diff_id);

  auto entries = entries_of(dir.path() + "/1.tgz");
  std::vector<std::string> paths;
  for (const auto& e : entries) {
    paths.push_back(e.path);
    CHECK(e.mtime == 315532801);
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK_FALSE(e.has_uname);
  }
  // Parents first, in the byte order of their paths, under the image path.
  CHECK(paths == std::vector<std::string>{"workspace/", "workspace/a/", "workspace/a-b/",
                                          "workspace/a-b/y.txt", "workspace/a/z.txt",
                                          "workspace/b.txt", "workspace/hard", "workspace/link"});
  // gzip header: no mtime (bytes 4-7) and no name flag.
  std::ifstream in(dir.path() + "/1.tgz", std::ios::binary);
  unsigned char header[10];
  in.read(reinterpret_cast<char*>(header), 10);
  CHECK(header[0] == 0x1f);
  CHECK(header[1] == 0x8b);
  CHECK((header[3] & 0x08) == 0);
  CHECK((header[4] | header[5] | header[6] | header[7]) == 0);
}

TEST_CASE("a changed file gives another layer digest") {
  test::TempDir dir;
  write(dir.path() + "/src/f", "one");
  auto a = write_layer(dir.path() + "/src", dir.path() + "/a.tgz", {});
  write(dir.path() + "/src/f", "two");
  auto b = write_layer(dir.path() + "/src", dir.path() + "/b.tgz", {});
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->digest != b->digest);
}

TEST_CASE("absolute and escaping symlinks are refused, naming the file") {
  test::TempDir dir;
  std::string src = dir.path() + "/src";
  fs::create_directories(src + "/sub");
  fs::create_symlink("/etc/passwd", src + "/sub/abs");
  auto r = write_layer(src, dir.path() + "/x.tgz", {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message,
             Catch::Contains("/workspace/sub/abs is a symlink to \"/etc/passwd\""));
  fs::remove(src + "/sub/abs");
  fs::create_symlink("../../outside", src + "/sub/esc");
  r = write_layer(src, dir.path() + "/x.tgz", {});
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("leaves /workspace"));
  fs::remove(src + "/sub/esc");
  fs::create_symlink("../ok", src + "/sub/fine");
  CHECK(write_layer(src, dir.path() + "/x.tgz", {}));
}

TEST_CASE("source archives are checked before they are stored") {
  test::TempDir dir;
  SourceArchiveStore store(dir.path() + "/store");
  auto refused = [&](std::vector<test::TarEntry> entries, const char* why) {
    std::string tar = dir.path() + "/in.tar";
    test::write_tar(tar, entries);
    auto r = store.add(tar);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK_THAT(r.error().message, Catch::Contains(why));
  };
  refused({{test::TarEntry::kFile, "../escape", "x"}}, "\"../escape\" contains \"..\"");
  refused({{test::TarEntry::kFile, "/etc/evil", "x"}}, "has an absolute path");
  refused({{test::TarEntry::kSymlink, "a/link", "../../etc"}}, "leaves the tree");
  refused({{test::TarEntry::kSymlink, "link", "/etc/passwd"}}, "absolute or leaves the tree");
  refused({{test::TarEntry::kCharDevice, "dev", ""}}, "is a device, FIFO or socket");
  refused({{test::TarEntry::kFile, "d/.wh.gone", ""}}, "layer whiteout");
  CHECK(fs::is_empty(dir.path() + "/store/sha256"));
  std::string tar = dir.path() + "/ok.tar";
  test::write_tar(tar, {{test::TarEntry::kDir, "app", "", 0755},
                        {test::TarEntry::kFile, "app/main.py", "print(1)"},
                        {test::TarEntry::kSymlink, "app/link", "main.py"}});
  auto digest = store.add(tar);
  REQUIRE(digest);
  CHECK(store.has(*digest));
  std::string out = dir.path() + "/out";
  fs::create_directories(out);
  REQUIRE(store.unpack(*digest, out));
  CHECK(fs::is_regular_file(out + "/app/main.py"));
}
