#include "elafros/cron.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <vector>

namespace elafros {
namespace {

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // indexed from min; nullptr: numbers only
  int name_count;
};

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kWeekdayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

const Field kSecond{"second", 0, 59, nullptr, 0};
const Field kMinute{"minute", 0, 59, nullptr, 0};
const Field kHour{"hour", 0, 23, nullptr, 0};
const Field kDay{"day of month", 1, 31, nullptr, 0};
const Field kMonth{"month", 1, 12, kMonthNames, 12};
const Field kWeekday{"day of week", 0, 7, kWeekdayNames, 7};  // 7 is Sunday too

struct Token {
  std::string_view text;
  std::size_t position;  // 1-based, in the whole schedule
};

Error bad(const Token& t, const Field& f, const std::string& why) {
  return Error::invalid(
      fmt::format("\"{}\" at position {} ({} field): {}", t.text, t.position, f.name, why));
}

std::optional<int> value_of(std::string_view s, const Field& f) {
  if (s.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000) return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  for (int i = 0; i < f.name_count; ++i) {
    std::string_view n = f.names[i];
    if (s.size() == n.size() && std::equal(s.begin(), s.end(), n.begin(), [](char a, char b) {
          return std::toupper(static_cast<unsigned char>(a)) == b;
        }))
      return f.min + i;
  }
  return std::nullopt;
}

// One field into its bits (indexed by value); `star` when it is * or ? without a step.
template <std::size_t N>
Result<void> parse_field(const Token& t, const Field& f, std::bitset<N>& bits, bool* star) {
  if (star) *star = false;
  std::size_t start = 0;
  while (start <= t.text.size()) {
    std::size_t comma = t.text.find(',', start);
    if (comma == std::string_view::npos) comma = t.text.size();
    Token item{t.text.substr(start, comma - start), t.position + start};
    if (item.text.empty()) return bad(t, f, "an empty list item");
    std::string_view range = item.text;
    int step = 1;
    if (auto slash = item.text.find('/'); slash != std::string_view::npos) {
      range = item.text.substr(0, slash);
      auto s = value_of(item.text.substr(slash + 1), kSecond);
      if (!s || *s == 0) return bad(item, f, "a step (after /) must be a whole number above 0");
      step = *s;
    }
    int lo = f.min, hi = f.max == 7 ? 6 : f.max;
    if (range == "*" || range == "?") {
      if (range == "?" && f.name != kDay.name && f.name != kWeekday.name)
        return bad(item, f, "? is only for the day-of-month and day-of-week fields");
      if (star && step == 1 && item.text.size() == t.text.size()) *star = true;
    } else {
      auto dash = range.find('-');
      auto a = value_of(range.substr(0, dash), f);
      if (!a) return bad(item, f, fmt::format("not a value from {} to {}", f.min, f.max));
      lo = hi = *a;
      if (dash != std::string_view::npos) {
        auto b = value_of(range.substr(dash + 1), f);
        if (!b)
          return bad(item, f, fmt::format("not a range of values from {} to {}", f.min, f.max));
        hi = *b;
      } else if (step > 1) {
        hi = f.max == 7 ? 6 : f.max;  // "a/n": from a to the end
      }
      if (lo < f.min || hi > f.max || lo > f.max)
        return bad(item, f, fmt::format("out of range ({} to {})", f.min, f.max));
      if (lo > hi) return bad(item, f, "a range must go from low to high");
    }
    for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(f.max == 7 ? v % 7 : v));
    start = comma + 1;
  }
  return Result<void>{};
}

}  // namespace

Result<CronSchedule> parse_cron(std::string_view text) {
  static const std::array<std::pair<std::string_view, std::string_view>, 7> kMacros{{
      {"@yearly", "0 0 0 1 1 *"},
      {"@annually", "0 0 0 1 1 *"},
      {"@monthly", "0 0 0 1 * *"},
      {"@weekly", "0 0 0 * * 0"},
      {"@daily", "0 0 0 * * *"},
      {"@midnight", "0 0 0 * * *"},
      {"@hourly", "0 0 * * * *"},
  }};
  std::string_view trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front())))
    trimmed.remove_prefix(1);
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.remove_suffix(1);
  if (trimmed.empty())
    return Error::invalid("is empty; give a cron schedule such as \"*/2 * * * *\" or @hourly");
  if (trimmed.front() == '@') {
    for (const auto& [name, expansion] : kMacros)
      if (trimmed == name) return parse_cron(expansion);
    return Error::invalid(fmt::format(
        "\"{}\" is not a known macro (use @yearly, @annually, @monthly, @weekly, @daily, "
        "@midnight or @hourly; @every is not supported)",
        trimmed));
  }
  if (trimmed.rfind("CRON_TZ=", 0) == 0 || trimmed.rfind("TZ=", 0) == 0)
    return Error::invalid("a time zone goes in spec.timezone, not in the schedule");
  std::vector<Token> tokens;
  for (std::size_t i = 0; i < text.size();) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    tokens.push_back({text.substr(i, j - i), i + 1});
    i = j;
  }
  if (tokens.size() != 5 && tokens.size() != 6)
    return Error::invalid(fmt::format(
        "\"{}\" has {} fields; a schedule has 5 (minute hour day-of-month month day-of-week) "
        "or 6 (seconds first)",
        trimmed, tokens.size()));
  CronSchedule s;
  std::size_t i = 0;
  if (tokens.size() == 6) {
    if (auto r = parse_field(tokens[i++], kSecond, s.seconds, nullptr); !r) return r.error();
  } else {
    s.seconds.set(0);
  }
  if (auto r = parse_field(tokens[i++], kMinute, s.minutes, nullptr); !r) return r.error();
  if (auto r = parse_field(tokens[i++], kHour, s.hours, nullptr); !r) return r.error();
  if (auto r = parse_field(tokens[i++], kDay, s.days, &s.any_day); !r) return r.error();
  if (auto r = parse_field(tokens[i++], kMonth, s.months, nullptr); !r) return r.error();
  if (auto r = parse_field(tokens[i++], kWeekday, s.weekdays, &s.any_weekday); !r) return r.error();
  return s;
}

Result<void> check_time_zone(const std::string& zone) {
  try {
    (void)date::locate_zone(zone);
  } catch (const std::exception&) {
    return Error::invalid(fmt::format(
        "\"{}\" is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York; the names "
        "are those under /usr/share/zoneinfo)",
        zone));
  }
  return Result<void>{};
}

std::optional<std::chrono::system_clock::time_point> next_tick(
    const CronSchedule& s, const std::string& zone, std::chrono::system_clock::time_point after) {
  using namespace std::chrono;
  const date::time_zone* tz = nullptr;
  try {
    tz = date::locate_zone(zone);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const date::sys_seconds floor_after = floor<seconds>(after);
  date::local_seconds t = tz->to_local(floor_after) + seconds(1);
  const date::local_seconds limit = t + date::days(5 * 366);
  auto day_matches = [&s](date::local_days d) {
    date::year_month_day ymd(d);
    bool day = s.days.test(static_cast<unsigned>(ymd.day()));
    bool weekday = s.weekdays.test(date::weekday(d).c_encoding());
    if (s.any_day && s.any_weekday) return true;
    if (s.any_day) return weekday;
    if (s.any_weekday) return day;
    return day || weekday;
  };
  while (t < limit) {
    date::local_days d = floor<date::days>(t);
    date::year_month_day ymd(d);
    if (!s.months.test(static_cast<unsigned>(ymd.month()))) {
      auto next = date::year_month{ymd.year(), ymd.month()} + date::months(1);
      t = date::local_days{next / 1};
      continue;
    }
    if (!day_matches(d)) {
      t = d + date::days(1);
      continue;
    }
    auto tod = date::hh_mm_ss<seconds>(t - d);
    auto h = static_cast<std::size_t>(tod.hours().count());
    auto m = static_cast<std::size_t>(tod.minutes().count());
    auto sec = static_cast<std::size_t>(tod.seconds().count());
    if (!s.hours.test(h)) {
      t = d + hours(h + 1);
      continue;
    }
    if (!s.minutes.test(m)) {
      t = d + hours(h) + minutes(m + 1);
      continue;
    }
    if (!s.seconds.test(sec)) {
      t += seconds(1);
      continue;
    }
    // A skipped local time maps to the change; a repeated one to its first occurrence, which
    // is not after `after` on the second pass.
    date::sys_seconds at = tz->to_sys(t, date::choose::earliest);
    if (at <= floor_after) {
      t += seconds(1);
      continue;
    }
    return time_point_cast<system_clock::duration>(at);
  }
  return std::nullopt;
}

}  // namespace elafros
