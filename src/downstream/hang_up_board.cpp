#include "michi/downstream/hang_up_board.hpp"

namespace michi::downstream {

hang_up_board::~hang_up_board() {
    while (head_ != nullptr) {
        leave(*head_);
    }
}

void hang_up_board::enlist(waiter& w, time_point since) {
    if (w.board_ != nullptr) {
        return;
    }
    w.board_ = this;
    w.since_ = since;
    w.prev_ = tail_;
    w.next_ = nullptr;
    if (tail_ != nullptr) {
        tail_->next_ = &w;
    } else {
        head_ = &w;
    }
    tail_ = &w;
    if (!armed_) {
        arm(since + after_);
    }
}

void hang_up_board::leave(waiter& w) noexcept {
    if (w.board_ != this) {
        return;
    }
    (w.prev_ != nullptr ? w.prev_->next_ : head_) = w.next_;
    (w.next_ != nullptr ? w.next_->prev_ : tail_) = w.prev_;
    w.board_ = nullptr;
    w.prev_ = nullptr;
    w.next_ = nullptr;
}

// The timer is never cancelled while the board lives: when it fires with nothing waiting it
// is simply not armed again, so a busy worker sets it some ten times a second at most.
void hang_up_board::arm(time_point at) {
    armed_ = true;
    timer_.expires_at(at);
    timer_.async_wait([this](error_code ec) {
        if (ec == net::error::operation_aborted) {
            return; // the board is gone (its timer's destruction cancels the wait)
        }
        on_tick();
    });
}

void hang_up_board::on_tick() {
    armed_ = false;
    const auto now = steady_clock::now();
    while (head_ != nullptr && head_->since_ + after_ <= now) {
        waiter& w = *head_;
        leave(w);
        w.start_watch(); // only starts an asynchronous wait: the list is not touched meanwhile
    }
    if (head_ != nullptr) {
        arm(head_->since_ + after_);
    }
}

} // namespace michi::downstream
