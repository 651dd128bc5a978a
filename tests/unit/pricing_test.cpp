// Costs as providers bill them, exact to the nano-dollar: one usage fixture per provider shape
// (tests/fixtures/usage/), read by its reader and priced with the shipped table's prices.

#include "michi/config/config.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/usage.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/stream/sse.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#ifndef MICHI_FIXTURES_DIR
#error "MICHI_FIXTURES_DIR must name tests/fixtures"
#endif

namespace michi {
namespace {

using json = nlohmann::json;

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(MICHI_FIXTURES_DIR) + "/usage/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << "missing fixture " << name;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A config serving models of every provider type from the shipped table, and two models
// priced only by the config (no cache prices at all).
std::shared_ptr<const config::config> priced_config() {
    const auto r = config::load_string(R"(
providers:
  openai:   { type: openai, base_url: "https://api.openai.com/v1" }
  claude:   { type: anthropic, base_url: "https://api.anthropic.com" }
  google:   { type: gemini, base_url: "https://generativelanguage.googleapis.com" }
  deepseek: { type: openai, base_url: "https://api.deepseek.com/v1" }
models:
  openai/house-model: { input_per_mtok: 2, output_per_mtok: 8 }
  claude/house-model: { input_per_mtok: 1, output_per_mtok: 5 }
)");
    EXPECT_TRUE(r.cfg) << (r.errors.empty() ? "" : r.errors.front());
    return r.cfg;
}

config::model_config model(const std::string& name) {
    static const auto cfg = priced_config();
    const auto m = cfg->find_model(name);
    EXPECT_TRUE(m) << name;
    return m.value_or(config::model_config{});
}

using reader = std::function<std::optional<token_usage>(const json&)>;

const reader openai_chat = [](const json& j) { return providers::read_openai_chat_usage(j); };
const reader responses = [](const json& j) { return providers::read_responses_usage(j); };
const reader anthropic = [](const json& j) { return providers::read_anthropic_usage(j); };
const reader gemini = [](const json& j) { return providers::read_gemini_usage(j); };

struct cost_case {
    const char* what;
    const char* fixture;
    reader read;
    const char* model;
    token_usage tokens; // what the reader must find
    std::uint64_t nano; // what the tokens cost, in 10^-9 USD
};

TEST(PricingTest, EveryUsageShapeCostsWhatTheProviderBills) {
    // token_usage: input (all kinds), cache_read, cache_write_5m, cache_write_1h, output
    // (reasoning included), reasoning.
    const cost_case cases[] = {
        // 2000 x $2.50 + 10000 cached x $0.25 + 800 x $15 (per million).
        {"OpenAI chat, cached and reasoning tokens",
         "openai_chat.json",
         openai_chat,
         "openai/gpt-5.4",
         {12000, 10000, 0, 0, 800, 500},
         19'500'000},
        // DeepSeek reports its cache hits apart: 904 x $0.28 + 4096 x $0.028 + 300 x $0.42.
        {"DeepSeek cache hits",
         "deepseek_chat.json",
         openai_chat,
         "deepseek/deepseek-v3",
         {5000, 4096, 0, 0, 300, 0},
         493'808},
        // Codex on the Responses API: 4000 x $1.25 + 32000 x $0.125 + 1500 x $10.
        {"Responses API",
         "responses.json",
         responses,
         "openai/gpt-5.1-codex",
         {36000, 32000, 0, 0, 1500, 1024},
         24'000'000},
        // A Claude Code turn: 100k input, 90% read from the cache: 10000 x $3 + 90000 x $0.30 +
        // 1000 x $15 = $0.072 (the old formula charged $0.315).
        {"Anthropic, 90% of the input from the cache",
         "anthropic_agent_turn.json",
         anthropic,
         "claude/claude-sonnet-4-5",
         {100000, 90000, 0, 0, 1000, 0},
         72'000'000},
        // 50 x $1 + 20000 written for 5 min x $1.25 + 10000 for 1 h x $2 + 200 x $5.
        {"Anthropic cache writes, 5 min and 1 h",
         "anthropic_cache_write.json",
         anthropic,
         "claude/claude-haiku-4-5",
         {30050, 0, 20000, 10000, 200, 0},
         46'050'000},
        // 200001 input tokens: above 200k, every token at the long-context prices:
        // 1 x $6 + 200000 x $0.60 + 1000 x $22.50.
        {"Claude Sonnet 4.5 above 200k",
         "anthropic_long_context.json",
         anthropic,
         "claude/claude-sonnet-4-5",
         {200001, 200000, 0, 0, 1000, 0},
         142'506'000},
        // Exactly 200000: not above, the usual prices: 200000 x $0.30 + 1000 x $15.
        {"Claude Sonnet 4.5 at 200k",
         "anthropic_at_threshold.json",
         anthropic,
         "claude/claude-sonnet-4-5",
         {200000, 200000, 0, 0, 1000, 0},
         75'000'000},
        // 250000 input: 150000 x $2.50 + 100000 cached x $0.25 + (2000 + 1000 thoughts) x $15.
        {"Gemini 2.5 Pro above 200k",
         "gemini_long_context.json",
         gemini,
         "google/gemini-2.5-pro",
         {250000, 100000, 0, 0, 3000, 1000},
         445'000'000},
        // 200000 input: 100000 x $1.25 + 100000 x $0.125 + 3000 x $10.
        {"Gemini 2.5 Pro at 200k",
         "gemini_at_threshold.json",
         gemini,
         "google/gemini-2.5-pro",
         {200000, 100000, 0, 0, 3000, 1000},
         167'500'000},
        // Thinking tokens are output: 1200 x $0.30 + (150 + 300) x $2.50.
        {"Gemini thoughts as output",
         "gemini_flash.json",
         gemini,
         "google/gemini-2.5-flash",
         {1200, 0, 0, 0, 450, 300},
         1'485'000},
        // No cache prices: cached tokens at the input price: 12000 x $2 + 800 x $8.
        {"no cache prices, cache reads",
         "openai_chat.json",
         openai_chat,
         "openai/house-model",
         {12000, 10000, 0, 0, 800, 500},
         30'400'000},
        // ... and cache writes likewise: 30050 x $1 + 200 x $5.
        {"no cache prices, cache writes",
         "anthropic_cache_write.json",
         anthropic,
         "claude/house-model",
         {30050, 0, 20000, 10000, 200, 0},
         31'050'000},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        const auto read = c.read(json::parse(fixture(c.fixture)));
        ASSERT_TRUE(read);
        EXPECT_EQ(*read, c.tokens);
        const auto m = model(c.model);
        EXPECT_EQ(routing::cost_nano_usd(m, *read), c.nano);
        EXPECT_DOUBLE_EQ(routing::cost_usd(m, *read), static_cast<double>(c.nano) / 1e9);
    }
}

TEST(PricingTest, NanoDollarsRoundToTheNearest) {
    const auto flash = model("deepseek/deepseek-v4-flash"); // cache reads $0.0028 per million
    token_usage u;
    u.input = 1;
    u.cache_read = 1;
    EXPECT_EQ(routing::cost_nano_usd(flash, u), 3u); // 2.8 nano-dollars
    u.input = u.cache_read = 5;
    EXPECT_EQ(routing::cost_nano_usd(flash, u), 14u); // 14.0
    const auto nano = model("openai/gpt-5-nano");     // $0.05 in: 50 nano-dollars a token
    EXPECT_EQ(routing::cost_nano_usd(nano, {1, 0, 0, 0, 0, 0}), 50u);
    // A billion tokens of each kind at Opus prices: exact, no overflow.
    const auto opus = model("claude/claude-opus-4-1");
    const token_usage big{4'000'000'000, 1'000'000'000, 1'000'000'000,
                          1'000'000'000, 1'000'000'000, 0};
    // 1e9 x (15 + 1.50 + 18.75 + 30 + 75) / 1e6 USD.
    EXPECT_EQ(routing::cost_nano_usd(opus, big), 140'250'000'000'000u);
}

TEST(PricingTest, TheOldCallIsInputAndOutputOnly) {
    const auto sonnet = model("claude/claude-sonnet-4-5");
    EXPECT_DOUBLE_EQ(routing::cost_usd(sonnet, 100000, 1000), 0.315);
    config::model_config unpriced;
    EXPECT_FALSE(routing::is_priced(unpriced));
    EXPECT_EQ(routing::cost_usd(unpriced, 1000, 1000), 0.0);
}

TEST(PricingTest, UsdTextIsExact) {
    EXPECT_EQ(routing::usd_text(72'000'000), "0.072");
    EXPECT_EQ(routing::usd_text(0), "0");
    EXPECT_EQ(routing::usd_text(1), "0.000000001");
    EXPECT_EQ(routing::usd_text(142'506'000), "0.142506");
    EXPECT_EQ(routing::usd_text(12'000'000'000), "12");
    EXPECT_EQ(routing::usd_text(18'446'744'073'709'551'615u), "18446744073.709551615");
    EXPECT_EQ(routing::usd_text(1'000'000'001), "1.000000001");
    EXPECT_EQ(routing::usd_text(1'100'000'000), "1.1");
    EXPECT_EQ(routing::usd_text(999'999'999), "0.999999999");
    EXPECT_EQ(routing::usd_text(10'000'000'000), "10");
}

// A price is kept to the micro-dollar per million tokens, rounded to the nearest (halves up):
// 1000 tokens at it cost that many nano-dollars.
TEST(PricingTest, PricesRoundToTheNearestMicroDollarPerMillion) {
    for (const double usd :
         {0.0, 1e-7, 4e-7, 5e-7, 4.999999e-7, 0.49999999999999994e-6, 1.5e-6, 2.5e-6, 0.15, 0.075,
          3.0, 3.0000005, 14.9999995, 1234.5678915, 1e5 + 5e-7, 1e6}) {
        config::model_config m;
        m.input_per_mtok = usd;
        m.output_per_mtok = 0.0;
        token_usage u;
        u.input = 1000;
        EXPECT_EQ(routing::cost_nano_usd(m, u), static_cast<std::uint64_t>(std::llround(usd * 1e6)))
            << usd;
    }
    config::model_config huge;
    huge.input_per_mtok = 1e9; // past $1M per token: held there
    token_usage one;
    one.input = 1;
    EXPECT_EQ(routing::cost_nano_usd(huge, one), 1'000'000'000u); // $1
}

TEST(PricingTest, WhatCachingSaved) {
    const auto sonnet = model("claude/claude-sonnet-4-5");
    // The agent turn: $0.315 at the input price, $0.072 charged.
    const token_usage turn{100000, 90000, 0, 0, 1000, 0};
    EXPECT_DOUBLE_EQ(routing::cache_savings_usd(sonnet, turn), 0.243);
    // A first turn that only writes the cache costs more than no cache: 10000 x ($3.75 - $3).
    const token_usage write{10000, 0, 10000, 0, 0, 0};
    EXPECT_DOUBLE_EQ(routing::cache_savings_usd(sonnet, write), -0.0075);
    // Both at once: the same figures.
    for (const auto& u : {turn, write}) {
        const auto p = routing::price(sonnet, u);
        EXPECT_EQ(p.cost_nano, routing::cost_nano_usd(sonnet, u));
        EXPECT_EQ(p.saved_usd, routing::cache_savings_usd(sonnet, u));
    }
}

TEST(PricingTest, LongContextPricesLeftOutStayAsBelow) {
    config::model_config m;
    m.input_per_mtok = 3.0;
    m.output_per_mtok = 15.0;
    m.cache_read_per_mtok = 0.30;
    m.long_context = config::long_context_prices{1000,         6.0,          std::nullopt,
                                                 std::nullopt, std::nullopt, std::nullopt};
    // 2000 input (1000 cached) above 1000: input $6, cache reads and output unchanged.
    EXPECT_EQ(routing::cost_nano_usd(m, {2000, 1000, 0, 0, 100, 0}),
              1000u * 6000 + 1000u * 300 + 100u * 15000);
    // 1 h writes without a price of their own cost what 5 min writes cost.
    m.cache_write_per_mtok = 3.75;
    EXPECT_EQ(routing::cost_nano_usd(m, {10, 0, 0, 10, 0, 0}), 10u * 3750);
}

// A streamed Anthropic request is charged exactly as the same request unstreamed: the
// stream's message_start and message_delta usage add up to the response's usage.
TEST(PricingTest, StreamedAndUnstreamedCostTheSame) {
    providers::usage_info whole;
    providers::anthropic::to_openai(json::parse(fixture("anthropic_response.json")), "m", "id", 0,
                                    whole);
    auto translator = providers::anthropic::make_stream("id", "m", 0, true);
    stream::sse_parser parser;
    std::vector<std::string> chunks;
    parser.feed(fixture("anthropic_stream.sse"),
                [&](stream::sse_event&& ev) { translator->on_event(ev, chunks); });
    const providers::usage_info streamed = translator->usage();
    ASSERT_TRUE(whole.known);
    ASSERT_TRUE(streamed.known);
    EXPECT_EQ(streamed.tokens(), whole.tokens());
    const auto sonnet = model("claude/claude-sonnet-4-5");
    // 10000 x $3 + 88000 x $0.30 + 2000 written for 1 h x $6 + 1000 x $15.
    EXPECT_EQ(routing::cost_nano_usd(sonnet, whole.tokens()), 83'400'000u);
    EXPECT_EQ(routing::cost_nano_usd(sonnet, streamed.tokens()), 83'400'000u);
}

} // namespace
} // namespace michi
