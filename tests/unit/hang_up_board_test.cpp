// The board that starts hang-up watches only for requests that have waited: a request
// answered sooner is never watched, one that waits is, oldest first, and one that leaves
// (or is destroyed) is never touched again.

#include "michi/downstream/hang_up_board.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

namespace michi::downstream {
namespace {

using namespace std::chrono_literals;

struct test_waiter final : hang_up_board::waiter {
    explicit test_waiter(std::vector<int>& log, int id) : log_(log), id_(id) {}

private:
    void start_watch() override { log_.push_back(id_); }
    std::vector<int>& log_;
    int id_;
};

TEST(HangUpBoardTest, OnlyRequestsThatWaitedLongEnoughAreWatchedOldestFirst) {
    net::io_context ioc;
    hang_up_board board(ioc.get_executor(), 100ms);
    std::vector<int> started;
    const auto now = steady_clock::now();
    test_waiter old1(started, 1);
    test_waiter old2(started, 2);
    test_waiter young(started, 3); // has waited no time at all
    board.enlist(old1, now - 2s);
    board.enlist(old2, now - 1s);
    board.enlist(young, now + 1h);
    // The timer is due at once (old1's wait is long past the delay): one tick runs.
    ASSERT_EQ(ioc.run_one(), 1u);
    EXPECT_EQ(started, (std::vector<int>{1, 2}));
    EXPECT_FALSE(old1.listed());
    EXPECT_FALSE(old2.listed());
    EXPECT_TRUE(young.listed()); // its turn comes in an hour: the timer waits for it
    board.leave(young);          // answered before then
    EXPECT_FALSE(young.listed());
}

TEST(HangUpBoardTest, ARequestAnsweredWithinTheDelayIsNeverWatched) {
    net::io_context ioc;
    hang_up_board board(ioc.get_executor(), 100ms);
    std::vector<int> started;
    {
        test_waiter quick(started, 1);
        board.enlist(quick, steady_clock::now() - 1s);
        board.leave(quick); // its answer came before the timer ran
    }
    {
        test_waiter gone(started, 2);
        board.enlist(gone, steady_clock::now() - 1s);
    } // destroyed while listed (its request ended): it leaves by itself
    test_waiter later(started, 3);
    board.enlist(later, steady_clock::now() - 1s);
    ASSERT_EQ(ioc.run_one(), 1u);
    EXPECT_EQ(started, (std::vector<int>{3})); // neither 1 nor 2: no dangling watch
}

TEST(HangUpBoardTest, TheTimerIsArmedAgainForWaitersThatCameAfterATick) {
    net::io_context ioc;
    hang_up_board board(ioc.get_executor(), 100ms);
    std::vector<int> started;
    test_waiter first(started, 1);
    board.enlist(first, steady_clock::now() - 1s);
    ASSERT_EQ(ioc.run_one(), 1u); // the tick: nothing left, the timer not armed again
    EXPECT_EQ(started, (std::vector<int>{1}));
    test_waiter second(started, 2);
    board.enlist(second, steady_clock::now() - 1s); // arms the timer anew
    ioc.restart();                                  // (the loop ran out of work after the tick)
    ASSERT_EQ(ioc.run_one(), 1u);
    EXPECT_EQ(started, (std::vector<int>{1, 2}));
    EXPECT_EQ(ioc.poll(), 0u); // nothing left armed
}

TEST(HangUpBoardTest, WaitersThatOutliveTheBoardForgetIt) {
    // A worker's board goes before its io_context, which destroys the requests still waiting.
    std::vector<int> started;
    test_waiter outlives(started, 1);
    {
        net::io_context ioc;
        hang_up_board board(ioc.get_executor(), 100ms);
        board.enlist(outlives, steady_clock::now());
        EXPECT_TRUE(outlives.listed());
    }
    EXPECT_FALSE(outlives.listed()); // and its destructor does not reach the board (ASan)
    EXPECT_TRUE(started.empty());
}

} // namespace
} // namespace michi::downstream
