#include "michi/routing/strategies.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>

namespace michi::routing {
namespace {

using namespace std::chrono_literals;

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
    std::ranges::sort(v);
    return v;
}

TEST(StrategiesTest, WeightedFirstChoicesFollowTheWeightsWithinTwoPercent) {
    const std::array<target_view, 3> targets{{{1, 0, {}}, {2, 0, {}}, {7, 0, {}}}};
    random_engine rng(42);
    std::array<int, 3> first{};
    std::vector<std::size_t> order;
    constexpr int draws = 10000;
    for (int i = 0; i < draws; ++i) {
        EXPECT_EQ(weighted_order(targets, rng, order), pick_reason::weight);
        ASSERT_EQ(sorted(order), (std::vector<std::size_t>{0, 1, 2})); // every target, once
        ++first[order.front()];
    }
    EXPECT_NEAR(first[0] / double(draws), 0.1, 0.02);
    EXPECT_NEAR(first[1] / double(draws), 0.2, 0.02);
    EXPECT_NEAR(first[2] / double(draws), 0.7, 0.02);
}

TEST(StrategiesTest, WeightedFallbacksAreDrawnFromTheRestByWeight) {
    // With the heaviest target first, the second is target 1 twice as often as target 0.
    const std::array<target_view, 3> targets{{{1, 0, {}}, {2, 0, {}}, {1000, 0, {}}}};
    random_engine rng(7);
    std::array<int, 3> second{};
    std::vector<std::size_t> order;
    for (int i = 0; i < 6000; ++i) {
        weighted_order(targets, rng, order);
        if (order.front() == 2) {
            ++second[order[1]];
        }
    }
    const double share = second[1] / double(second[0] + second[1]);
    EXPECT_NEAR(share, 2.0 / 3, 0.03);
}

TEST(StrategiesTest, LeastBusyPutsTheFewestInFlightFirstAndBreaksTiesAtRandom) {
    const std::array<target_view, 3> targets{{{1, 5, {}}, {1, 0, {}}, {1, 3, {}}}};
    random_engine rng(1);
    std::vector<std::size_t> order;
    EXPECT_EQ(least_busy_order(targets, rng, order), pick_reason::least_busy);
    EXPECT_EQ(order, (std::vector<std::size_t>{1, 2, 0}));

    const std::array<target_view, 2> tied{{{1, 2, {}}, {1, 2, {}}}};
    std::array<int, 2> first{};
    for (int i = 0; i < 200; ++i) {
        least_busy_order(tied, rng, order);
        ++first[order.front()];
    }
    EXPECT_GT(first[0], 50);
    EXPECT_GT(first[1], 50);
}

TEST(StrategiesTest, LeastBusyPicksEachOfThreeTiedTargetsFirstAsOftenAndKeepsTheBusyLast) {
    // Three idle targets and a busy one: each idle one first a third of the time, every order
    // of the three about as often, the busy one always last.
    const std::array<target_view, 4> targets{{{1, 0, {}}, {1, 4, {}}, {1, 0, {}}, {1, 0, {}}}};
    random_engine rng(2026);
    std::map<std::vector<std::size_t>, int> orders;
    std::array<int, 4> first{};
    std::vector<std::size_t> order;
    constexpr int draws = 12000;
    for (int i = 0; i < draws; ++i) {
        least_busy_order(targets, rng, order);
        ASSERT_EQ(order.back(), 1u);
        ++first[order.front()];
        ++orders[order];
    }
    EXPECT_EQ(first[1], 0);
    for (const std::size_t t : {0, 2, 3}) {
        EXPECT_NEAR(first[t] / double(draws), 1.0 / 3, 0.02) << "target " << t;
    }
    EXPECT_EQ(orders.size(), 6u);
    for (const auto& [o, count] : orders) {
        EXPECT_NEAR(count / double(draws), 1.0 / 6, 0.02);
    }
}

TEST(RandomTest, TieBreaksAreSpreadEvenlyFourToADraw) {
    random_engine rng(9);
    tie_breaks ties(rng);
    std::array<int, 16> buckets{}; // by the top four bits
    constexpr int draws = 32000;
    for (int i = 0; i < draws; ++i) {
        ++buckets[ties.next() >> 12];
    }
    for (const int b : buckets) {
        EXPECT_NEAR(b / double(draws), 1.0 / 16, 0.01);
    }
    // Four numbers a draw: the generator moved on by draws / 4.
    random_engine same(9);
    for (int i = 0; i < draws / 4; ++i) {
        same.next64();
    }
    EXPECT_EQ(rng(), same());
}

TEST(StrategiesTest, LatencyTriesUnmeasuredTargetsThenTheFastestAndExploresNowAndThen) {
    random_engine rng(3);
    std::vector<std::size_t> order;
    const std::array<target_view, 3> fresh{{{1, 0, 40ms}, {1, 0, {}}, {1, 0, 10ms}}};
    EXPECT_EQ(latency_order(fresh, rng, order), pick_reason::unmeasured);
    EXPECT_EQ(order, (std::vector<std::size_t>{1, 2, 0}));

    const std::array<target_view, 3> measured{{{1, 0, 40ms}, {1, 0, 900ms}, {1, 0, 10ms}}};
    int fastest = 0;
    int exploring = 0;
    constexpr int draws = 10000;
    for (int i = 0; i < draws; ++i) {
        const auto why = latency_order(measured, rng, order);
        ASSERT_EQ(sorted(order), (std::vector<std::size_t>{0, 1, 2}));
        if (why == pick_reason::fastest) {
            EXPECT_EQ(order, (std::vector<std::size_t>{2, 0, 1}));
            ++fastest;
        } else {
            ASSERT_EQ(why, pick_reason::exploring);
            EXPECT_NE(order.front(), 2u);
            ++exploring;
        }
    }
    EXPECT_NEAR(exploring / double(draws), latency_exploration, 0.01);
    EXPECT_EQ(fastest + exploring, draws);
}

TEST(SignalsTest, TimeToFirstByteFollowsRecentSamplesAndOldOnesFade) {
    target_signals s;
    const auto t0 = target_signals::clock::time_point{} + 1000s;
    EXPECT_FALSE(s.ttfb());
    s.observe(100ms, t0);
    EXPECT_EQ(*s.ttfb(), 100ms);
    s.observe(200ms, t0); // at once: moves latency_alpha of the way
    EXPECT_EQ(*s.ttfb(), 130ms);
    for (int i = 0; i < 20; ++i) {
        s.observe(10ms, t0);
    }
    EXPECT_LT(*s.ttfb(), 11ms);
    // A target seen again long after: the new sample all but replaces the old average.
    s.observe(500ms, t0 + 10 * latency_memory);
    EXPECT_GT(*s.ttfb(), 499ms);
    EXPECT_EQ(s.samples(), 23u);
}

TEST(SignalsTest, AttemptsCountInFlightForTheirLifetime) {
    signal_board board;
    auto* a = board.find("r/a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(board.find("r/a"), a);
    EXPECT_EQ(board.peek("r/a"), a);
    EXPECT_EQ(board.peek("r/b"), nullptr);
    EXPECT_NE(board.find("r/b"), a);
    {
        attempt_signal one(a);
        attempt_signal two(a);
        EXPECT_EQ(a->in_flight(), 2);
        attempt_signal moved(std::move(one));
        EXPECT_EQ(a->in_flight(), 2);
    }
    EXPECT_EQ(a->in_flight(), 0);
}

TEST(SignalsTest, TheBoardIsBounded) {
    signal_board board;
    for (std::size_t i = 0; i < signal_board::capacity; ++i) {
        ASSERT_NE(board.find("t" + std::to_string(i)), nullptr);
    }
    EXPECT_EQ(board.find("one-too-many"), nullptr);
    EXPECT_NE(board.find("t7"), nullptr);
}

} // namespace
} // namespace michi::routing
