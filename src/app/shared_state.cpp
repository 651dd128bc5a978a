#include "michi/app/shared_state.hpp"

#include "michi/store/sqlite_store.hpp"

#include <algorithm>
#include <stdexcept>

namespace michi {
namespace {

// The CPU pool: one thread, two on a machine with four cores or more (the workers keep the
// rest), and the jobs it may hold: at a few milliseconds a megabyte (release build), 32
// multi-megabyte bodies are a wait of a second or so; more are refused with 503.
std::size_t cpu_threads() { return std::clamp(std::thread::hardware_concurrency() / 2, 1u, 2u); }
constexpr std::size_t cpu_max_jobs = 32;

} // namespace

shared_state::shared_state(std::shared_ptr<const pipeline::snapshot> rt, guard::wall_clock clock)
    : rt_(std::move(rt)), clock_(std::move(clock)),
      response_cache_(rt_.get()->cfg->cache.max_bytes), cpu_(cpu_threads(), cpu_max_jobs) {
    key_pools_.configure(*rt_.get()->cfg);
    const auto& sc = rt_.get()->cfg->store;
    if (!sc.redis.empty()) {
        std::string why;
        redis_url_ = redis::redis_url::parse(sc.redis, why);
        if (!redis_url_) {
            throw std::runtime_error("store.redis: " + why);
        }
    }
    store_ = std::make_unique<store::sqlite_store>(sc.sqlite, sc.flush_interval);
    ledger_ = std::make_unique<guard::local_ledger>(clock_, store_.get());
    request_log_ = std::make_unique<store::request_log>(
        sc.sqlite, sc.flush_interval,
        std::max(std::chrono::hours(1),
                 std::chrono::duration_cast<std::chrono::hours>(sc.log_retention)));
    key_registry_ = std::make_unique<store::key_registry>(sc.sqlite);
    key_sync_ = std::make_unique<store::key_sync>(*key_registry_, redis_url_);
    blocking_thread_ = std::thread([this] {
        auto guard = net::make_work_guard(blocking_);
        blocking_.run();
    });
}

shared_state::~shared_state() {
    cpu_.join();
    blocking_.stop();
    if (blocking_thread_.joinable()) {
        blocking_thread_.join();
    }
    if (store_) {
        store_->flush();
    }
    if (request_log_) {
        request_log_->flush();
    }
}

} // namespace michi
