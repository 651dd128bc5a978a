#pragma once
// The random numbers routing draws (a weighted pick, a shuffle of ties, an exploration,
// backoff jitter): a worker's own generator.

#include <cstddef>
#include <cstdint>
#include <limits>

namespace michi::routing {

// Steele, Lea and Flood's SplitMix64, its upper 32 bits a number: good enough for spreading
// load (it passes BigCrush), one word of state and a handful of instructions a number, where
// Boost's taus88 takes some forty and a Mersenne twister a 2.5 KB state. A uniform random bit
// generator, for <random>'s distributions too.
class random_engine {
public:
    using result_type = std::uint32_t;

    explicit random_engine(std::uint64_t seed = 0) noexcept : state_(seed) {}

    static constexpr result_type min() noexcept { return 0; }
    static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

    result_type operator()() noexcept { return static_cast<result_type>(next64() >> 32); }

    // 64 random bits at once.
    std::uint64_t next64() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

// Random 16-bit numbers, four from each 64-bit draw: what breaks ties between targets (each
// target gets one; the tied ones go in the order of theirs), so that targets that tie come in
// a uniformly random order for a draw per four targets, not a shuffle's draw per target. Two
// equal numbers (a chance of 1 in 65,536 for a pair) leave that pair in index order.
class tie_breaks {
public:
    explicit tie_breaks(random_engine& rng) noexcept : rng_(rng) {}

    std::uint16_t next() noexcept {
        if (left_ == 0) {
            bits_ = rng_.next64();
            left_ = 4;
        }
        const auto r = static_cast<std::uint16_t>(bits_);
        bits_ >>= 16;
        --left_;
        return r;
    }

private:
    random_engine& rng_;
    std::uint64_t bits_ = 0;
    int left_ = 0;
};

} // namespace michi::routing
