// Ledger: UTC day and month windows (midnight, month and year ends, leap day), reserve-then-
// settle arithmetic, RPM/TPM over a rolling 60 s, the loop guard, x-ratelimit-* values,
// refusal messages word for word, persistence through a fake store, and a threaded run
// checking that a budget is never crossed by more than one request's cost.

#include "michi/guard/local_ledger.hpp"
#include "michi/guard/spend_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace michi::guard {
namespace {

using namespace std::chrono_literals;
using time_point = std::chrono::system_clock::time_point;

time_point utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
    return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(mo) /
                                 std::chrono::day(d)) +
           std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s);
}

// In-memory spend_store: a log of every add() and the running totals load() returns.
class fake_store : public guard::spend_store {
public:
    std::vector<guard::spend_row> load() override {
        std::lock_guard lock(mutex_);
        std::vector<guard::spend_row> out;
        for (const auto& [k, usd] : totals_) {
            out.push_back({k.first, k.second, usd});
        }
        return out;
    }

    void add(const std::string& key_id, const std::string& period, double usd) override {
        if (on_add) {
            on_add();
        }
        std::lock_guard lock(mutex_);
        log_.push_back({key_id, period, usd});
        totals_[{key_id, period}] += usd;
    }

    void flush() override {}

    std::vector<guard::spend_row> log() const {
        std::lock_guard lock(mutex_);
        return log_;
    }

    void put(const std::string& key_id, const std::string& period, double usd) {
        std::lock_guard lock(mutex_);
        totals_[{key_id, period}] += usd;
    }

    std::function<void()> on_add;

private:
    mutable std::mutex mutex_;
    std::vector<guard::spend_row> log_;
    std::map<std::pair<std::string, std::string>, double> totals_;
};

class LedgerTest : public ::testing::Test {
protected:
    time_point now_ = utc(2026, 11, 27, 12, 0, 0);
    fake_store store_;

    wall_clock clock() {
        return [this] { return now_; };
    }

    std::unique_ptr<local_ledger> make(guard::spend_store* persist = nullptr) {
        return std::make_unique<local_ledger>(clock(), persist);
    }

    static admission_request req(const std::string& key, config::limits lim, double cost = 0,
                                 std::uint64_t tokens = 0, std::string fp = {}) {
        admission_request r;
        r.key_id = key;
        r.limits = std::move(lim);
        r.est_cost_usd = cost;
        r.est_tokens = tokens;
        if (!fp.empty()) { // the gateway hashes the body; any 64-bit value will do here
            r.loop_fingerprint = std::hash<std::string>{}(fp);
        }
        return r;
    }

    static reservation admitted(std::variant<reservation, refusal> v) {
        if (auto* f = std::get_if<refusal>(&v)) {
            ADD_FAILURE() << "refused: " << f->message;
            return {};
        }
        return std::get<reservation>(std::move(v));
    }

    static refusal refused(std::variant<reservation, refusal> v) {
        if (std::holds_alternative<reservation>(v)) {
            ADD_FAILURE() << "admitted, expected a refusal";
            return {};
        }
        return std::get<refusal>(std::move(v));
    }
};

config::limits budget(std::optional<double> daily, std::optional<double> monthly = {}) {
    config::limits l;
    l.daily_usd = daily;
    l.monthly_usd = monthly;
    return l;
}

// --- calendar windows ------------------------------------------------------------------

TEST(LedgerPeriodTest, NamesAndNextStarts) {
    EXPECT_EQ(day_period(utc(2026, 11, 27, 23, 59, 59)), "d:2026-11-27");
    EXPECT_EQ(day_period(utc(2026, 11, 28)), "d:2026-11-28");
    EXPECT_EQ(month_period(utc(2026, 1, 31, 23, 59, 59)), "m:2026-01");
    EXPECT_EQ(month_period(utc(2026, 2, 1)), "m:2026-02");
    EXPECT_EQ(day_period(utc(2028, 2, 29, 6)), "d:2028-02-29");
    EXPECT_EQ(day_period(utc(2026, 11, 27, 23, 59, 59) + 999ms), "d:2026-11-27");

    EXPECT_EQ(next_day(utc(2026, 11, 27, 23, 59, 59)), utc(2026, 11, 28));
    EXPECT_EQ(next_day(utc(2026, 11, 28)), utc(2026, 11, 29));
    EXPECT_EQ(next_day(utc(2026, 1, 31, 10)), utc(2026, 2, 1));
    EXPECT_EQ(next_day(utc(2026, 12, 31, 23)), utc(2027, 1, 1));
    EXPECT_EQ(next_day(utc(2028, 2, 28, 1)), utc(2028, 2, 29));
    EXPECT_EQ(next_day(utc(2028, 2, 29, 1)), utc(2028, 3, 1));
    EXPECT_EQ(next_day(utc(2027, 2, 28, 1)), utc(2027, 3, 1));

    EXPECT_EQ(next_month(utc(2026, 1, 31, 23, 59, 59)), utc(2026, 2, 1));
    EXPECT_EQ(next_month(utc(2026, 2, 1)), utc(2026, 3, 1));
    EXPECT_EQ(next_month(utc(2026, 12, 31, 23, 59, 59)), utc(2027, 1, 1));
    EXPECT_EQ(next_month(utc(2028, 2, 29, 12)), utc(2028, 3, 1));
}

TEST_F(LedgerTest, MidnightRollOverGivesFreshDailyBudgetWhileMonthAccumulates) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(5.0, 100.0);

    now_ = utc(2026, 11, 27, 23, 59, 0);
    auto r = admitted(l->admit(req("alice", lim, 1.0), h));
    l->settle(r, 5.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 5.0);

    now_ = utc(2026, 11, 27, 23, 59, 59);
    const auto f = refused(l->admit(req("alice", lim, 1.0), h));
    EXPECT_EQ(f.kind, refusal_kind::budget_daily);
    EXPECT_EQ(f.message, "Daily budget of $5.00 for key \"alice\" is used up ($5.00 spent); "
                         "it resets at 2026-11-28T00:00:00Z.");
    EXPECT_EQ(f.retry_after, 1s);

    now_ = utc(2026, 11, 28, 0, 0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 5.0);
    auto r2 = admitted(l->admit(req("alice", lim, 1.0), h));
    EXPECT_EQ(r2.day, "d:2026-11-28");
    EXPECT_EQ(r2.month, "m:2026-11");
    l->settle(r2, 2.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 2.0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 7.0);
}

TEST_F(LedgerTest, MonthEndResetsTheMonthlyBudget) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(std::nullopt, 10.0);

    now_ = utc(2026, 1, 31, 18, 0, 0);
    auto r = admitted(l->admit(req("alice", lim, 1.0), h));
    l->settle(r, 10.0, 0);
    const auto f = refused(l->admit(req("alice", lim, 1.0), h));
    EXPECT_EQ(f.kind, refusal_kind::budget_monthly);
    EXPECT_EQ(f.message, "Monthly budget of $10.00 for key \"alice\" is used up ($10.00 "
                         "spent); it resets at 2026-02-01T00:00:00Z.");
    EXPECT_EQ(f.retry_after, 6h);

    now_ = utc(2026, 2, 1, 0, 0, 0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 0.0);
    auto r2 = admitted(l->admit(req("alice", lim, 1.0), h));
    EXPECT_EQ(r2.month, "m:2026-02");
}

TEST_F(LedgerTest, YearEndResetsDayAndMonth) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(3.0, 3.0);

    now_ = utc(2026, 12, 31, 23, 59, 59);
    auto r = admitted(l->admit(req("alice", lim, 1.0), h));
    l->settle(r, 3.0, 0);
    EXPECT_EQ(refused(l->admit(req("alice", lim, 1.0), h)).kind, refusal_kind::budget_daily);

    now_ = utc(2027, 1, 1, 0, 0, 0);
    auto r2 = admitted(l->admit(req("alice", lim, 1.0), h));
    EXPECT_EQ(r2.day, "d:2027-01-01");
    EXPECT_EQ(r2.month, "m:2027-01");
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 0.0);
}

TEST_F(LedgerTest, LeapDayIsItsOwnDayInFebruary) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(1.0, 2.0);

    now_ = utc(2028, 2, 28, 12, 0, 0);
    auto r = admitted(l->admit(req("alice", lim, 0.5), h));
    l->settle(r, 1.0, 0);
    const auto f = refused(l->admit(req("alice", lim, 0.5), h));
    EXPECT_EQ(f.message, "Daily budget of $1.00 for key \"alice\" is used up ($1.00 spent); "
                         "it resets at 2028-02-29T00:00:00Z.");

    now_ = utc(2028, 2, 29, 12, 0, 0);
    auto r2 = admitted(l->admit(req("alice", lim, 0.5), h));
    EXPECT_EQ(r2.day, "d:2028-02-29");
    l->settle(r2, 1.0, 0);
    const auto f2 = refused(l->admit(req("alice", lim, 0.5), h));
    EXPECT_EQ(f2.kind, refusal_kind::budget_daily); // daily is checked first
    EXPECT_EQ(f2.message, "Daily budget of $1.00 for key \"alice\" is used up ($1.00 spent); "
                          "it resets at 2028-03-01T00:00:00Z.");

    const auto monthly_only = budget(std::nullopt, 2.0);
    const auto f3 = refused(l->admit(req("alice", monthly_only, 0.5), h));
    EXPECT_EQ(f3.kind, refusal_kind::budget_monthly);
    EXPECT_EQ(f3.message, "Monthly budget of $2.00 for key \"alice\" is used up ($2.00 "
                          "spent); it resets at 2028-03-01T00:00:00Z.");
    EXPECT_EQ(f3.retry_after, 12h);

    now_ = utc(2028, 3, 1, 0, 0, 0);
    admitted(l->admit(req("alice", lim, 0.5), h));
}

TEST_F(LedgerTest, RequestStraddlingMidnightIsChargedToItsAdmissionDay) {
    auto l = make(&store_);
    rate_headers h;
    const auto lim = budget(5.0, 100.0);

    now_ = utc(2026, 11, 30, 23, 59, 50);
    auto r = admitted(l->admit(req("alice", lim, 1.0), h));
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 1.0);

    now_ = utc(2026, 12, 1, 0, 0, 10); // also a new month
    auto r2 = admitted(l->admit(req("alice", lim, 0.5), h));
    l->settle(r, 3.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.5);
    l->settle(r2, 0.25, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.25);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.0);

    const auto log = store_.log();
    ASSERT_EQ(log.size(), 4u);
    EXPECT_EQ(log[0].period, "d:2026-11-30");
    EXPECT_EQ(log[1].period, "m:2026-11");
    EXPECT_DOUBLE_EQ(log[0].usd, 3.0);
    EXPECT_EQ(log[2].period, "d:2026-12-01");
    EXPECT_EQ(log[3].period, "m:2026-12");
}

TEST_F(LedgerTest, RequestStraddlingMidnightStillCountsInTheSameMonth) {
    auto l = make();
    rate_headers h;
    now_ = utc(2026, 11, 27, 23, 59, 50);
    auto r = admitted(l->admit(req("alice", budget(5.0, 100.0), 1.0), h));
    now_ = utc(2026, 11, 28, 0, 0, 10);
    l->settle(r, 3.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 3.0);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.0);
}

// --- reserve then settle -------------------------------------------------------------

TEST_F(LedgerTest, ReservationsBlockOnceSpendPlusReservedReachesTheLimit) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(1.0);

    std::vector<reservation> held;
    for (int i = 0; i < 4; ++i) { // 0, 0.25, 0.5, 0.75 held before each: all below 1
        held.push_back(admitted(l->admit(req("alice", lim, 0.25), h)));
    }
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 1.0);
    const auto f = refused(l->admit(req("alice", lim, 0.25), h));
    EXPECT_EQ(f.kind, refusal_kind::budget_daily);
    EXPECT_EQ(f.message, "Daily budget of $1.00 for key \"alice\" is used up ($0.00 spent, "
                         "$1.00 in flight); it resets at 2026-11-28T00:00:00Z.");
    EXPECT_EQ(f.retry_after, 12h);

    l->settle(held[0], 0.25, 0); // same as estimated: still full
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.25);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.75);
    refused(l->admit(req("alice", lim, 0.25), h));

    l->settle(held[1], 0.05, 0); // smaller actual frees room
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.30);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.5);
    held.push_back(admitted(l->admit(req("alice", lim, 0.25), h)));
    refused(l->admit(req("alice", lim, 0.25), h)); // 0.30 + 0.75 >= 1

    for (auto& r : held) {
        l->settle(r, 0.1, 0);
    }
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.0);
    EXPECT_NEAR(l->spent_today("alice"), 0.25 + 0.05 + 0.3, 1e-12);
}

TEST_F(LedgerTest, LastRequestMayCrossByItsOwnCost) {
    auto l = make();
    rate_headers h;
    const auto lim = budget(1.0);
    auto r = admitted(l->admit(req("alice", lim, 0.9), h));
    l->settle(r, 0.9, 0);

    // The estimate (5.00) is far above what remains (0.10), but 0.90 < 1.00: admitted.
    auto big = admitted(l->admit(req("alice", lim, 5.0), h));
    EXPECT_DOUBLE_EQ(big.cost_usd, 5.0);
    refused(l->admit(req("alice", lim, 0.01), h));
    l->settle(big, 0.5, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 1.4);
    const auto f = refused(l->admit(req("alice", lim, 0.01), h));
    EXPECT_EQ(f.message, "Daily budget of $1.00 for key \"alice\" is used up ($1.40 spent); "
                         "it resets at 2026-11-28T00:00:00Z.");
}

TEST_F(LedgerTest, ZeroBudgetRefusesEverything) {
    auto l = make();
    rate_headers h;
    const auto f = refused(l->admit(req("alice", budget(0.0), 0.0), h));
    EXPECT_EQ(f.kind, refusal_kind::budget_daily);
    EXPECT_EQ(f.message, "Daily budget of $0.00 for key \"alice\" is used up ($0.00 spent); "
                         "it resets at 2026-11-28T00:00:00Z.");
    EXPECT_EQ(refused(l->admit(req("bob", budget(std::nullopt, 0.0)), h)).kind,
              refusal_kind::budget_monthly);
}

TEST_F(LedgerTest, SmallAmountsKeepTheirDigits) {
    auto l = make();
    rate_headers h;
    auto r = admitted(l->admit(req("alice", budget(0.005), 0.001), h));
    l->settle(r, 0.0042, 0);
    const auto f = refused(l->admit(req("alice", budget(0.004), 0.001), h));
    EXPECT_EQ(f.message, "Daily budget of $0.004 for key \"alice\" is used up ($0.0042 "
                         "spent); it resets at 2026-11-28T00:00:00Z.");
}

TEST_F(LedgerTest, SettleIsIdempotentAndReleasesTheReservation) {
    auto l = make(&store_);
    rate_headers h;
    auto r = admitted(l->admit(req("alice", budget(5.0), 2.0), h));
    EXPECT_FALSE(r.settled);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 2.0);
    l->settle(r, 1.5, 0);
    EXPECT_TRUE(r.settled);
    l->settle(r, 1.5, 0);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 1.5);
    EXPECT_EQ(store_.log().size(), 2u);
}

TEST_F(LedgerTest, ZeroAndInvalidCostsPersistNothing) {
    auto l = make(&store_);
    rate_headers h;
    auto a = admitted(l->admit(req("alice", budget(5.0), 2.0), h));
    auto b = admitted(l->admit(req("alice", budget(5.0), -1.0), h));
    EXPECT_DOUBLE_EQ(b.cost_usd, 0.0);
    l->settle(a, 0.0, 0);
    l->settle(b, -3.0, 0);
    EXPECT_TRUE(store_.log().empty());
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l->reserved("alice"), 0.0);
}

TEST_F(LedgerTest, KeysAreIndependentAndUnknownKeysReadZero) {
    auto l = make();
    rate_headers h;
    auto r = admitted(l->admit(req("alice", budget(1.0), 1.0), h));
    l->settle(r, 1.0, 0);
    refused(l->admit(req("alice", budget(1.0), 0.1), h));
    admitted(l->admit(req("bob", budget(1.0), 0.1), h));
    EXPECT_DOUBLE_EQ(l->spent_today("nobody"), 0.0);
    EXPECT_DOUBLE_EQ(l->spent_this_month("nobody"), 0.0);
    EXPECT_DOUBLE_EQ(l->reserved("nobody"), 0.0);
    EXPECT_EQ(l->requests_last_minute("nobody"), 0u);
    EXPECT_EQ(l->tokens_last_minute("nobody"), 0u);
}

// --- RPM / TPM -----------------------------------------------------------------------

config::limits rate(std::optional<std::uint64_t> rpm, std::optional<std::uint64_t> tpm = {}) {
    config::limits l;
    l.rpm = rpm;
    l.tpm = tpm;
    return l;
}

TEST_F(LedgerTest, RpmRollsOverSixtySeconds) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    for (int i = 0; i < 60; ++i) {
        admitted(l->admit(req("alice", rate(60)), h));
    }
    EXPECT_EQ(l->requests_last_minute("alice"), 60u);
    auto f = refused(l->admit(req("alice", rate(60)), h));
    EXPECT_EQ(f.kind, refusal_kind::rpm);
    EXPECT_EQ(f.message, "Rate limit reached for key \"alice\": 60 requests per minute.");
    EXPECT_EQ(f.retry_after, 60s);
    EXPECT_EQ(l->requests_last_minute("alice"), 60u); // the refusal recorded nothing

    now_ = t0 + 59s + 500ms;
    f = refused(l->admit(req("alice", rate(60)), h));
    EXPECT_EQ(f.retry_after, 1s);

    now_ = t0 + 60s;
    EXPECT_EQ(l->requests_last_minute("alice"), 0u);
    admitted(l->admit(req("alice", rate(60)), h));
}

TEST_F(LedgerTest, RateWindowsIgnoreRequestsFromAClockThatWentBack) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    for (int i = 0; i < 3; ++i) {
        admitted(l->admit(req("alice", rate(3)), h));
    }
    EXPECT_EQ(h.remaining_requests, 0u);
    refused(l->admit(req("alice", rate(3)), h));
    now_ = t0 - 5s; // the clock stepped back: t0's requests lie in the future, not counted
    EXPECT_EQ(l->requests_last_minute("alice"), 0u);
    admitted(l->admit(req("alice", rate(3)), h));
    EXPECT_EQ(h.remaining_requests, 2u);
    EXPECT_EQ(h.reset_requests, 60s);
    now_ = t0; // and forward again: both seconds count
    EXPECT_EQ(l->requests_last_minute("alice"), 4u);
    const auto f = refused(l->admit(req("alice", rate(3)), h));
    EXPECT_EQ(f.retry_after, 60s); // when t0-5's request leaves, three remain: still full
    EXPECT_EQ(h.remaining_requests, 0u);
    EXPECT_EQ(h.reset_requests, 55s); // the oldest counted request leaves in 55 s
}

TEST_F(LedgerTest, RpmPartialExpiry) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    admitted(l->admit(req("alice", rate(3)), h));
    now_ = t0 + 10s;
    admitted(l->admit(req("alice", rate(3)), h));
    admitted(l->admit(req("alice", rate(3)), h));
    now_ = t0 + 20s;
    EXPECT_EQ(refused(l->admit(req("alice", rate(3)), h)).retry_after, 40s);
    now_ = t0 + 60s; // the first one left
    admitted(l->admit(req("alice", rate(3)), h));
    EXPECT_EQ(refused(l->admit(req("alice", rate(3)), h)).retry_after, 10s);
    now_ = t0 + 70s; // both from t0+10 left
    EXPECT_EQ(l->requests_last_minute("alice"), 1u);
    admitted(l->admit(req("alice", rate(3)), h));
    admitted(l->admit(req("alice", rate(3)), h));
}

TEST_F(LedgerTest, RpmRetryAfterWaitsForEnoughRequestsWhenTheLimitWasLowered) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    for (int i = 0; i < 5; ++i) {
        admitted(l->admit(req("alice", rate(10)), h));
    }
    now_ = t0 + 30s;
    for (int i = 0; i < 5; ++i) {
        admitted(l->admit(req("alice", rate(10)), h));
    }
    now_ = t0 + 40s;
    const auto f = refused(l->admit(req("alice", rate(5)), h));
    EXPECT_EQ(f.message, "Rate limit reached for key \"alice\": 5 requests per minute.");
    EXPECT_EQ(f.retry_after, 50s); // after t0's five leave, five remain: still full
    EXPECT_EQ(refused(l->admit(req("alice", rate(0)), h)).retry_after, 60s);
}

TEST_F(LedgerTest, TpmCountsTheEstimateThenCorrectsAtSettle) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    auto a = admitted(l->admit(req("alice", rate(std::nullopt, 1000), 0, 600), h));
    EXPECT_EQ(l->tokens_last_minute("alice"), 600u);
    auto b = admitted(l->admit(req("alice", rate(std::nullopt, 1000), 0, 600), h)); // crosses
    EXPECT_EQ(l->tokens_last_minute("alice"), 1200u);
    auto f = refused(l->admit(req("alice", rate(std::nullopt, 1000), 0, 1), h));
    EXPECT_EQ(f.kind, refusal_kind::tpm);
    EXPECT_EQ(f.message, "Rate limit reached for key \"alice\": 1000 tokens per minute.");
    EXPECT_EQ(f.retry_after, 60s);

    now_ = t0 + 5s;
    l->settle(a, 0, 100); // actual below the estimate: room again
    EXPECT_EQ(l->tokens_last_minute("alice"), 700u);
    auto c = admitted(l->admit(req("alice", rate(std::nullopt, 1000), 0, 50), h));
    EXPECT_EQ(l->tokens_last_minute("alice"), 750u);
    l->settle(c, 0, 450); // actual above the estimate
    EXPECT_EQ(l->tokens_last_minute("alice"), 1150u);
    f = refused(l->admit(req("alice", rate(std::nullopt, 1000), 0, 1), h));
    EXPECT_EQ(f.retry_after, 55s); // t0's 700 leave at t0+60, leaving 450

    now_ = t0 + 61s;
    l->settle(b, 0, 5000); // its bucket left the window: nothing to correct
    EXPECT_EQ(l->tokens_last_minute("alice"), 450u);
    admitted(l->admit(req("alice", rate(std::nullopt, 1000), 0, 10), h));
}

TEST_F(LedgerTest, TokenHeadersFollowSettlementsWithinTheSameSecond) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    const auto lim = rate(std::nullopt, 1000);
    auto a = admitted(l->admit(req("alice", lim, 0, 100), h));
    now_ = t0 + 10s;
    auto b = admitted(l->admit(req("alice", lim, 0, 100), h));
    EXPECT_EQ(h.remaining_tokens, 800u);
    EXPECT_EQ(h.reset_tokens, 50s); // t0's tokens leave first
    l->settle(a, 0, 0);             // t0's bucket empties: the window now starts at t0+10
    admitted(l->admit(req("alice", lim, 0, 10), h));
    EXPECT_EQ(h.remaining_tokens, 890u);
    EXPECT_EQ(h.reset_tokens, 60s);
    l->settle(b, 0, 300); // more than its estimate, in the second it was admitted
    admitted(l->admit(req("alice", lim, 0, 10), h));
    EXPECT_EQ(h.remaining_tokens, 680u);
    EXPECT_EQ(l->tokens_last_minute("alice"), 320u);
}

TEST_F(LedgerTest, TpmSettleNeverGoesBelowZero) {
    auto l = make();
    rate_headers h;
    auto a = admitted(l->admit(req("alice", rate(std::nullopt, 1000), 0, 100), h));
    l->settle(a, 0, 0);
    EXPECT_EQ(l->tokens_last_minute("alice"), 0u);
}

// --- loop guard ----------------------------------------------------------------------

config::limits loop(std::optional<std::uint64_t> max,
                    std::optional<config::duration> window = std::nullopt) {
    config::limits l;
    l.loop_max = max;
    l.loop_window = window;
    return l;
}

TEST_F(LedgerTest, LoopGuardRefusesTheRequestAfterLoopMax) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    const auto lim = loop(3, config::duration(60s));
    for (int i = 0; i < 3; ++i) {
        now_ = t0 + std::chrono::seconds(i);
        admitted(l->admit(req("bot", lim, 0, 0, "fp-a"), h));
    }
    now_ = t0 + 3s;
    const auto f = refused(l->admit(req("bot", lim, 0, 0, "fp-a"), h));
    EXPECT_EQ(f.kind, refusal_kind::loop);
    EXPECT_EQ(f.message,
              "Loop detected for key \"bot\": the same request was sent 4 times within 60s.");
    EXPECT_EQ(f.retry_after, 57s);
    admitted(l->admit(req("bot", lim, 0, 0, "fp-b"), h));   // a different body is fine
    admitted(l->admit(req("other", lim, 0, 0, "fp-a"), h)); // per key

    now_ = t0 + 59s;
    refused(l->admit(req("bot", lim, 0, 0, "fp-a"), h));
    now_ = t0 + 60s; // the first left the window
    admitted(l->admit(req("bot", lim, 0, 0, "fp-a"), h));
    EXPECT_EQ(refused(l->admit(req("bot", lim, 0, 0, "fp-a"), h)).retry_after, 1s);
}

TEST_F(LedgerTest, LoopGuardContractExampleAndDefaultWindow) {
    auto l = make();
    rate_headers h;
    for (int i = 0; i < 20; ++i) {
        admitted(l->admit(req("bot", loop(20), 0, 0, "same"), h));
    }
    const auto f = refused(l->admit(req("bot", loop(20), 0, 0, "same"), h));
    EXPECT_EQ(f.message,
              "Loop detected for key \"bot\": the same request was sent 21 times within 60s.");
    EXPECT_EQ(f.retry_after, 60s);
    now_ += 60s;
    admitted(l->admit(req("bot", loop(20), 0, 0, "same"), h));
}

TEST_F(LedgerTest, LoopGuardSubSecondWindow) {
    auto l = make();
    rate_headers h;
    const auto lim = loop(1, config::duration(1500ms));
    admitted(l->admit(req("bot", lim, 0, 0, "x"), h));
    now_ += 1s;
    const auto f = refused(l->admit(req("bot", lim, 0, 0, "x"), h));
    EXPECT_EQ(f.message,
              "Loop detected for key \"bot\": the same request was sent 2 times within 1500ms.");
    EXPECT_EQ(f.retry_after, 1s);
    now_ += 500ms;
    admitted(l->admit(req("bot", lim, 0, 0, "x"), h));
}

TEST_F(LedgerTest, LoopGuardOnlyWithLoopMaxAndAFingerprint) {
    auto l = make();
    rate_headers h;
    for (int i = 0; i < 50; ++i) {
        admitted(l->admit(req("dev", loop(std::nullopt), 0, 0, "same"), h));
        admitted(l->admit(req("bot", loop(1), 0, 0, ""), h));
    }
}

TEST_F(LedgerTest, LoopGuardForgetsTheOldestFingerprintsBeyondTheCap) {
    auto l = make();
    rate_headers h;
    const auto lim = loop(1);
    admitted(l->admit(req("bot", lim, 0, 0, "first"), h));
    refused(l->admit(req("bot", lim, 0, 0, "first"), h));
    for (int i = 0; i < 4096; ++i) {
        admitted(l->admit(req("bot", lim, 0, 0, "body-" + std::to_string(i)), h));
    }
    admitted(l->admit(req("bot", lim, 0, 0, "first"), h)); // evicted, so forgotten
    refused(l->admit(req("bot", lim, 0, 0, "body-4095"), h));
}

TEST_F(LedgerTest, LoopGuardCountsAfreshForBodiesWhoseEntriesWereRecycled) {
    // Entries dropped (by the cap or when their window passes) are reused for new bodies;
    // a reused entry must not carry the sightings of the body it held before.
    auto l = make();
    rate_headers h;
    const auto lim = loop(2, config::duration(1s));
    for (int i = 0; i < 4096 + 20; ++i) { // the first 20 are dropped by the cap, still live
        admitted(l->admit(req("bot", lim, 0, 0, "body-" + std::to_string(i)), h));
    }
    for (int i = 0; i < 2; ++i) {
        admitted(l->admit(req("bot", lim, 0, 0, "fresh"), h));
    }
    refused(l->admit(req("bot", lim, 0, 0, "fresh"), h));
    now_ += 2s; // now every entry expires at the next check
    for (int i = 0; i < 2; ++i) {
        admitted(l->admit(req("bot", lim, 0, 0, "later"), h));
    }
    refused(l->admit(req("bot", lim, 0, 0, "later"), h));
}

// --- order of the checks and what a refusal records ----------------------------------

TEST_F(LedgerTest, ChecksRunInContractOrderAndRefusalsRecordNothing) {
    auto l = make();
    rate_headers h;
    config::limits all;
    all.daily_usd = 1.0;
    all.monthly_usd = 1.0;
    all.rpm = 1;
    all.tpm = 100;
    all.loop_max = 1;
    auto r = admitted(l->admit(req("k", all, 0.5, 200, "fp"), h));
    l->settle(r, 1.0, 200);
    EXPECT_EQ(refused(l->admit(req("k", all, 0.1, 1, "fp"), h)).kind, refusal_kind::budget_daily);
    all.daily_usd.reset();
    EXPECT_EQ(refused(l->admit(req("k", all, 0.1, 1, "fp"), h)).kind, refusal_kind::budget_monthly);
    all.monthly_usd.reset();
    EXPECT_EQ(refused(l->admit(req("k", all, 0.1, 1, "fp"), h)).kind, refusal_kind::rpm);
    all.rpm.reset();
    EXPECT_EQ(refused(l->admit(req("k", all, 0.1, 1, "fp"), h)).kind, refusal_kind::tpm);
    all.tpm.reset();
    EXPECT_EQ(refused(l->admit(req("k", all, 0.1, 1, "fp"), h)).kind, refusal_kind::loop);
    EXPECT_EQ(l->requests_last_minute("k"), 1u);
    EXPECT_EQ(l->tokens_last_minute("k"), 200u);
    EXPECT_DOUBLE_EQ(l->reserved("k"), 0.0);
    all.loop_max.reset();
    admitted(l->admit(req("k", all, 0.1, 1, "fp"), h));
}

// --- x-ratelimit-* values ------------------------------------------------------------

TEST_F(LedgerTest, HeadersOnAdmittedAndRefusedRequests) {
    auto l = make();
    rate_headers h;
    const time_point t0 = now_;
    const auto lim = rate(3, 1000);

    admitted(l->admit(req("alice", lim, 0, 400), h));
    EXPECT_TRUE(h.has_requests);
    EXPECT_EQ(h.limit_requests, 3u);
    EXPECT_EQ(h.remaining_requests, 2u);
    EXPECT_EQ(h.reset_requests, 60s);
    EXPECT_TRUE(h.has_tokens);
    EXPECT_EQ(h.limit_tokens, 1000u);
    EXPECT_EQ(h.remaining_tokens, 600u);
    EXPECT_EQ(h.reset_tokens, 60s);

    now_ = t0 + 15s;
    admitted(l->admit(req("alice", lim, 0, 400), h));
    EXPECT_EQ(h.remaining_requests, 1u);
    EXPECT_EQ(h.reset_requests, 45s);
    EXPECT_EQ(h.remaining_tokens, 200u);
    EXPECT_EQ(h.reset_tokens, 45s);

    admitted(l->admit(req("alice", lim, 0, 400), h)); // crosses the TPM
    EXPECT_EQ(h.remaining_requests, 0u);
    EXPECT_EQ(h.remaining_tokens, 0u);

    h = rate_headers{};
    refused(l->admit(req("alice", lim, 0, 400), h)); // headers filled on refusals too
    EXPECT_TRUE(h.has_requests);
    EXPECT_EQ(h.remaining_requests, 0u);
    EXPECT_EQ(h.reset_requests, 45s);
    EXPECT_EQ(h.remaining_tokens, 0u);

    now_ = t0 + 60s; // the first request left
    config::limits budget_and_rate = lim;
    budget_and_rate.daily_usd = 0.0;
    refused(l->admit(req("alice", budget_and_rate, 0, 400), h));
    EXPECT_EQ(h.remaining_requests, 1u);
    EXPECT_EQ(h.reset_requests, 15s);
    EXPECT_EQ(h.remaining_tokens, 200u);

    now_ = t0 + 200s;
    admitted(l->admit(req("alice", rate(std::nullopt, std::nullopt)), h));
    EXPECT_FALSE(h.has_requests);
    EXPECT_FALSE(h.has_tokens);
    admitted(l->admit(req("alice", rate(5)), h));
    EXPECT_TRUE(h.has_requests);
    EXPECT_FALSE(h.has_tokens);
    EXPECT_EQ(h.remaining_requests, 3u); // every admission counts, limited or not
}

TEST_F(LedgerTest, HeadersResetIsZeroWhenTheWindowIsEmpty) {
    auto l = make();
    rate_headers h;
    refused(l->admit(req("alice",
                         [] {
                             config::limits x = rate(10, 100);
                             x.daily_usd = 0.0;
                             return x;
                         }()),
                     h));
    EXPECT_EQ(h.remaining_requests, 10u);
    EXPECT_EQ(h.reset_requests, 0s);
    EXPECT_EQ(h.remaining_tokens, 100u);
    EXPECT_EQ(h.reset_tokens, 0s);
}

// --- persistence ---------------------------------------------------------------------

TEST_F(LedgerTest, SettledSpendIsPersistedAndResumedByANewLedger) {
    {
        auto l = make(&store_);
        rate_headers h;
        auto r = admitted(l->admit(req("alice", budget(5.0), 1.0), h));
        EXPECT_TRUE(store_.log().empty()); // nothing until settled
        l->settle(r, 1.25, 0);
        const auto log = store_.log();
        ASSERT_EQ(log.size(), 2u);
        EXPECT_EQ(log[0].key_id, "alice");
        EXPECT_EQ(log[0].period, "d:2026-11-27");
        EXPECT_DOUBLE_EQ(log[0].usd, 1.25);
        EXPECT_EQ(log[1].period, "m:2026-11");
        EXPECT_DOUBLE_EQ(log[1].usd, 1.25);
    }
    store_.put("alice", "d:2026-11-26", 7.0); // yesterday: this month only
    store_.put("alice", "m:2026-10", 50.0);   // last month: ignored
    store_.put("alice", "m:2026-11", 7.0);
    store_.put("bob", "d:2026-11-27", 4.0);
    store_.put("bob", "m:2026-11", 4.0);

    now_ += 1h;
    auto l = make(&store_);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 1.25);
    EXPECT_DOUBLE_EQ(l->spent_this_month("alice"), 8.25);
    EXPECT_DOUBLE_EQ(l->spent_today("bob"), 4.0);
    rate_headers h;
    const auto f = refused(l->admit(req("bob", budget(4.0), 0.1), h));
    EXPECT_EQ(f.message, "Daily budget of $4.00 for key \"bob\" is used up ($4.00 spent); "
                         "it resets at 2026-11-28T00:00:00Z.");
    auto r = admitted(l->admit(req("alice", budget(5.0), 1.0), h));
    l->settle(r, 1.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 2.25);

    now_ = utc(2026, 11, 28, 0, 0, 1);
    auto l2 = make(&store_);
    EXPECT_DOUBLE_EQ(l2->spent_today("alice"), 0.0);
    EXPECT_DOUBLE_EQ(l2->spent_this_month("alice"), 9.25);
}

TEST_F(LedgerTest, StoreIsCalledWithoutTheLedgerLock) {
    auto l = make(&store_);
    int calls = 0;
    store_.on_add = [&] {
        ++calls;
        (void)l->spent_today("alice"); // would deadlock if settle held the key's lock
    };
    rate_headers h;
    auto r = admitted(l->admit(req("alice", budget(5.0), 1.0), h));
    l->settle(r, 1.0, 0);
    EXPECT_EQ(calls, 2);
}

TEST_F(LedgerTest, WorksWithoutAStore) {
    auto l = make(nullptr);
    rate_headers h;
    auto r = admitted(l->admit(req("alice", budget(5.0), 1.0), h));
    l->settle(r, 1.0, 0);
    EXPECT_DOUBLE_EQ(l->spent_today("alice"), 1.0);
}

// --- concurrency ---------------------------------------------------------------------

TEST_F(LedgerTest, ThreadsNeverOverspendByMoreThanOneRequest) {
    fake_store persist;
    auto l = make(&persist);
    const std::vector<std::string> keys = {"k0", "k1", "k2"};
    constexpr double limit = 10.0;
    constexpr double max_cost = 0.5;
    std::atomic<int> admitted_count{0};

    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            std::mt19937 rng(static_cast<unsigned>(t));
            std::uniform_real_distribution<double> cost(0.01, max_cost);
            std::vector<reservation> held;
            config::limits lim = budget(limit, limit * 2);
            lim.rpm = 1000000;
            lim.tpm = 100000000;
            for (int i = 0; i < 1000; ++i) {
                rate_headers h;
                const std::string& key = keys[static_cast<std::size_t>(i + t) % keys.size()];
                const double est = cost(rng);
                auto v = l->admit(req(key, lim, est, 100), h);
                if (auto* r = std::get_if<reservation>(&v)) {
                    ++admitted_count;
                    held.push_back(std::move(*r));
                }
                if (held.size() >= 4 || (i % 3 == 0 && !held.empty())) {
                    auto& r = held.front();
                    const double actual =
                        r.cost_usd * std::uniform_real_distribution<double>(0.2, 1.0)(rng);
                    l->settle(r, actual, 80);
                    held.erase(held.begin());
                }
            }
            for (auto& r : held) {
                l->settle(r, r.cost_usd, 100);
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    double total = 0;
    for (const auto& key : keys) {
        EXPECT_LE(l->spent_today(key), limit + max_cost) << key;
        EXPECT_GT(l->spent_today(key), limit / 2) << key;
        EXPECT_DOUBLE_EQ(l->reserved(key), 0.0) << key;
        EXPECT_DOUBLE_EQ(l->spent_this_month(key), l->spent_today(key)) << key;
        total += l->spent_today(key);
    }
    EXPECT_GT(admitted_count.load(), 0);
    double persisted = 0;
    for (const auto& row : persist.log()) {
        if (row.period.starts_with("d:")) {
            persisted += row.usd;
        }
    }
    EXPECT_NEAR(persisted, total, 1e-9);
}

} // namespace
} // namespace michi::guard
