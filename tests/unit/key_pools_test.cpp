#include "michi/routing/key_pools.hpp"

#include <gtest/gtest.h>

namespace michi::routing {
namespace {

using namespace std::chrono_literals;

config::config two_keys(std::optional<std::uint64_t> rpm = {},
                        std::optional<std::uint64_t> tpm = {}) {
    config::config cfg;
    auto& p = cfg.providers["openai"];
    p.name = "openai";
    p.api_keys.push_back({secret("sk-a"), rpm, tpm});
    p.api_keys.push_back({secret("sk-b"), rpm, tpm});
    return cfg;
}

const auto t0 = key_pools::clock::time_point{} + 100000s;

TEST(KeyPoolsTest, RequestsTakeTheKeysInTurn) {
    const auto cfg = two_keys();
    key_pools pools;
    pools.configure(cfg);
    const auto& p = cfg.providers.at("openai");
    std::string why;
    std::array<int, 2> used{};
    for (int i = 0; i < 10; ++i) {
        const auto k = pools.acquire(p, 10, t0, why);
        ASSERT_TRUE(k);
        ++used.at(*k);
    }
    EXPECT_EQ(used[0], 5);
    EXPECT_EQ(used[1], 5);
}

TEST(KeyPoolsTest, ARateLimitedKeyCoolsDownAloneUntilItsRetryAfter) {
    const auto cfg = two_keys();
    key_pools pools;
    pools.configure(cfg);
    const auto& p = cfg.providers.at("openai");
    std::string why;
    EXPECT_TRUE(pools.on_rate_limited(p, 0, 5s, 30s, t0)); // key 1 can carry on
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(pools.acquire(p, 1, t0 + 4900ms, why), 1u);
    }
    EXPECT_EQ(pools.soonest_back(p, t0), t0); // key 1 is not cooling
    const auto back = pools.status(p, t0 + 1s);
    ASSERT_EQ(back.size(), 2u);
    EXPECT_EQ(back[0].cooling, 4s);
    EXPECT_EQ(back[1].cooling, 0ms);
    std::array<int, 2> used{};
    for (int i = 0; i < 4; ++i) {
        ++used.at(*pools.acquire(p, 1, t0 + 5s, why));
    }
    EXPECT_EQ(used[0], 2); // back on time
    // Without retry-after, the provider's cool-down; both cooling: none, and when one is back.
    EXPECT_TRUE(pools.on_rate_limited(p, 0, 0ms, 30s, t0 + 10s));
    EXPECT_FALSE(pools.on_rate_limited(p, 1, 2s, 30s, t0 + 10s));
    EXPECT_FALSE(pools.acquire(p, 1, t0 + 11s, why));
    EXPECT_NE(why.find("every key of provider openai"), std::string::npos);
    EXPECT_EQ(pools.soonest_back(p, t0 + 10s), t0 + 12s);
    EXPECT_EQ(pools.acquire(p, 1, t0 + 12s, why), 1u);
}

TEST(KeyPoolsTest, RpmAndTpmMoveRequestsToAnotherKeyBeforeTheUpstreamRefuses) {
    const auto cfg = two_keys(2);
    key_pools pools;
    pools.configure(cfg);
    const auto& p = cfg.providers.at("openai");
    std::string why;
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(pools.acquire(p, 1, t0 + 1s * i, why));
    }
    EXPECT_FALSE(pools.acquire(p, 1, t0 + 5s, why)); // 2 a minute each, 4 sent
    EXPECT_TRUE(pools.acquire(p, 1, t0 + 61s, why)); // the first minute is over

    const auto tcfg = two_keys({}, 1000);
    key_pools tpools;
    tpools.configure(tcfg);
    const auto& tp = tcfg.providers.at("openai");
    EXPECT_EQ(tpools.acquire(tp, 800, t0, why), 0u);
    EXPECT_EQ(tpools.acquire(tp, 800, t0, why), 1u);
    EXPECT_FALSE(tpools.acquire(tp, 300, t0, why));
    EXPECT_TRUE(tpools.acquire(tp, 200, t0, why));
    const auto s = tpools.status(tp, t0);
    EXPECT_EQ(s[0].tokens + s[1].tokens, 1800u);
}

TEST(KeyPoolsTest, AKeyKeepsItsStateAcrossAReloadAndOneKeyIsNotPooled) {
    auto cfg = std::make_unique<config::config>(two_keys());
    key_pools pools;
    pools.configure(*cfg);
    pools.on_rate_limited(cfg->providers.at("openai"), 1, 60s, 30s, t0);
    auto next = std::make_unique<config::config>(two_keys());
    std::swap(next->providers.at("openai").api_keys[0], next->providers.at("openai").api_keys[1]);
    pools.configure(*next);
    const auto s = pools.status(next->providers.at("openai"), t0);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].cooling, 60s); // sk-b, now first
    EXPECT_EQ(s[1].cooling, 0ms);

    config::config one;
    auto& p = one.providers["solo"];
    p.name = "solo";
    p.api_keys.push_back({secret("sk-1"), {}, {}});
    EXPECT_FALSE(key_pools::pooled(p));
    std::string why;
    EXPECT_EQ(pools.acquire(p, 1, t0, why), 0u);
    EXPECT_TRUE(pools.status(p, t0).empty());
    EXPECT_EQ(key_pools::name_of(p, 0).substr(0, 3), "#0 ");
    EXPECT_EQ(key_pools::name_of(p, 0).find("sk-1"), std::string::npos);
}

} // namespace
} // namespace michi::routing
