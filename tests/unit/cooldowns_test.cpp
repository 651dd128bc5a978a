#include "michi/routing/cooldowns.hpp"

#include <gtest/gtest.h>

namespace michi::routing {
namespace {

using namespace std::chrono_literals;

TEST(CooldownsTest, RateLimitCoolsForRetryAfterElseTheDefault) {
    cooldowns c;
    const auto t0 = cooldowns::clock::time_point{} + 1000s;
    c.on_rate_limited("a", 5s, 30s, t0);
    EXPECT_TRUE(c.cooling("a", t0 + 4s));
    EXPECT_FALSE(c.cooling("a", t0 + 5s));
    c.on_rate_limited("b", 0ms, 30s, t0);
    EXPECT_TRUE(c.cooling("b", t0 + 29s));
    EXPECT_FALSE(c.cooling("b", t0 + 30s));
    EXPECT_FALSE(c.cooling("never", t0));
}

TEST(CooldownsTest, FailuresInARowStartACooldownAndASuccessResetsTheCount) {
    cooldowns c;
    const auto t0 = cooldowns::clock::time_point{} + 1000s;
    c.on_failure("a", 3, 10s, t0);
    c.on_failure("a", 3, 10s, t0);
    c.on_success("a");
    c.on_failure("a", 3, 10s, t0);
    c.on_failure("a", 3, 10s, t0);
    EXPECT_FALSE(c.cooling("a", t0));
    c.on_failure("a", 3, 10s, t0);
    EXPECT_TRUE(c.cooling("a", t0 + 9s));
    EXPECT_EQ(c.until("a", t0), t0 + 10s);
    EXPECT_FALSE(c.cooling("a", t0 + 10s));
}

TEST(CooldownsTest, AnyIsFalseOnceEveryTargetRecoveredAndASuccessDoesNotEndACooldown) {
    cooldowns c;
    const auto t0 = cooldowns::clock::time_point{} + 1000s;
    EXPECT_FALSE(c.any());
    c.on_failure("a", 3, 10s, t0);
    EXPECT_TRUE(c.any()); // a failure is counted: the next two start a cool-down
    c.on_success("a", t0);
    EXPECT_FALSE(c.any());
    c.on_rate_limited("b", 5s, 30s, t0);
    c.on_success("b", t0 + 1s);
    EXPECT_TRUE(c.any());
    EXPECT_TRUE(c.cooling("b", t0 + 4s));
    c.on_success("b", t0 + 5s);
    EXPECT_FALSE(c.any());
    EXPECT_FALSE(c.cooling("b", t0 + 1s));
}

} // namespace
} // namespace michi::routing
