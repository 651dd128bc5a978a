#pragma once
// The writer thread shared by the stores that buffer in memory and write in batches: it calls
// a function every interval until stopped, and sooner when nudged (a store whose buffer has
// grown large asks for the write early, so that no single write is a long burst). The store
// keeps its own buffer and lock; the write function runs on the thread with none of this
// class's locks held. The thread runs under SCHED_BATCH, so that it gives way to the event
// loops at wake-up.

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace michi::store {

class batch_writer {
public:
    explicit batch_writer(std::chrono::milliseconds interval) : interval_(interval) {}
    ~batch_writer() { stop(); }

    batch_writer(const batch_writer&) = delete;
    batch_writer& operator=(const batch_writer&) = delete;

    // Starts the thread, which calls write every interval until stop(). Call once, when
    // everything write touches is ready.
    void start(std::function<void()> write) {
        write_ = std::move(write);
        thread_ = std::thread([this] { run(); });
        // Batch scheduling: a write that wakes does not preempt an event loop (it is mildly
        // disfavoured at wake-up, never starved), so its bursts of SQLite work land in idle
        // time rather than in the tail latency of requests. Unprivileged; failure is harmless.
        const sched_param param{};
        pthread_setschedparam(thread_.native_handle(), SCHED_BATCH, &param);
    }

    // Wakes the thread and waits for it to end (after the write in progress, if any). Safe to
    // call more than once, or without start().
    void stop() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    // Asks for a write now instead of at the end of the interval (which then starts again).
    // For producers: cheap enough to call once per batch, not on every row.
    void nudge() {
        {
            std::lock_guard lock(mu_);
            nudged_ = true;
        }
        wake_.notify_one();
    }

    std::chrono::milliseconds interval() const { return interval_; }

private:
    void run() {
        std::unique_lock lock(mu_);
        while (!stop_) {
            wake_.wait_for(lock, interval_, [this] { return stop_ || nudged_; });
            if (stop_) {
                break;
            }
            nudged_ = false;
            lock.unlock();
            write_();
            lock.lock();
        }
    }

    const std::chrono::milliseconds interval_;
    std::function<void()> write_;
    std::mutex mu_; // guards stop_ and nudged_
    std::condition_variable wake_;
    bool stop_ = false;
    bool nudged_ = false;
    std::thread thread_; // last: started by start() once everything above is ready
};

} // namespace michi::store
