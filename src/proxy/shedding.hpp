#pragma once
// Load shedding when descriptors run short (docs/architecture.md, "Faults"). Included by
// the proxy only: it brings Beast.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <cstdint>
#include <string>

namespace elafros {

// The descriptor number from which an accepted client connection is shed: a proxied request
// holds two (client and upstream), so half of what RLIMIT_NOFILE's soft limit leaves after the
// headroom (0: an eighth of the limit, at least 64). INT_MAX when there is no limit.
int shed_threshold(int headroom);

// Reads the request header (so that the client sees an answer, not a reset), answers 503 with
// Retry-After and `why` as the body, and closes.
boost::asio::awaitable<void> shed_connection(boost::beast::tcp_stream client,
                                             std::uint32_t header_limit, std::string why);

}  // namespace elafros
