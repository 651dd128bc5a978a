// What the in-process ledger and the one kept in Redis share: the amounts they accept, the
// words they refuse with, and the calendar windows they count in.

#include "ledger_common.hpp"

#include "michi/guard/ledger.hpp"

#include <cmath>
#include <cstdio>

namespace michi::guard {

namespace detail {

double sane_usd(double usd) { return std::isfinite(usd) && usd > 0 ? usd : 0.0; }

std::chrono::seconds seconds_until(time_point t, time_point now) {
    const auto s = std::chrono::ceil<std::chrono::seconds>(t - now);
    return std::max(s, std::chrono::seconds(1));
}

namespace {

// "$5.00"; amounts under a dollar that are not whole cents keep their digits ("$0.0042").
std::string money(double usd) {
    char buf[64];
    const double cents = usd * 100.0;
    if (usd >= 1.0 || std::fabs(cents - std::round(cents)) < 1e-9) {
        std::snprintf(buf, sizeof buf, "$%.2f", usd);
        return buf;
    }
    std::snprintf(buf, sizeof buf, "$%.6f", usd);
    std::string out = buf;
    while (out.size() > 5 && out.back() == '0') { // keep at least "$0.00"
        out.pop_back();
    }
    return out;
}

// "2026-11-28T00:00:00Z".
std::string iso_utc(time_point t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    const std::chrono::hh_mm_ss hms{std::chrono::floor<std::chrono::seconds>(t - day)};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

// "60s", or "1500ms" when not a whole number of seconds.
std::string window_text(config::duration d) {
    if (d.count() % 1000 == 0) {
        return std::to_string(d.count() / 1000) + "s";
    }
    return std::to_string(d.count()) + "ms";
}

} // namespace

std::string budget_message(const char* window, double limit, const std::string& key, double spent,
                           double reserved, time_point resets) {
    std::string used = money(spent) + " spent";
    if (reserved > 0) {
        used += ", " + money(reserved) + " in flight";
    }
    return std::string(window) + " budget of " + money(limit) + " for key \"" + key +
           "\" is used up (" + used + "); it resets at " + iso_utc(resets) + ".";
}

std::string rate_message(const std::string& key, std::uint64_t limit, const char* unit) {
    return "Rate limit reached for key \"" + key + "\": " + std::to_string(limit) + " " + unit +
           " per minute.";
}

std::string loop_message(const std::string& key, std::uint64_t sent, config::duration window) {
    return "Loop detected for key \"" + key + "\": the same request was sent " +
           std::to_string(sent) + (sent == 1 ? " time" : " times") + " within " +
           window_text(window) + ".";
}

} // namespace detail

std::string day_period(std::chrono::system_clock::time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "d:%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

std::string month_period(std::chrono::system_clock::time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    char buf[32];
    std::snprintf(buf, sizeof buf, "m:%04d-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()));
    return buf;
}

std::chrono::system_clock::time_point next_day(std::chrono::system_clock::time_point t) {
    return std::chrono::floor<std::chrono::days>(t) + std::chrono::days(1);
}

std::chrono::system_clock::time_point next_month(std::chrono::system_clock::time_point t) {
    const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(t)};
    const std::chrono::year_month first = ymd.year() / ymd.month();
    const std::chrono::year_month next = first + std::chrono::months(1);
    return std::chrono::sys_days(next / std::chrono::day(1));
}

} // namespace michi::guard
