#include "michi/routing/retry.hpp"

#include <algorithm>
#include <numeric>
#include <random>

namespace michi::routing {

void reorder(std::vector<candidate>& candidates, std::vector<std::size_t>& order) {
    reorder(candidates, std::span<std::size_t>(order));
}

void reorder(std::vector<candidate>& candidates, std::span<std::size_t> order) {
    // Cycle by cycle, one candidate held aside; a place done points at itself.
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (order[i] == i) {
            continue;
        }
        candidate held = std::move(candidates[i]);
        std::size_t j = i;
        for (;;) {
            const std::size_t from = order[j];
            order[j] = j;
            if (from == i) {
                candidates[j] = std::move(held);
                break;
            }
            candidates[j] = std::move(candidates[from]);
            j = from;
        }
    }
}

bool cooling_last(std::vector<candidate>& candidates, const cooldowns& cd) {
    if (!cd.any()) {
        return false;
    }
    const auto now = std::chrono::steady_clock::now();
    thread_local std::vector<std::chrono::steady_clock::time_point> until;
    thread_local std::vector<std::size_t> order;
    until.clear();
    bool any_cooling = false;
    for (const auto& c : candidates) {
        until.push_back(cd.until(c.model->name, now)); // now when not cooling
        any_cooling = any_cooling || until.back() > now;
    }
    if (!any_cooling) {
        return false;
    }
    order.resize(candidates.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return until[a] < until[b]; });
    const bool first_changed = order.front() != 0;
    reorder(candidates, order);
    return first_changed;
}

std::chrono::milliseconds backoff(unsigned n, random_engine& rng) {
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
