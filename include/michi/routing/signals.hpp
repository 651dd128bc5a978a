#pragma once
// The live signals the strategies read, as the exchange reports them: for each route target,
// the requests in flight to it and its recent time to first byte (the upstream's response
// head), shared by every worker through atomics: no lock on the request path.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace michi::routing {

// How fast the average follows new samples: each moves it this share of the way, or more
// when the last sample is old (after latency_memory, a new one all but replaces it), so a
// target seen again after a while is judged by what it does now.
inline constexpr double latency_alpha = 0.3;
inline constexpr std::chrono::seconds latency_memory{10};

// One target's signals. Lock-free; alone on its cache line (every worker writes it).
class alignas(64) target_signals {
public:
    using clock = std::chrono::steady_clock;

    void started() noexcept { in_flight_.fetch_add(1, std::memory_order_relaxed); }
    void ended() noexcept { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
    // A time to first byte observed at `now`.
    void observe(std::chrono::microseconds ttfb, clock::time_point now) noexcept;

    std::int64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
    // The weighted average time to first byte; nullopt before the first sample.
    std::optional<std::chrono::microseconds> ttfb() const noexcept {
        const auto v = ewma_us_.load(std::memory_order_relaxed);
        if (v < 0) {
            return std::nullopt;
        }
        return std::chrono::microseconds(v);
    }
    std::uint64_t samples() const noexcept { return samples_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<std::int64_t> ewma_us_{-1}; // -1: no sample yet
    std::atomic<std::int64_t> last_ns_{0};  // when the last sample came (clock's epoch)
    std::atomic<std::uint64_t> samples_{0};
};

// The signals of every route target, by name, for the life of the process (so they outlive a
// config reload). Lock-free: a target's first appearance claims a slot with one
// compare-and-swap.
// Holds at most `capacity` targets (route targets come from the config: a bound no real
// config reaches); past it, find() answers null and those targets go unmeasured.
class signal_board {
public:
    static constexpr std::size_t capacity = 4096;

    signal_board();
    ~signal_board();
    signal_board(const signal_board&) = delete;
    signal_board& operator=(const signal_board&) = delete;

    // The target's signals, made on first use; null when the board is full.
    target_signals* find(std::string_view target);
    // The same without making it: null when the target was never measured.
    const target_signals* peek(std::string_view target) const;

private:
    struct slot;
    std::size_t probe_start(std::string_view target) const noexcept;

    std::unique_ptr<slot[]> slots_;
};

// One attempt as the strategies see it: counted in flight from its start to its end (this
// object's life), and its time to first byte, once its response head came.
class attempt_signal {
public:
    attempt_signal() = default;
    explicit attempt_signal(target_signals* s) noexcept : s_(s) {
        if (s_ != nullptr) {
            s_->started();
        }
    }
    attempt_signal(attempt_signal&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
    attempt_signal& operator=(attempt_signal&& o) noexcept {
        if (this != &o) {
            end();
            s_ = o.s_;
            o.s_ = nullptr;
        }
        return *this;
    }
    attempt_signal(const attempt_signal&) = delete;
    attempt_signal& operator=(const attempt_signal&) = delete;
    ~attempt_signal() { end(); }

    // The response head came `ttfb` after the attempt started (or it failed after that long:
    // a timeout counts as its time).
    void first_byte(std::chrono::steady_clock::duration ttfb,
                    std::chrono::steady_clock::time_point now) noexcept {
        if (s_ != nullptr) {
            s_->observe(std::chrono::duration_cast<std::chrono::microseconds>(ttfb), now);
        }
    }
    void end() noexcept {
        if (s_ != nullptr) {
            s_->ended();
            s_ = nullptr;
        }
    }

private:
    target_signals* s_ = nullptr;
};

} // namespace michi::routing
