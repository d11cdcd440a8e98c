#pragma once
// Time comes from an injected Clock so that tests can run in virtual time.

#include <chrono>
#include <memory>

namespace elafros {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual std::chrono::system_clock::time_point wall() const = 0;
};

class RealClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wall() const override {
    return std::chrono::system_clock::now();
  }
};

using ClockPtr = std::shared_ptr<const Clock>;

}  // namespace elafros
