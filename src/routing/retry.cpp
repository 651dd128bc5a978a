#include "michi/routing/retry.hpp"

#include <algorithm>

namespace michi::routing {

std::vector<const candidate*> order_candidates(const dispatch_plan& plan, const cooldowns& cd) {
    if (!cd.any()) {
        return {};
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<std::chrono::steady_clock::time_point, const candidate*>> cooling;
    for (const auto& c : plan.candidates) {
        if (cd.cooling(c.model->name, now)) {
            cooling.emplace_back(cd.until(c.model->name, now), &c);
        }
    }
    std::vector<const candidate*> order;
    if (cooling.empty()) {
        return order;
    }
    for (const auto& c : plan.candidates) {
        if (std::none_of(cooling.begin(), cooling.end(),
                         [&](const auto& entry) { return entry.second == &c; })) {
            order.push_back(&c);
        }
    }
    std::stable_sort(cooling.begin(), cooling.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [until, c] : cooling) {
        order.push_back(c);
    }
    return order;
}

std::chrono::milliseconds backoff(unsigned n, std::mt19937& rng) {
    const auto exp = backoff_base * (1u << std::min(n - 1, 8u));
    const auto capped = std::min<std::chrono::milliseconds>(exp, backoff_cap);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    return std::chrono::milliseconds(
        static_cast<long>(static_cast<double>(capped.count()) * jitter(rng)));
}

std::chrono::milliseconds retry_after(std::string_view header) noexcept {
    unsigned long secs = 0;
    for (char ch : header) {
        if (ch < '0' || ch > '9') {
            return std::chrono::milliseconds{0};
        }
        secs = secs * 10 + static_cast<unsigned long>(ch - '0');
        if (secs > 86400) {
            break;
        }
    }
    return std::chrono::seconds(std::min(secs, 86400UL));
}

} // namespace michi::routing
