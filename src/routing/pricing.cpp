#include "michi/routing/pricing.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace michi::routing {
namespace {

// Wide enough for any token count times any price: no product or sum below overflows.
__extension__ using u128 = unsigned __int128;

// A price in micro-dollars per million tokens, which is pico-dollars per token: every list
// price is a whole number of these, and products with token counts stay exact.
std::uint64_t pico_per_token(const std::optional<double>& usd_per_mtok) noexcept {
    constexpr double max = 1e12; // $1M per token: past any real price, far below overflow
    if (!usd_per_mtok || !std::isfinite(*usd_per_mtok) || *usd_per_mtok <= 0) {
        return 0;
    }
    const double pico = *usd_per_mtok * 1e6;
    if (pico >= max) {
        return static_cast<std::uint64_t>(max);
    }
    // To the nearest, halves up (as llround, without its call): the difference is exact.
    auto whole = static_cast<std::uint64_t>(pico);
    if (pico - static_cast<double>(whole) >= 0.5) {
        ++whole;
    }
    return whole;
}

// The prices that apply to one request, in pico-dollars per token.
struct rates {
    std::uint64_t input = 0;
    std::uint64_t output = 0;
    std::uint64_t cache_read = 0;
    std::uint64_t cache_write = 0;
    std::uint64_t cache_write_1h = 0;
};

rates rates_for(const config::model_config& m, const token_usage& u) noexcept {
    auto input = m.input_per_mtok;
    auto output = m.output_per_mtok;
    auto read = m.cache_read_per_mtok;
    auto write = m.cache_write_per_mtok;
    auto write_1h = m.cache_write_1h_per_mtok;
    if (m.long_context && u.total_input() > m.long_context->above_input_tokens) {
        const auto& lc = *m.long_context;
        // The tier lists what changes above the threshold; the rest stays.
        const auto over = [](std::optional<double>& price, const std::optional<double>& tier) {
            if (tier) {
                price = tier;
            }
        };
        over(input, lc.input_per_mtok);
        over(output, lc.output_per_mtok);
        over(read, lc.cache_read_per_mtok);
        over(write, lc.cache_write_per_mtok);
        over(write_1h, lc.cache_write_1h_per_mtok);
    }
    rates r;
    r.input = pico_per_token(input);
    r.output = pico_per_token(output);
    r.cache_read = read ? pico_per_token(read) : r.input;
    r.cache_write = write ? pico_per_token(write) : r.input;
    r.cache_write_1h = write_1h ? pico_per_token(write_1h) : r.cache_write;
    return r;
}

// Pico-dollars to the nearest nano-dollar, saturating.
std::uint64_t to_nano(u128 pico) noexcept {
    const u128 nano = (pico + 500) / 1000;
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    return nano > max ? max : static_cast<std::uint64_t>(nano);
}

u128 cost_pico(const rates& r, const token_usage& u) noexcept {
    return u128(u.uncached_input()) * r.input + u128(u.cache_read) * r.cache_read +
           u128(u.cache_write_5m) * r.cache_write + u128(u.cache_write_1h) * r.cache_write_1h +
           u128(u.output) * r.output;
}

} // namespace

bool is_priced(const config::model_config& m) noexcept {
    return m.input_per_mtok.has_value() && m.output_per_mtok.has_value();
}

std::uint64_t cost_nano_usd(const config::model_config& m, const token_usage& u) noexcept {
    return to_nano(cost_pico(rates_for(m, u), u));
}

double cost_usd(const config::model_config& m, const token_usage& u) noexcept {
    return static_cast<double>(cost_nano_usd(m, u)) / 1e9;
}

double cost_usd(const config::model_config& m, std::uint64_t in, std::uint64_t out) noexcept {
    token_usage u;
    u.input = in;
    u.output = out;
    return cost_usd(m, u);
}

std::string usd_text(std::uint64_t nano) {
    // Whole dollars, then the nine decimals without their trailing zeros: in one buffer,
    // short enough for the string's own storage.
    char text[32];
    char* end = std::to_chars(text, text + 20, nano / 1'000'000'000).ptr;
    if (std::uint64_t frac = nano % 1'000'000'000; frac != 0) {
        *end++ = '.';
        int digits = 9;
        while (frac % 10 == 0) {
            frac /= 10;
            --digits;
        }
        for (int i = digits - 1; i >= 0; --i, frac /= 10) {
            end[i] = static_cast<char>('0' + frac % 10);
        }
        end += digits;
    }
    return std::string(text, end);
}

namespace {

// What the usage saved by caching, in nano-dollars (negative: cost more), given its rates
// and what it was charged.
double savings_usd(const rates& r, const token_usage& u, std::uint64_t charged) noexcept {
    const std::uint64_t uncached =
        to_nano(u128(u.total_input()) * r.input + u128(u.output) * r.output);
    return uncached >= charged ? static_cast<double>(uncached - charged) / 1e9
                               : -static_cast<double>(charged - uncached) / 1e9;
}

} // namespace

double cache_savings_usd(const config::model_config& m, const token_usage& u) noexcept {
    const rates r = rates_for(m, u);
    return savings_usd(r, u, to_nano(cost_pico(r, u)));
}

priced_usage price(const config::model_config& m, const token_usage& u) noexcept {
    const rates r = rates_for(m, u);
    priced_usage p;
    p.cost_nano = to_nano(cost_pico(r, u));
    p.saved_usd = savings_usd(r, u, p.cost_nano);
    return p;
}

std::uint64_t expected_output_tokens(const nlohmann::json& body) noexcept {
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
        const auto it = body.find(field);
        if (it != body.end() && it->is_number_unsigned()) {
            return it->get<std::uint64_t>();
        }
    }
    return default_output_estimate;
}

} // namespace michi::routing
