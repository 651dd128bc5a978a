#pragma once
// Blocking work (SQLite reads and writes) done off the event loops: a worker hands it to the
// thread of another io_context and is resumed on its own with the result, its other
// connections served meanwhile. A debug build marks the event loops' threads and asserts that
// the SQLite layer never runs on one (thread_role).

#include "michi/core/net.hpp"

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
// Marks the calling thread as an event loop's (a worker's): blocking work must not run on it.
void mark_event_loop() noexcept;
bool on_event_loop() noexcept;
// Aborts a debug build when called on an event loop's thread (what: the blocking call).
void assert_off_event_loop(const char* what) noexcept;
} // namespace thread_role

} // namespace michi
