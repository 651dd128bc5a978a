// Config: provider key pools, route strategies and weights, and the response cache, with
// their error messages word for word.
#include "michi/config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

namespace michi::config {
namespace {

using namespace std::chrono_literals;

load_result load(const std::string& yaml, std::map<std::string, std::string> vars = {}) {
    return load_string(yaml, [vars](const std::string& name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional(it->second);
    });
}

std::string joined(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) {
        out += "\n  " + e;
    }
    return out.empty() ? " (none)" : out;
}

::testing::AssertionResult has_error(const load_result& r, const std::string& message) {
    if (std::ranges::find(r.errors, message) != r.errors.end()) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "missing error: " << message << "\ngot:" << joined(r.errors);
}

const std::string providers = R"(
providers:
  a: { type: openai, base_url: "http://127.0.0.1:1/v1", api_key: sk-a }
  b: { type: openai, base_url: "http://127.0.0.1:2/v1", api_key: sk-b }
  c: { type: openai, base_url: "http://127.0.0.1:3/v1", api_key: sk-c }
models:
  a/m: {}
  b/m: {}
  c/m: {}
)";

TEST(LoadRoutingTest, KeyPoolsStrategiesWeightsAndCachesLoad) {
    const auto r = load(R"(
providers:
  openai:
    type: openai
    base_url: "http://127.0.0.1:1/v1"
    api_keys: ["${KEY_A}", { key: "${KEY_B}", rpm: 500, tpm: 90000 }, "${KEY_C:-}"]
  b: { type: openai, base_url: "http://127.0.0.1:2/v1", api_key: sk-b }
models:
  openai/m: {}
  b/m: {}
routes:
  gpt:
    strategy: weighted
    targets: [openai/m, b/m]
    weights: [1, 2.5]
    cache: { ttl: 90s, nondeterministic: true }
  fast: { strategy: latency, targets: [openai/m, b/m] }
  busy: { strategy: least_busy, targets: [openai/m, b/m], cache: {} }
cache: { max_bytes: 1000000, max_entry_bytes: 50000, shared: false }
keys:
  - { id: k1, class: developer, secret: s1, cache: { ttl: 1h, per_key: true } }
)",
                        {{"KEY_A", "sk-a"}, {"KEY_B", "sk-b"}});
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& p = r.cfg->providers.at("openai");
    ASSERT_EQ(p.api_keys.size(), 2u); // KEY_C is empty: left out
    EXPECT_EQ(p.api_keys[0].key.reveal(), "sk-a");
    EXPECT_FALSE(p.api_keys[0].rpm);
    EXPECT_EQ(p.api_keys[1].key.reveal(), "sk-b");
    EXPECT_EQ(p.api_keys[1].rpm, 500u);
    EXPECT_EQ(p.api_keys[1].tpm, 90000u);
    const auto& gpt = r.cfg->routes.at("gpt");
    EXPECT_EQ(gpt.strategy, route_strategy::weighted);
    EXPECT_EQ(gpt.weights, (std::vector<double>{1, 2.5}));
    ASSERT_TRUE(gpt.cache);
    EXPECT_EQ(gpt.cache->ttl, 90s);
    EXPECT_TRUE(gpt.cache->nondeterministic);
    EXPECT_FALSE(gpt.cache->per_key);
    EXPECT_EQ(r.cfg->routes.at("fast").strategy, route_strategy::latency);
    EXPECT_FALSE(r.cfg->routes.at("fast").cache);
    const auto& busy = r.cfg->routes.at("busy");
    EXPECT_EQ(busy.strategy, route_strategy::least_busy);
    ASSERT_TRUE(busy.cache);
    EXPECT_EQ(busy.cache->ttl, 10min); // the default
    EXPECT_EQ(r.cfg->cache.max_bytes, 1000000u);
    EXPECT_EQ(r.cfg->cache.max_entry_bytes, 50000u);
    EXPECT_FALSE(r.cfg->cache.shared);
    ASSERT_TRUE(r.cfg->keys[0].cache);
    EXPECT_EQ(r.cfg->keys[0].cache->ttl, 1h);
    EXPECT_TRUE(r.cfg->keys[0].cache->per_key);
}

TEST(LoadRoutingTest, MistakesAreReportedWithTheirPaths) {
    const auto r = load(providers + R"(
  d/m: {}
routes:
  w1: { strategy: weighted, targets: [a/m, b/m, c/m], weights: [1, 2] }
  w2: { strategy: weighted, targets: [a/m, b/m], weights: [0, -1] }
  w3: { strategy: fallback, targets: [a/m], weights: [1] }
  s: { strategy: round_robin, targets: [a/m] }
  c1: { targets: [a/m], cache: { ttl: 0s } }
  c2: { targets: [a/m], cache: { tll: 1m } }
  c3: { targets: [a/m], cache: { nondeterministic: maybe } }
cache: { max_bytes: 0 }
)");
    EXPECT_TRUE(has_error(r, "routes.w1.weights: 2 weights for 3 targets (one per target)"));
    EXPECT_TRUE(has_error(r, "routes.w2.weights[0]: must be a positive number"));
    EXPECT_TRUE(has_error(r, "routes.w2.weights[1]: expected a non-negative number, got \"-1\""));
    EXPECT_TRUE(has_error(r, "routes.w3.weights: only used with strategy: weighted"));
    EXPECT_TRUE(has_error(r, "routes.s.strategy: unknown strategy \"round_robin\" (expected "
                             "fallback, cheapest, weighted, least_busy or latency)"));
    EXPECT_TRUE(has_error(
        r, "routes.c1.cache.ttl: expected a positive duration like 250ms, 30s, 5m or 1h, got "
           "\"0s\""));
    EXPECT_TRUE(has_error(r, "routes.c2.cache.tll: unknown field"));
    EXPECT_TRUE(has_error(r, "routes.c3.cache.nondeterministic: expected true or false, got "
                             "\"maybe\""));
    EXPECT_TRUE(has_error(r, "cache.max_bytes: expected a positive integer, got \"0\""));
}

TEST(LoadRoutingTest, KeyPoolMistakes) {
    const auto r = load(R"(
providers:
  p1: { type: openai, base_url: "http://x/v1", api_key: a, api_keys: [b] }
  p2: { type: openai, base_url: "http://x/v1", api_keys: ["", { rpm: 5 }, { key: k, rpm: 0 }] }
  p3: { type: openai, base_url: "http://x/v1", api_keys: [] }
  p4: { type: openai, base_url: "http://x/v1", api_keys: [{ key: k, burst: 1 }] }
)");
    EXPECT_TRUE(has_error(r, "providers.p1.api_keys: set either api_key or api_keys, not both"));
    EXPECT_TRUE(has_error(r, "providers.p2.api_keys[0]: empty API key"));
    EXPECT_TRUE(has_error(r, "providers.p2.api_keys[1].key: missing required field"));
    EXPECT_TRUE(has_error(r, "providers.p2.api_keys[2].rpm: expected a positive integer, got "
                             "\"0\""));
    EXPECT_TRUE(has_error(r, "providers.p3.api_keys: expected at least one key"));
    EXPECT_TRUE(has_error(r, "providers.p4.api_keys[0].burst: unknown field"));
}

} // namespace
} // namespace michi::config
