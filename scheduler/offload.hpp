#pragma once
// Runs blocking work (SQLite, runc, unpacking) on another executor and resumes the calling
// coroutine on its own executor with the result. Asio-heavy: include only in .cpp files.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

namespace elafros {

// Calls std::invoke(fn, args...) on `ex`, e.g. offload(ex, &Store::get_service, &store, ns, name).
// The arguments are copied. Pass no lambda with captures as a temporary in a co_await
// expression: GCC 12 destroys such temporaries twice; a member pointer and values are safe.
template <class Executor, class Fn, class... Args>
auto offload(Executor ex, Fn fn, Args&&... args) {
  auto call = [fn,
               tuple = std::make_tuple(std::decay_t<Args>(std::forward<Args>(args))...)]() mutable {
    return std::apply([&fn](auto&... a) { return std::invoke(fn, a...); }, tuple);
  };
  using R = decltype(call());
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(R)>(
      [ex](auto handler, decltype(call) f) {
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
        boost::asio::post(
            ex, [handler = std::move(handler), f = std::move(f), work = std::move(work)]() mutable {
              auto result = std::make_shared<R>(f());
              auto home = work.get_executor();
              work.reset();
              boost::asio::post(home, [handler = std::move(handler), result]() mutable {
                std::move(handler)(std::move(*result));
              });
            });
      },
      boost::asio::use_awaitable, std::move(call));
}

}  // namespace elafros
