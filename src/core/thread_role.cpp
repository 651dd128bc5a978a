#include "michi/core/offload.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <sys/resource.h>
#include <unistd.h>

namespace michi::thread_role {
namespace {
thread_local bool event_loop = false;
thread_local bool background = false;
} // namespace

void run_in_background() noexcept {
    if (!background) {
        background = true;
        // (Linux: a thread's own nice value, by its id; failing leaves it as it was.)
        const auto tid = static_cast<id_t>(::gettid());
        errno = 0;
        const int now = ::getpriority(PRIO_PROCESS, tid);
        if (errno == 0) {
            ::setpriority(PRIO_PROCESS, tid, std::min(now + 10, 19));
        }
    }
}

void mark_event_loop() noexcept { event_loop = true; }

bool on_event_loop() noexcept { return event_loop; }

void assert_off_event_loop([[maybe_unused]] const char* what) noexcept {
#ifndef NDEBUG
    if (event_loop) {
        std::fprintf(stderr, "blocking call on an event loop's thread: %s\n", what);
        std::abort();
    }
#endif
}

} // namespace michi::thread_role
