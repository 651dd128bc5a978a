#pragma once
// The ledger: per-key USD budgets (UTC calendar day and month) with reserve-then-settle,
// RPM and TPM over a rolling 60 s, and the agent loop guard. Shared by every worker;
// sharded by key with short critical sections, never held across I/O. Time comes from
// an injected clock so tests can step across midnight and month ends.

#include "michi/config/config.hpp"
#include "michi/store/spend_store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace michi::guard {

using wall_clock = std::function<std::chrono::system_clock::time_point()>;

// revoked: only from the ledger shared in Redis, which learns of a revocation made on another
// replica before this replica's copy of the keys does (answered like an unknown key, 401).
enum class refusal_kind { budget_daily, budget_monthly, rpm, tpm, loop, revoked };

struct refusal {
    refusal_kind kind;
    std::string message;               // says which limit/window and when it resets
    std::chrono::seconds retry_after{0}; // for rpm/tpm/loop (429); budget: seconds to reset
};

// OpenAI's x-ratelimit-* values for one response (only for limits the key has).
struct rate_headers {
    bool has_requests = false;
    std::uint64_t limit_requests = 0;
    std::uint64_t remaining_requests = 0;
    std::chrono::seconds reset_requests{0};
    bool has_tokens = false;
    std::uint64_t limit_tokens = 0;
    std::uint64_t remaining_tokens = 0;
    std::chrono::seconds reset_tokens{0};
};

// An admitted request's hold on the budgets and the TPM window, settled exactly once.
struct reservation {
    std::string id;    // the hold's name in the shared ledger (Redis); empty in-process
    std::string key_id;
    std::string day;   // "d:YYYY-MM-DD" at admission
    std::string month; // "m:YYYY-MM" at admission
    double cost_usd = 0;
    std::uint64_t tokens = 0;
    std::chrono::system_clock::time_point at{};
    bool settled = false;
};

// One key's figures now (admin API, dashboard).
struct key_usage {
    double spent_today = 0;
    double spent_this_month = 0;
    double reserved = 0; // USD held by requests in flight
    std::uint64_t requests_last_minute = 0;
    std::uint64_t tokens_last_minute = 0;
};

// What one request asks of the ledger.
struct admission_request {
    std::string key_id;
    config::limits limits;       // effective limits (class defaults + key overrides)
    double est_cost_usd = 0;     // estimated prompt + max output at the model's prices
    std::uint64_t est_tokens = 0;
    std::optional<std::uint64_t> loop_fingerprint; // hash of the body for agent keys
};

class ledger {
public:
    // persist may be null (nothing persisted). Loads persisted spend.
    ledger(wall_clock now, store::spend_store* persist);
    ~ledger();
    ledger(const ledger&) = delete;
    ledger& operator=(const ledger&) = delete;

    // Checks in CONTRACT order — daily budget, monthly budget, RPM, TPM, loop guard —
    // and when all pass records the request and reserves its estimates. A request is
    // admitted while spend + in-flight reservations is below the limit.
    std::variant<reservation, refusal> admit(const admission_request& req, rate_headers& headers);
    // Settles to the actual usage (cost and tokens), replacing the estimates; persists
    // the cost to the windows of admission.
    void settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens);
    // Spend settled so far in the current window of each kind (tests, admin).
    double spent_today(const std::string& key_id) const;
    double spent_this_month(const std::string& key_id) const;
    // Reservations not yet settled, in USD.
    double reserved(const std::string& key_id) const;
    // Requests admitted and tokens counted in the rolling 60 s window now (tests, admin).
    std::uint64_t requests_last_minute(const std::string& key_id) const;
    std::uint64_t tokens_last_minute(const std::string& key_id) const;
    // All of the above at once.
    key_usage usage(const std::string& key_id) const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// "d:YYYY-MM-DD" / "m:YYYY-MM" for a UTC time point, and the next window start.
std::string day_period(std::chrono::system_clock::time_point t);
std::string month_period(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point next_day(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point next_month(std::chrono::system_clock::time_point t);

} // namespace michi::guard
