// CF time decoding against values computed by cftime (the library xarray uses for these calendars).
#include "core/cf_time.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace zp {
namespace {

struct Case {
  const char* units;
  const char* calendar;
  const char* date;
  int64_t value;  // cftime.date2num(date, units, calendar)
};

TEST(CfTime, MatchesCftimeInEveryCalendar) {
  const Case cases[] = {
      {"days since 1850-01-01", "standard", "2000-03-01 00:00", 54846},
      {"days since 1850-01-01", "noleap", "2000-03-01 00:00", 54809},
      {"days since 1850-01-01", "360_day", "2000-02-30 00:00", 54059},
      {"days since 1850-01-01", "all_leap", "2001-02-29 00:00", 55325},
      {"days since 1850-01-01", "julian", "2000-03-01 00:00", 54847},
      {"days since 1500-01-01", "standard", "1600-01-01 00:00", 36515},
      {"days since 1500-01-01", "proleptic_gregorian", "1600-01-01 00:00", 36524},
      {"hours since 1900-01-01 00:00:00.0", "gregorian", "2000-01-02 06:00", 876606},
      {"months since 2000-01-01", "360_day", "2001-02-01 00:00", 13},
      {"common_years since 2000-01-01", "noleap", "2013-01-01 00:00", 13},
  };
  for (const auto& c : cases) {
    const CfTimeUnits u = parse_time_units(c.units, c.calendar, "test");
    const int64_t us = to_us(parse_datetime(c.date, nullptr, "test"), u.calendar, "test");
    EXPECT_EQ(value_to_us(static_cast<double>(c.value), u), us) << c.calendar << " " << c.date;
  }
}

TEST(CfTime, RoundTripsThroughDatesInEveryCalendar) {
  for (const char* cal :
       {"standard", "proleptic_gregorian", "julian", "noleap", "all_leap", "360_day"}) {
    const Calendar c = parse_calendar(cal, "t");
    for (int64_t day = -800000; day < 800000; day += 997) {
      const int64_t us = day * 86400000000LL + 3600000000LL * 5;
      EXPECT_EQ(to_us(from_us(us, c), c, "t"), us) << cal << " " << day;
    }
  }
}

TEST(CfTime, PartialLabelsCoverTheirWholePeriod) {
  int64_t first, last;
  label_bounds("2000-02", Calendar::Standard, &first, &last, "t");
  EXPECT_EQ(format_datetime(from_us(first, Calendar::Standard)), "2000-02-01 00:00:00");
  EXPECT_EQ(format_datetime(from_us(last + 1, Calendar::Standard)), "2000-03-01 00:00:00");
  label_bounds("2001-02", Calendar::Day360, &first, &last, "t");
  EXPECT_EQ(last + 1 - first, 30LL * 86400000000LL);
  label_bounds("2000-01-09", Calendar::NoLeap, &first, &last, "t");
  EXPECT_EQ(last + 1 - first, 86400000000LL);
}

TEST(CfTime, BadInputIsAConfigError) {
  EXPECT_THROW(parse_datetime("yesterday", nullptr, "k"), Error);
  EXPECT_THROW(parse_datetime("2000-13-01", nullptr, "k"), Error);
  EXPECT_THROW(to_us(parse_datetime("2001-02-29", nullptr, "k"), Calendar::NoLeap, "k"), Error);
  EXPECT_THROW(parse_time_units("fortnights since 2000-01-01", "standard", "k"), Error);
  EXPECT_THROW(parse_calendar("martian", "k"), Error);
  EXPECT_NO_THROW(to_us(parse_datetime("2001-02-30", nullptr, "k"), Calendar::Day360, "k"));
  // As cftime: months only in 360_day, common_years only in noleap, years never.
  EXPECT_THROW(parse_time_units("months since 2000-01-01", "standard", "k"), Error);
  EXPECT_THROW(parse_time_units("common_years since 2000-01-01", "360_day", "k"), Error);
  EXPECT_THROW(parse_time_units("years since 2000-01-01", "360_day", "k"), Error);
  // The days the standard calendar skips (xarray/cftime refuse them too).
  EXPECT_THROW(to_us(parse_datetime("1582-10-10", nullptr, "k"), Calendar::Standard, "k"), Error);
  EXPECT_NO_THROW(
      to_us(parse_datetime("1582-10-10", nullptr, "k"), Calendar::ProlepticGregorian, "k"));
}

}  // namespace
}  // namespace zp
