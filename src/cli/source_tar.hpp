#pragma once
// The tar of a source directory that 'build create --source' and 'service create --source'
// upload: every file that .gitignore (at any level) and a top-level .elafrosignore leave in,
// never .git, in sorted order with a fixed mtime and owner 0, so that the same tree gives the
// same archive (and digest). Symlinks that are absolute or leave the directory, devices,
// FIFOs and sockets are refused, naming the file.

#include <cstdint>
#include <string>
#include <vector>

namespace elafros::cli {

// gitignore(5) patterns of one file, relative to the directory that holds it.
class IgnoreRules {
 public:
  // `base` is the directory of the file, relative to the source root ("" for the root).
  void add_file(const std::string& path, const std::string& base);
  void add_pattern(const std::string& line, const std::string& base);
  // Whether the path (relative to the root, '/'-separated) is ignored: the last matching
  // pattern decides. A directory's own decision is made before its entries are looked at.
  bool ignored(const std::string& path, bool is_dir) const;

 private:
  struct Rule {
    std::string base;
    std::string pattern;
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;
  };
  std::vector<Rule> rules_;
};

// Whether a gitignore glob matches a path ('*' and '?' stop at '/', "**" crosses it).
bool glob_match(std::string_view pattern, std::string_view path);

struct SourceTar {
  std::string data;  // the archive
  std::size_t files = 0;
  std::uint64_t bytes = 0;           // of file content
  std::vector<std::string> ignored;  // top-most ignored paths, for --debug style reports
};

// Throws std::runtime_error naming the problem.
SourceTar pack_source(const std::string& dir);

}  // namespace elafros::cli
