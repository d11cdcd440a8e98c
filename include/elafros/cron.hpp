#pragma once
// Cron schedules as PingSource writes them (docs/architecture.md, "Sources"): five fields
// (minute hour day-of-month month day-of-week), or six with seconds first, each a `*`, a value,
// a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; month and weekday names
// (JAN, MON); `?` for any day; and the macros @yearly (@annually), @monthly, @weekly, @daily
// (@midnight) and @hourly. As in Vixie cron, when both day fields are restricted a day matches
// either. Ticks are computed in an IANA time zone: a local time that a DST change skips fires at
// the change, and one it repeats fires once, at its first occurrence.

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "elafros/result.hpp"

namespace elafros {

struct CronSchedule {
  std::bitset<60> seconds, minutes;
  std::bitset<24> hours;
  std::bitset<32> days;     // 1..31
  std::bitset<13> months;   // 1..12
  std::bitset<7> weekdays;  // 0 = Sunday
  bool any_day = true;      // the day-of-month field is * or ?
  bool any_weekday = true;  // the day-of-week field is * or ?
};

// kInvalidArgument naming the field and the position of the problem.
Result<CronSchedule> parse_cron(std::string_view text);

// kInvalidArgument when the IANA zone ("Europe/Paris", "UTC") is not in the time zone database.
Result<void> check_time_zone(const std::string& zone);

// The first tick strictly after `after`, in `zone` (checked); nothing within five years.
std::optional<std::chrono::system_clock::time_point> next_tick(
    const CronSchedule& schedule, const std::string& zone,
    std::chrono::system_clock::time_point after);

}  // namespace elafros
