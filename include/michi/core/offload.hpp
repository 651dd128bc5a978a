#pragma once
// Work done off the event loops: blocking work (SQLite reads and writes) handed to the thread
// of another io_context, and CPU work proportional to a request's size handed to a small
// pool (cpu_pool). The worker is resumed on its own with the result, its other connections
// served meanwhile. A debug build marks the event loops' threads and asserts that the SQLite
// layer never runs on one (thread_role).

#include "michi/core/net.hpp"

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

namespace michi {

// Runs f() on `other`'s thread; the caller resumes on its own executor with f's result. f
// must not throw.
template <class F>
awaitable<std::invoke_result_t<F&>> offload(net::io_context& other, F f) {
    using result_type = std::invoke_result_t<F&>;
    co_return co_await net::co_spawn(
        other, [fn = std::move(f)]() mutable -> net::awaitable<result_type> { co_return fn(); },
        net::use_awaitable_t<executor>{});
}

namespace thread_role {
// Lowers the calling thread's scheduling priority (its nice value +10) the first time it is called on
// it: a CPU pool's thread yields the cores to the event loops when both want them.
void run_in_background() noexcept;
} // namespace thread_role

// A few threads shared by every worker for CPU work proportional to a request's size (a
// multi-megabyte body's parse, its translation, an answer built from it): the event loop that
// hands such work over serves its other connections meanwhile, and its threads run at a lower
// priority than the event loops'. Its queue is bounded: a job is refused at once when `limit`
// jobs are already waiting or running.
class cpu_pool {
public:
    cpu_pool(std::size_t threads, std::size_t max_jobs)
        : pool_(threads), threads_(threads), max_jobs_(max_jobs) {}
    ~cpu_pool() { join(); }
    cpu_pool(const cpu_pool&) = delete;
    cpu_pool& operator=(const cpu_pool&) = delete;

    // Waits for the jobs under way and ends the threads. Before the workers' io_contexts go:
    // a job's end resumes its caller there.
    void join() { pool_.join(); }

    // The queue's bound for new work (a request's first job); later jobs of a request already
    // under way may take the queue up to four times that.
    std::size_t max_jobs() const noexcept { return max_jobs_; }
    // Jobs waiting or running.
    std::size_t jobs() const noexcept { return jobs_.load(std::memory_order_relaxed); }
    std::size_t threads() const noexcept { return threads_; }
    // The pool's executor (tests hold its threads with work of their own).
    net::thread_pool::executor_type get_executor() noexcept { return pool_.get_executor(); }

    // Runs f() on a pool thread; the caller resumes on its own executor with f's result, or
    // at once with nullopt when `limit` jobs are waiting or running. f must own what it reads
    // (its caller may be gone by the time it ends: the result is then dropped) and must not
    // throw.
    template <class F>
    awaitable<std::optional<std::invoke_result_t<F&>>> run(F f, std::size_t limit) {
        using result_type = std::invoke_result_t<F&>;
        if (jobs_.fetch_add(1, std::memory_order_relaxed) >= limit) {
            jobs_.fetch_sub(1, std::memory_order_relaxed);
            co_return std::nullopt;
        }
        // (co_spawn hands a default-constructed value on an exception: hence the optional.
        // The job is a named local: GCC 12 may destroy a temporary of a co_await twice.)
        auto job = [this,
                    fn = std::move(f)]() mutable -> net::awaitable<std::optional<result_type>> {
            thread_role::run_in_background();
            std::optional<result_type> r(std::in_place, fn());
            jobs_.fetch_sub(1, std::memory_order_relaxed);
            co_return r;
        };
        co_return co_await net::co_spawn(pool_.get_executor(), std::move(job),
                                         net::use_awaitable_t<executor>{});
    }

private:
    net::thread_pool pool_;
    const std::size_t threads_;
    const std::size_t max_jobs_;
    std::atomic<std::size_t> jobs_{0};
};

namespace thread_role {
// Marks the calling thread as an event loop's (a worker's): blocking work must not run on it.
void mark_event_loop() noexcept;
bool on_event_loop() noexcept;
// Aborts a debug build when called on an event loop's thread (what: the blocking call).
void assert_off_event_loop(const char* what) noexcept;
} // namespace thread_role

} // namespace michi
