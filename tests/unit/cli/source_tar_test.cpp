// What 'build create --source' uploads: gitignore(5) patterns, .elafrosignore, and a tar that
// is the same for the same tree.
#include "cli/source_tar.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros::cli;
namespace fs = std::filesystem;

namespace {

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::vector<std::string> names(const std::string& data) {
  std::vector<std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_memory(a, data.data(), data.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) out.emplace_back(archive_entry_pathname(e));
  archive_read_free(a);
  return out;
}

}  // namespace

TEST_CASE("gitignore globs") {
  CHECK(glob_match("*.pyc", "a.pyc"));
  CHECK_FALSE(glob_match("*.pyc", "dir/a.pyc"));  // '*' stops at '/'
  CHECK(glob_match("**/build", "a/b/build"));
  CHECK(glob_match("**/build", "build"));
  CHECK(glob_match("logs/**", "logs/a/b.txt"));
  CHECK(glob_match("a/**/z", "a/z"));
  CHECK(glob_match("a/**/z", "a/b/c/z"));
  CHECK(glob_match("file?.txt", "file1.txt"));
  CHECK_FALSE(glob_match("file?.txt", "file10.txt"));
  CHECK(glob_match("[abc].md", "b.md"));
  CHECK_FALSE(glob_match("[!abc].md", "b.md"));
}

TEST_CASE("ignore rules: unanchored, anchored, directories only, negation, nested files") {
  IgnoreRules r;
  r.add_pattern("*.log", "");
  r.add_pattern("!keep.log", "");
  r.add_pattern("/build", "");
  r.add_pattern("cache/", "");
  r.add_pattern("# a comment", "");
  r.add_pattern("secret.txt", "sub");
  CHECK(r.ignored("x.log", false));
  CHECK(r.ignored("deep/x.log", false));
  CHECK_FALSE(r.ignored("keep.log", false));
  CHECK(r.ignored("build", true));
  CHECK_FALSE(r.ignored("src/build", true));  // anchored to the root
  CHECK(r.ignored("a/cache", true));
  CHECK_FALSE(r.ignored("a/cache", false));  // a file named cache stays
  CHECK(r.ignored("sub/secret.txt", false));
  CHECK(r.ignored("sub/x/secret.txt", false));
  CHECK_FALSE(r.ignored("secret.txt", false));  // sub's .gitignore applies under sub only
}

TEST_CASE("pack_source honours .gitignore and .elafrosignore, leaves .git out, and is stable") {
  elafros::test::TempDir dir;
  std::string src = dir.path() + "/app";
  write(src + "/app.py", "print(1)");
  write(src + "/.gitignore", "node_modules/\n*.pyc\n");
  write(src + "/.elafrosignore", "docs/\n");
  write(src + "/node_modules/x/index.js", "x");
  write(src + "/lib/a.pyc", "bytecode");
  write(src + "/lib/a.py", "a");
  write(src + "/lib/.gitignore", "local.cfg\n");
  write(src + "/lib/local.cfg", "secret");
  write(src + "/docs/readme.md", "docs");
  write(src + "/.git/HEAD", "ref");
  auto one = pack_source(src);
  CHECK(names(one.data) == std::vector<std::string>{".elafrosignore", ".gitignore", "app.py",
                                                    "lib/", "lib/.gitignore", "lib/a.py"});
  CHECK(one.files == 5);
  auto two = pack_source(src);
  CHECK(one.data == two.data);
}

TEST_CASE("pack_source refuses a symlink that leaves the directory, naming it") {
  elafros::test::TempDir dir;
  std::string src = dir.path() + "/app";
  write(src + "/a", "a");
  fs::create_symlink("../../etc/passwd", src + "/bad");
  CHECK_THROWS_WITH(pack_source(src), Catch::Contains("bad is a symlink to \"../../etc/passwd\""));
}
