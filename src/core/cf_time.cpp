#include "core/cf_time.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <regex>

#include "core/error.hpp"

namespace zp {

namespace {

constexpr int64_t kUsPerDay = 86400LL * 1000000LL;
constexpr int kCumNoLeap[13] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
constexpr int kCumLeap[13] = {0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366};

bool gregorian_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
bool julian_leap(int64_t y) {
  return y % 4 == 0;
}

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Julian Day Numbers of proleptic Gregorian and Julian calendar dates.
int64_t jdn_gregorian(int64_t y, int m, int d) {
  const int64_t a = (14 - m) / 12, yy = y + 4800 - a, mm = m + 12 * a - 3;
  return d + (153 * mm + 2) / 5 + 365 * yy + floor_div(yy, 4) - floor_div(yy, 100) +
         floor_div(yy, 400) - 32045;
}
int64_t jdn_julian(int64_t y, int m, int d) {
  const int64_t a = (14 - m) / 12, yy = y + 4800 - a, mm = m + 12 * a - 3;
  return d + (153 * mm + 2) / 5 + 365 * yy + floor_div(yy, 4) - 32083;
}
void from_jdn_gregorian(int64_t j, int64_t* y, int* m, int* d) {
  const int64_t a = j + 32044, b = floor_div(4 * a + 3, 146097), c = a - floor_div(146097 * b, 4);
  const int64_t dd = floor_div(4 * c + 3, 1461), e = c - floor_div(1461 * dd, 4),
                mm = floor_div(5 * e + 2, 153);
  *d = static_cast<int>(e - floor_div(153 * mm + 2, 5) + 1);
  *m = static_cast<int>(mm + 3 - 12 * floor_div(mm, 10));
  *y = 100 * b + dd - 4800 + floor_div(mm, 10);
}
void from_jdn_julian(int64_t j, int64_t* y, int* m, int* d) {
  const int64_t c = j + 32082, dd = floor_div(4 * c + 3, 1461), e = c - floor_div(1461 * dd, 4);
  const int64_t mm = floor_div(5 * e + 2, 153);
  *d = static_cast<int>(e - floor_div(153 * mm + 2, 5) + 1);
  *m = static_cast<int>(mm + 3 - 12 * floor_div(mm, 10));
  *y = dd - 4800 + floor_div(mm, 10);
}
constexpr int64_t kGregorianStartJdn = 2299161;  // 1582-10-15

int days_in_month(int64_t y, int m, Calendar cal) {
  switch (cal) {
    case Calendar::Day360:
      return 30;
    case Calendar::NoLeap:
      return kCumNoLeap[m] - kCumNoLeap[m - 1];
    case Calendar::AllLeap:
      return kCumLeap[m] - kCumLeap[m - 1];
    case Calendar::Julian:
      return (julian_leap(y) ? kCumLeap : kCumNoLeap)[m] -
             (julian_leap(y) ? kCumLeap : kCumNoLeap)[m - 1];
    case Calendar::Standard:
      if (y < 1582 || (y == 1582 && m < 10))
        return (julian_leap(y) ? kCumLeap : kCumNoLeap)[m] -
               (julian_leap(y) ? kCumLeap : kCumNoLeap)[m - 1];
      [[fallthrough]];
    default:
      return (gregorian_leap(y) ? kCumLeap : kCumNoLeap)[m] -
             (gregorian_leap(y) ? kCumLeap : kCumNoLeap)[m - 1];
  }
}

int64_t day_number(int64_t y, int m, int d, Calendar cal) {
  switch (cal) {
    case Calendar::Day360:
      return y * 360 + (m - 1) * 30 + d - 1;
    case Calendar::NoLeap:
      return y * 365 + kCumNoLeap[m - 1] + d - 1;
    case Calendar::AllLeap:
      return y * 366 + kCumLeap[m - 1] + d - 1;
    case Calendar::Julian:
      return jdn_julian(y, m, d);
    case Calendar::ProlepticGregorian:
      return jdn_gregorian(y, m, d);
    case Calendar::Standard: {
      const int64_t g = jdn_gregorian(y, m, d);
      return g >= kGregorianStartJdn ? g : jdn_julian(y, m, d);
    }
  }
  return 0;
}

void from_day_number(int64_t n, Calendar cal, int64_t* y, int* m, int* d) {
  auto from_cum = [&](int64_t len, const int* cum) {
    *y = floor_div(n, len);
    const int64_t doy = n - *y * len;
    int k = 1;
    while (k < 12 && cum[k] <= doy) ++k;
    *m = k;
    *d = static_cast<int>(doy - cum[k - 1] + 1);
  };
  switch (cal) {
    case Calendar::Day360:
      *y = floor_div(n, 360);
      *m = static_cast<int>((n - *y * 360) / 30 + 1);
      *d = static_cast<int>((n - *y * 360) % 30 + 1);
      return;
    case Calendar::NoLeap:
      return from_cum(365, kCumNoLeap);
    case Calendar::AllLeap:
      return from_cum(366, kCumLeap);
    case Calendar::Julian:
      return from_jdn_julian(n, y, m, d);
    case Calendar::ProlepticGregorian:
      return from_jdn_gregorian(n, y, m, d);
    case Calendar::Standard:
      return n >= kGregorianStartJdn ? from_jdn_gregorian(n, y, m, d) : from_jdn_julian(n, y, m, d);
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Calendar parse_calendar(const std::string& name_in, const std::string& where) {
  const std::string name = lower(name_in);
  if (name.empty() || name == "standard" || name == "gregorian") return Calendar::Standard;
  if (name == "proleptic_gregorian") return Calendar::ProlepticGregorian;
  if (name == "julian") return Calendar::Julian;
  if (name == "noleap" || name == "365_day") return Calendar::NoLeap;
  if (name == "all_leap" || name == "366_day") return Calendar::AllLeap;
  if (name == "360_day") return Calendar::Day360;
  throw Error::config(where, "unknown calendar '" + name_in + "'");
}

bool is_time_units(const std::string& units) {
  return lower(units).find(" since ") != std::string::npos;
}

DateTime parse_datetime(const std::string& text_in, Resolution* resolution,
                        const std::string& where) {
  // Y[-M[-D[( |T)H[:M[:S[.f]]]]]] with an optional trailing 'Z' or +00:00.
  static const std::regex re(
      R"(^\s*(-?\d{1,4})(?:-(\d{1,2})(?:-(\d{1,2})(?:[ T](\d{1,2})(?::(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?)?)?)?)?\s*(?:Z|[+-]00:?00|UTC)?\s*$)");
  std::smatch m;
  if (!std::regex_match(text_in, m, re))
    throw Error::config(
        where, "'" + text_in + "' is not a date (use e.g. 2000-01-02 or 2000-01-02 06:00)");
  DateTime t;
  t.year = std::stoll(m[1]);
  Resolution res = Resolution::Year;
  if (m[2].matched) t.month = std::stoi(m[2]), res = Resolution::Month;
  if (m[3].matched) t.day = std::stoi(m[3]), res = Resolution::Day;
  if (m[4].matched) t.hour = std::stoi(m[4]), res = Resolution::Hour;
  if (m[5].matched) t.minute = std::stoi(m[5]), res = Resolution::Minute;
  if (m[6].matched) {
    res = Resolution::Second;
    t.microsecond = std::stoll(m[6]) * 1000000;
    if (m[7].matched) {
      std::string frac = m[7].str().substr(0, 6);
      while (frac.size() < 6) frac += '0';
      t.microsecond += std::stoll(frac);
    }
  }
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.microsecond >= 60000000)
    throw Error::config(where, "'" + text_in + "' is not a valid date");
  if (resolution) *resolution = res;
  return t;
}

int64_t to_us(const DateTime& t, Calendar cal, const std::string& where) {
  if (cal == Calendar::Standard && t.year == 1582 && t.month == 10 && t.day > 4 && t.day < 15)
    throw Error::config(where, fmt::format("1582-10-{:02d} does not exist in the standard calendar "
                                           "(it goes from 1582-10-04 to 1582-10-15)",
                                           t.day));
  if (t.day > days_in_month(t.year, t.month, cal))
    throw Error::config(where, fmt::format("{:04d}-{:02d}-{:02d} does not exist in this calendar",
                                           t.year, t.month, t.day));
  return day_number(t.year, t.month, t.day, cal) * kUsPerDay +
         (t.hour * 3600LL + t.minute * 60LL) * 1000000LL + t.microsecond;
}

DateTime from_us(int64_t us, Calendar cal) {
  const int64_t days = floor_div(us, kUsPerDay);
  int64_t rest = us - days * kUsPerDay;
  DateTime t;
  from_day_number(days, cal, &t.year, &t.month, &t.day);
  t.hour = static_cast<int>(rest / 3600000000LL);
  rest %= 3600000000LL;
  t.minute = static_cast<int>(rest / 60000000LL);
  t.microsecond = rest % 60000000LL;
  return t;
}

std::string format_datetime(const DateTime& t) {
  std::string s = fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}", t.year, t.month, t.day,
                              t.hour, t.minute, t.microsecond / 1000000);
  if (t.microsecond % 1000000) s += fmt::format(".{:06d}", t.microsecond % 1000000);
  return s;
}

CfTimeUnits parse_time_units(const std::string& units, const std::string& calendar,
                             const std::string& where) {
  CfTimeUnits u;
  u.calendar = parse_calendar(calendar, where);
  const std::string l = lower(units);
  const auto since = l.find(" since ");
  if (since == std::string::npos)
    throw Error::config(where, "'" + units + "' is not a CF time unit");
  std::string unit = l.substr(0, since);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.erase(0, 1);
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"days", kUsPerDay},      {"day", kUsPerDay},
      {"d", kUsPerDay},         {"hours", 3600000000LL},
      {"hour", 3600000000LL},   {"hr", 3600000000LL},
      {"h", 3600000000LL},      {"minutes", 60000000LL},
      {"minute", 60000000LL},   {"min", 60000000LL},
      {"seconds", 1000000LL},   {"second", 1000000LL},
      {"sec", 1000000LL},       {"s", 1000000LL},
      {"milliseconds", 1000LL}, {"millisecond", 1000LL},
      {"ms", 1000LL},           {"microseconds", 1LL},
      {"microsecond", 1LL},     {"us", 1LL}};
  for (const auto& [name, us] : kUnits)
    if (unit == name) u.unit_us = us;
  // As cftime: months only in 360_day (30 days), common years only in noleap (365 days).
  const bool months = unit == "months" || unit == "month";
  const bool common_years = unit == "common_years" || unit == "common_year";
  if (months && u.calendar == Calendar::Day360) u.unit_us = 30 * kUsPerDay;
  if (common_years && u.calendar == Calendar::NoLeap) u.unit_us = 365 * kUsPerDay;
  const bool calendar_bound = months || common_years || unit == "years" || unit == "year";
  if (u.unit_us == 0)
    throw Error::config(where, calendar_bound
                                   ? "units '" + units + "' are not supported for decoding in the '" +
                                         calendar + "' calendar (as in cftime: 'months' only in "
                                         "360_day, 'common_years' only in noleap, never 'years')"
                                   : "unsupported time unit '" + unit + "' in '" + units + "'");
  std::string ref = units.substr(since + 7);
  // CF allows a single-digit time zone offset and a trailing ".0"; pandas accepts both.
  u.reference_us = to_us(parse_datetime(ref, nullptr, where), u.calendar, where);
  return u;
}

int64_t value_to_us(double value, const CfTimeUnits& u) {
  return u.reference_us +
         static_cast<int64_t>(std::llround(value * static_cast<double>(u.unit_us)));
}

void label_bounds(const std::string& label, Calendar cal, int64_t* first, int64_t* last,
                  const std::string& where) {
  Resolution res;
  DateTime t = parse_datetime(label, &res, where);
  *first = to_us(t, cal, where);
  DateTime next = t;
  switch (res) {
    case Resolution::Year:
      next.year += 1;
      break;
    case Resolution::Month:
      if (++next.month > 12) next.month = 1, next.year += 1;
      break;
    case Resolution::Day:
      *last = *first + kUsPerDay - 1;
      return;
    case Resolution::Hour:
      *last = *first + 3600000000LL - 1;
      return;
    case Resolution::Minute:
      *last = *first + 60000000LL - 1;
      return;
    case Resolution::Second:
      *last = *first + 1000000LL - 1 - (t.microsecond % 1000000);
      return;
  }
  *last = to_us(next, cal, where) - 1;
}

}  // namespace zp
