#pragma once
// Tokens one request used, sorted the way providers bill them: plain input, input read from
// the prompt cache, input written to it (5 minute and 1 hour lifetimes), and output.

#include <algorithm>
#include <cstdint>
#include <limits>

namespace michi {

// What a request used, by billing kind. `input` counts every input token, the cached ones
// included; the cache fields are parts of it. `output` counts every output token, reasoning
// included; `reasoning` is the part of it spent thinking (reported, billed as output).
struct token_usage {
    std::uint64_t input = 0;
    std::uint64_t cache_read = 0;
    std::uint64_t cache_write_5m = 0; // also writes whose lifetime the provider did not say
    std::uint64_t cache_write_1h = 0;
    std::uint64_t output = 0;
    std::uint64_t reasoning = 0;

    static constexpr std::uint64_t sum(std::uint64_t a, std::uint64_t b) noexcept {
        return a > std::numeric_limits<std::uint64_t>::max() - b
                   ? std::numeric_limits<std::uint64_t>::max()
                   : a + b;
    }
    std::uint64_t cache_write() const noexcept { return sum(cache_write_5m, cache_write_1h); }
    std::uint64_t cached() const noexcept { return sum(cache_read, cache_write()); }
    // Every input token: `input`, or the cached parts when a provider reported more of them.
    std::uint64_t total_input() const noexcept { return std::max(input, cached()); }
    // Input read and written outside the cache, at the plain input price.
    std::uint64_t uncached_input() const noexcept { return total_input() - cached(); }

    bool operator==(const token_usage&) const = default;
};

} // namespace michi
