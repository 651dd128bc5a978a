#pragma once
// The ledger shared by every replica through one Redis (store.redis): the same checks,
// in the same order and with the same words as the in-process ledger, each admission and
// each settlement one server-side script, so two replicas can never both take the last
// dollar or the last request of a minute. One per worker, on the worker's own connection.
//
// Admissions and settlements are batched per key: those of one worker that arrive while the
// key's previous batch is with Redis (or in the same turn of the event loop) go together as
// one script call, which runs them one after another exactly as separate calls would (each
// admission checked against the holds of those before it), so the guarantees are those of
// one call per request at a fraction of Redis's work.
//
// An admitted request's hold has a lease (hold_lease): the holds of a replica that died
// lapse by themselves instead of blocking the budget for good. A request that settles
// after its hold lapsed is still charged. A settlement that cannot reach Redis is retried
// (it is idempotent: a hold is settled once) for settle_retry_for before it is given up.

#include "michi/guard/ledger.hpp"
#include "michi/redis/key_layout.hpp"
#include "michi/redis/redis_client.hpp"

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

namespace michi::guard {

inline constexpr std::chrono::minutes hold_lease{15};
inline constexpr std::chrono::seconds settle_retry_for{30};
inline constexpr std::chrono::milliseconds redis_timeout{2000};

class redis_ledger final : public ledger {
public:
    redis_ledger(executor ex, redis::redis_url url, wall_clock now);
    ~redis_ledger() override;
    redis_ledger(const redis_ledger&) = delete;
    redis_ledger& operator=(const redis_ledger&) = delete;

    // CONTRACT order: daily budget, monthly budget, RPM, TPM, loop guard; when all pass
    // the request is counted and its estimates held. headers are filled in both cases.
    using admission = guard::admission;
    awaitable<admission> admit(const admission_request& req, rate_headers& headers);
    // Charges the actual cost and corrects the tokens; returns at once (sent in the
    // background, retried while Redis is unreachable).
    void settle(reservation& r, double actual_cost_usd, std::uint64_t actual_tokens) override;
    // Marks the key revoked in Redis (revoked_field): from now on every replica's
    // admission of it is refused, whenever its own copy of the keys learns of it.
    awaitable<error_code> revoke(std::string key_id);
    // The key's figures, or nullopt when Redis cannot be asked.
    awaitable<std::optional<key_usage>> usage(std::string key_id);
    // The ledger interface: every admission is asked of Redis.
    std::optional<admission> try_admit(const admission_request&, rate_headers&) override {
        return std::nullopt;
    }
    awaitable<admission> admit_async(const admission_request& req, rate_headers& headers) override {
        return admit(req, headers);
    }
    awaitable<std::optional<key_usage>> figures(std::string key_id) override {
        return usage(std::move(key_id));
    }
    awaitable<error_code> mark_revoked(std::string key_id) override {
        return revoke(std::move(key_id));
    }

    // Connects now rather than on the first request: loads the batch script (the first
    // admission's call then needs no second round trip), again each second until Redis
    // answers, then calls answered() once, on this ledger's loop. Returns at once.
    void start(std::function<void()> answered);

    // Settlements sent or waiting to be retried, not yet acknowledged by Redis.
    std::size_t unsettled() const { return unsettled_; }

    // Script calls sent so far (tests: how well admissions are batched).
    std::uint64_t calls() const { return calls_; }

private:
    struct script;
    struct admit_entry;
    struct settle_entry;
    struct key_batch;
    struct admit_answer;
    using limit_text = std::array<std::string, 6>;
    struct period_text {
        std::int64_t day_number = 0;
        std::string day, month;
    };
    const period_text& periods_at(std::chrono::system_clock::time_point t);
    static const script& batch_script();
    awaitable<std::tuple<error_code, redis::redis_value>> run(const script& s,
                                                              const redis::redis_command& tail);
    key_batch& batch_of(const std::string& key_id);
    void wake(const std::string& key_id, key_batch& b);
    void flush(const std::string& key_id);
    awaitable<void> send(std::string key_id, std::vector<admit_entry> admits,
                         std::vector<settle_entry> settles);
    awaitable<void> retry_later(std::string key_id, std::vector<settle_entry> settles);
    awaitable<void> connect(std::function<void()> answered);

    executor ex_;
    redis::redis_client client_;
    wall_clock now_;
    std::size_t unsettled_ = 0;
    std::uint64_t calls_ = 0;
    std::unordered_map<std::string, std::unique_ptr<key_batch>> batches_;
    std::string hold_prefix_; // random, per ledger: the holds' ids are it and a count
    std::uint64_t holds_ = 0;
    period_text periods_;
};

} // namespace michi::guard
