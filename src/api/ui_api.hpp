#pragma once
// The dashboard (docs/architecture.md, "Dashboard"): its files at /ui/, built into elafrosd.
// Signing in and out (/ui/session) is the Auth's; everything the page shows comes from the API
// itself, with the session's cookie.

#include "api/api_request.hpp"
#include "api/router.hpp"

namespace elafros::api {

// What anyone may fetch without credentials: GET or HEAD of /ui/ and its files, and the
// sign-in (POST /ui/session).
bool ui_public_path(const ApiRequest& request);

// GET /ui (a redirect to /ui/), /ui/ (the page) and /ui/FILE.
void add_ui_routes(Router& router);

}  // namespace elafros::api
