#pragma once
// The requests of one worker that wait on an upstream's answer, each of whose clients is
// watched for a hang-up once its request has waited `after`. Watching a client connection
// re-arms its socket in epoll, a system call; most answers come long before a hang-up could
// matter, so a request answered within `after` never pays it. One timer, armed only while
// something waits, starts the watches of the requests that have waited long enough.
// Single-threaded: used on its worker's thread only.

#include "michi/core/net.hpp"

#include <chrono>

namespace michi::downstream {

class hang_up_board {
public:
    using time_point = steady_clock::time_point;

    // One waiting request. start_watch() begins watching its client (called at most once, on
    // the worker's thread, from the board's timer). A waiter leaves the board when it is
    // destroyed, if it has not left before.
    class waiter {
    public:
        waiter() = default;
        waiter(const waiter&) = delete;
        waiter& operator=(const waiter&) = delete;

        bool listed() const noexcept { return board_ != nullptr; }

    protected:
        ~waiter() {
            if (board_ != nullptr) {
                board_->leave(*this);
            }
        }

    private:
        friend class hang_up_board;
        virtual void start_watch() = 0;

        hang_up_board* board_ = nullptr; // while listed
        waiter* prev_ = nullptr;
        waiter* next_ = nullptr;
        time_point since_{};
    };

    hang_up_board(executor ex, std::chrono::milliseconds after) : timer_(ex), after_(after) {}
    hang_up_board(const hang_up_board&) = delete;
    hang_up_board& operator=(const hang_up_board&) = delete;
    // Waiters still listed forget the board: the requests they belong to may be destroyed
    // after it (with their worker's io_context, which the board does not outlive).
    ~hang_up_board();

    // w waits from `since` on (the times of successive calls should not decrease: the board
    // starts watches oldest first).
    void enlist(waiter& w, time_point since);
    // w no longer waits (its answer came, or it ended); a watch already started is the
    // waiter's to end. Does nothing when w is not listed.
    void leave(waiter& w) noexcept;

    std::chrono::milliseconds after() const noexcept { return after_; }

private:
    void arm(time_point at);
    void on_tick();

    steady_timer timer_;
    std::chrono::milliseconds after_;
    waiter* head_ = nullptr; // the oldest
    waiter* tail_ = nullptr;
    bool armed_ = false;
};

} // namespace michi::downstream
