#pragma once
// What every controller's start() does (docs/architecture.md, "Controllers"): run its Impl's
// load(from) coroutine on the control io_context, keeping the Impl alive, and hand the result to
// `done` there. Asio-heavy: include only in .cpp files.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "elafros/result.hpp"

namespace elafros {

template <class Impl>
void spawn_load(boost::asio::io_context& control, std::shared_ptr<Impl> impl, std::int64_t from,
                std::function<void(Result<void>)> done) {
  boost::asio::co_spawn(
      control,
      [impl = std::move(impl), from, done = std::move(done)]() -> boost::asio::awaitable<void> {
        auto r = co_await impl->load(from);
        done(std::move(r));
      },
      boost::asio::detached);
}

}  // namespace elafros
