#pragma once
// The dashboard's files (ui/), built into elafrosd (cmake/embed_ui.cmake), served at /ui/.

#include <cstddef>
#include <string_view>
#include <vector>

namespace elafros::api {

struct UiAsset {
  const char* path;          // "/ui/app.js"
  const char* content_type;  // text/html, text/javascript, text/css (all UTF-8)
  const unsigned char* data;
  std::size_t size;
  const char* etag;  // quoted, from the file's SHA-256
};

const std::vector<UiAsset>& ui_assets();

}  // namespace elafros::api
