#pragma once
// The in-process ledger: budgets, RPM/TPM and the loop guard of every key in this process's
// memory, persisted to a spend store. Shared by every worker; sharded by key with short
// critical sections, never held across I/O. Time comes from an injected clock so tests can
// step across midnight and month ends.

#include "michi/guard/ledger.hpp"
#include "michi/guard/spend_store.hpp"

#include <memory>

namespace michi::guard {

class local_ledger final : public ledger {
public:
    // persist may be null (nothing persisted). Loads persisted spend.
    local_ledger(wall_clock now, spend_store* persist);
    ~local_ledger() override;
    local_ledger(const local_ledger&) = delete;
    local_ledger& operator=(const local_ledger&) = delete;

    // Checks in CONTRACT order — daily budget, monthly budget, RPM, TPM, loop guard —
    // and when all pass records the request and reserves its estimates. A request is
    // admitted while spend + in-flight reservations is below the limit.
    std::variant<reservation, refusal> admit(const admission_request& req, rate_headers& headers);
    // Settles to the actual usage (cost and tokens), replacing the estimates; persists
    // the cost to the windows of admission.
    void settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) override;

    // The ledger interface (this ledger answers at once).
    std::optional<admission> try_admit(const admission_request& req,
                                       rate_headers& headers) override;
    awaitable<admission> admit_async(const admission_request& req, rate_headers& headers) override;
    awaitable<std::optional<key_usage>> figures(std::string key_id) override;
    awaitable<error_code> mark_revoked(std::string key_id) override;

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

} // namespace michi::guard
