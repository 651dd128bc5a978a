#pragma once
// The ledger's interface and its vocabulary: per-key USD budgets (UTC calendar day and month)
// with reserve-then-settle, RPM and TPM over a rolling 60 s, and the agent loop guard.

#include "michi/config/config.hpp"
#include "michi/core/net.hpp"

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
    std::string message;                 // says which limit/window and when it resets
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
    std::string id; // the hold's lease member in the shared ledger (Redis); empty in-process
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
    config::limits limits;   // effective limits (class defaults + key overrides)
    double est_cost_usd = 0; // estimated prompt + max output at the model's prices
    std::uint64_t est_tokens = 0;
    std::optional<std::uint64_t> loop_fingerprint; // hash of the body for agent keys
    // Charged nothing (a response cache hit): checked and counted as any request (RPM, the
    // loop guard), but the in-process ledger holds nothing; its reservation comes back settled.
    bool free = false;
};

// The ledger could not answer (the shared ledger's Redis unreachable or not answering): the
// request is refused with 503 rather than let through unguarded.
struct ledger_unavailable {
    std::string message;
};

using admission = std::variant<reservation, refusal, ledger_unavailable>;

// What the pipeline and the admin API ask of a ledger: the in-process one (local_ledger,
// shared by every worker) or the one shared by every replica through Redis (redis_ledger,
// one per worker).
class ledger {
public:
    virtual ~ledger() = default;
    // Checks in CONTRACT order (daily budget, monthly budget, RPM, TPM, loop guard) and when
    // all pass records the request and holds its estimates. The answer at once from a ledger
    // kept in this process; nullopt from one that must be asked (then admit_async).
    virtual std::optional<admission> try_admit(const admission_request& req,
                                               rate_headers& headers) = 0;
    virtual awaitable<admission> admit_async(const admission_request& req,
                                             rate_headers& headers) = 0;
    // Settles to the actual usage (cost and tokens), replacing the estimates; at once for
    // the caller (persisted or sent in the background).
    virtual void settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) = 0;
    // One key's figures now, or nullopt when the ledger cannot be asked.
    virtual awaitable<std::optional<key_usage>> figures(std::string key_id) = 0;
    // Marks a revoked key for every replica sharing the ledger (nothing to do in-process).
    virtual awaitable<error_code> mark_revoked(std::string key_id) = 0;
};

// "d:YYYY-MM-DD" / "m:YYYY-MM" for a UTC time point, and the next window start.
std::string day_period(std::chrono::system_clock::time_point t);
std::string month_period(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point next_day(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point next_month(std::chrono::system_clock::time_point t);

} // namespace michi::guard
