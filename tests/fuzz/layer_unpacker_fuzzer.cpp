// libFuzzer target for the layer unpacker: any byte string, read as a (possibly compressed) tar
// layer, must either unpack inside the root or be refused, and never touch anything outside.
// Build and run: tests/fuzz/run.sh [SECONDS]
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "layer_unpacker.hpp"

namespace fs = std::filesystem;

namespace {

struct Sandbox {
  std::string base;
  Sandbox() {
    char tmpl[] = "/tmp/elafros-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    base = tmpl;
    fs::create_directories(base + "/outside");
    std::ofstream(base + "/outside/sentinel") << "untouched";
  }
  ~Sandbox() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
};

Sandbox& sandbox() {
  static Sandbox s;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Sandbox& s = sandbox();
  std::string layer = s.base + "/layer";
  std::string root = s.base + "/root";
  {
    std::ofstream out(layer, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  elafros::UnpackLimits limits;
  limits.max_layer_bytes = 1 << 20;
  (void)elafros::unpack_layer(layer, root, limits);
  // The invariant: whatever the input, nothing outside the root changed.
  std::ifstream sentinel(s.base + "/outside/sentinel");
  std::string text((std::istreambuf_iterator<char>(sentinel)), std::istreambuf_iterator<char>());
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(s.base)) entries += e.path().filename() != "" ? 1 : 0;
  std::size_t outside = 0;
  for (const auto& e : fs::directory_iterator(s.base + "/outside"))
    outside += e.path().filename() != "" ? 1 : 0;
  if (text != "untouched" || entries != 3 || outside != 1) std::abort();  // layer, root, outside
  return 0;
}
