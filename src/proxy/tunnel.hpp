#pragma once
// The proxy's half of an upgraded connection (WebSocket, or any protocol a 101 switches to):
// after the instance's 101 Switching Protocols, bytes are relayed both ways unchanged until
// both sides have closed, a side fails, the deadline passes, or nothing moves in either
// direction for the idle bound. The client side may be TLS. Included only by the proxy.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>

namespace elafros {

class ClientStream;

struct TunnelResult {
  std::uint64_t to_client = 0;    // bytes from the instance to the client
  std::uint64_t to_instance = 0;  // and the other way
};

// `from_client` and `from_instance` hold bytes each side sent after its head (a client's first
// frames, an instance's greeting): they are delivered first. `idle` zero is no idle bound.
// Ends with both sockets closed or shut down; returns only when nothing refers to its
// arguments any more.
boost::asio::awaitable<TunnelResult> relay_upgraded(ClientStream& client,
                                                    boost::beast::flat_buffer& from_client,
                                                    boost::asio::ip::tcp::socket& instance,
                                                    boost::beast::flat_buffer& from_instance,
                                                    std::chrono::steady_clock::time_point until,
                                                    std::chrono::steady_clock::duration idle);

}  // namespace elafros
