// libFuzzer target for the price-file readers (prices.file is whatever an operator downloaded):
// whatever the text, Michi's YAML reader and LiteLLM's JSON reader each return a table or a
// list of problems, never both, never neither, and never throw or crash; every price they
// accept is finite and non-negative, and costs at those prices never overflow into nonsense.

#include "michi/config/price_table.hpp"
#include "michi/routing/pricing.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using namespace michi;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "price_file_fuzz: %s\n", what);
        std::abort();
    }
}

void check_price(const std::optional<double>& p) {
    check(!p || (std::isfinite(*p) && *p >= 0), "a price that is negative or not finite");
}

void check_table(const config::price_load_result& r) {
    check((r.table != nullptr) == r.errors.empty(), "a table and problems, or neither");
    if (!r.table) {
        return;
    }
    token_usage u;
    u.input = 300000;
    u.cache_read = 200000;
    u.cache_write_5m = 30000;
    u.cache_write_1h = 20000;
    u.output = 5000;
    for (const auto& e : r.table->entries()) {
        check(r.table->find_exact(e.name) != nullptr, "an entry that cannot be found");
        for (const auto* p : {&e.input_per_mtok, &e.output_per_mtok, &e.cache_read_per_mtok,
                              &e.cache_write_per_mtok, &e.cache_write_1h_per_mtok}) {
            check_price(*p);
        }
        config::model_config m;
        m.input_per_mtok = e.input_per_mtok;
        m.output_per_mtok = e.output_per_mtok;
        m.cache_read_per_mtok = e.cache_read_per_mtok;
        m.cache_write_per_mtok = e.cache_write_per_mtok;
        m.cache_write_1h_per_mtok = e.cache_write_1h_per_mtok;
        m.long_context = e.long_context;
        const double cost = routing::cost_usd(m, u);
        check(std::isfinite(cost) && cost >= 0, "a cost that is negative or not finite");
        check(std::isfinite(routing::cache_savings_usd(m, u)), "savings that are not finite");
        (void)r.table->find("p", "openai", e.name);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_table(config::parse_michi_prices(text, "fuzz.yaml", config::price_source::file));
    check_table(
        config::parse_litellm_prices(text, "fuzz.json", config::price_source::file, "2026-12-01"));
    check_table(config::parse_price_file(text, "fuzz", config::price_source::file, "2026-12-01"));
    return 0;
}
