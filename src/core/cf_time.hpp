// CF time: "UNITS since REFERENCE" with a calendar (standard/gregorian, proleptic_gregorian,
// julian, noleap/365_day, all_leap/366_day, 360_day), as xarray/cftime decode it. Times are held
// as microseconds since an origin of the calendar's own day count, so values and labels compare
// exactly. Pure functions; errors are Error(Config) naming `where`.
#pragma once

#include <cstdint>
#include <string>

namespace zp {

enum class Calendar { Standard, ProlepticGregorian, Julian, NoLeap, AllLeap, Day360 };

struct DateTime {
  int64_t year = 1;
  int month = 1, day = 1, hour = 0, minute = 0;
  int64_t microsecond = 0;  // within the minute
};

// Smallest field given in a label ("2000-01" is month resolution): the period it names.
enum class Resolution { Year, Month, Day, Hour, Minute, Second };

struct CfTimeUnits {
  Calendar calendar = Calendar::Standard;
  int64_t unit_us = 0;       // microseconds per unit
  int64_t reference_us = 0;  // reference date in the calendar's microsecond count
};

Calendar parse_calendar(const std::string& name, const std::string& where);
CfTimeUnits parse_time_units(const std::string& units, const std::string& calendar,
                             const std::string& where);
// True when `units` looks like "<unit> since <date>".
bool is_time_units(const std::string& units);

// Parses "2000-01-02", "2000-01-02 03:00", "2000-01-02T03:04:05.5", "2000-01", "2000".
DateTime parse_datetime(const std::string& text, Resolution* resolution, const std::string& where);
int64_t to_us(const DateTime& t, Calendar cal, const std::string& where);
DateTime from_us(int64_t us, Calendar cal);
std::string format_datetime(const DateTime& t);

// Microseconds of a coordinate value (a number in `u`'s units).
int64_t value_to_us(double value, const CfTimeUnits& u);

// [first, last] microseconds covered by a label: pandas' partial-string rule, so that
// "2000-01-09" as an upper bound includes the whole day.
void label_bounds(const std::string& label, Calendar cal, int64_t* first, int64_t* last,
                  const std::string& where);

}  // namespace zp
