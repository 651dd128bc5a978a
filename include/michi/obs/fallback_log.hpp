#pragma once
// The most recent fallbacks (a target that failed and what served instead), for the admin
// API's routes view. Shared by every worker under a short lock.

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace michi::obs {

struct fallback_event {
    std::int64_t ts_ms = 0;
    std::string request_id;
    std::string route;
    std::string from;
    std::string to;
    std::string reason;
};

class fallback_log {
public:
    static constexpr std::size_t kept = 50;

    void add(fallback_event e) {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(e));
        while (events_.size() > kept) {
            events_.pop_front();
        }
    }
    // Newest first.
    std::vector<fallback_event> recent() const {
        std::lock_guard lock(mu_);
        return {events_.rbegin(), events_.rend()};
    }

private:
    mutable std::mutex mu_;
    std::deque<fallback_event> events_;
};

} // namespace michi::obs
