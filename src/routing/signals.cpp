#include "michi/routing/signals.hpp"

#include <cmath>
#include <functional>

namespace michi::routing {
namespace {

// e^-x: under load samples come microseconds apart (x near 0), where four terms of its series
// are exact to 1e-5 at a tenth of exp's cost.
double decay(double x) noexcept {
    if (x < 0.1) {
        return 1 - x * (1 - x * (0.5 - x * (1.0 / 6)));
    }
    return std::exp(-x);
}

} // namespace

void target_signals::observe(std::chrono::microseconds ttfb, clock::time_point now) noexcept {
    const std::int64_t sample = std::max<std::int64_t>(0, ttfb.count());
    const std::int64_t now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    const std::int64_t last_ns = last_ns_.exchange(now_ns, std::memory_order_relaxed);
    // The older the last sample, the more this one counts.
    const double x = static_cast<double>(std::max<std::int64_t>(0, now_ns - last_ns)) / 1e9 /
                     static_cast<double>(latency_memory.count());
    const double keep = (1 - latency_alpha) * decay(x);
    std::int64_t old = ewma_us_.load(std::memory_order_relaxed);
    std::int64_t next = 0;
    do {
        next = old < 0 ? sample
                       : static_cast<std::int64_t>(keep * static_cast<double>(old) +
                                                   (1 - keep) * static_cast<double>(sample) + 0.5);
    } while (!ewma_us_.compare_exchange_weak(old, next, std::memory_order_relaxed));
    samples_.fetch_add(1, std::memory_order_relaxed);
}

// A slot of the open-addressed table: its name is claimed once and never changes.
struct signal_board::slot {
    std::atomic<const std::string*> name{nullptr}; // owned by the slot
    target_signals signals;
    ~slot() { delete name.load(std::memory_order_relaxed); }
};

signal_board::signal_board() : slots_(std::make_unique<slot[]>(capacity)) {}
signal_board::~signal_board() = default;

std::size_t signal_board::probe_start(std::string_view target) const noexcept {
    return std::hash<std::string_view>{}(target) % capacity;
}

const target_signals* signal_board::peek(std::string_view target) const {
    const std::size_t start = probe_start(target);
    for (std::size_t i = 0; i < capacity; ++i) {
        const slot& s = slots_[(start + i) % capacity];
        const std::string* name = s.name.load(std::memory_order_acquire);
        if (name == nullptr) {
            return nullptr;
        }
        if (*name == target) {
            return &s.signals;
        }
    }
    return nullptr;
}

target_signals* signal_board::find(std::string_view target) {
    const std::size_t start = probe_start(target);
    std::unique_ptr<std::string> mine; // made on a first appearance only
    for (std::size_t i = 0; i < capacity; ++i) {
        slot& s = slots_[(start + i) % capacity];
        const std::string* name = s.name.load(std::memory_order_acquire);
        if (name == nullptr) {
            if (!mine) {
                mine = std::make_unique<std::string>(target);
            }
            // Two workers claiming the same empty slot: one wins; the other sees its name.
            if (s.name.compare_exchange_strong(name, mine.get(), std::memory_order_acq_rel)) {
                mine.release();
                return &s.signals;
            }
        }
        if (*name == target) {
            return &s.signals;
        }
    }
    return nullptr;
}

} // namespace michi::routing
