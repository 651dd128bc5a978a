#include "michi/core/offload.hpp"

#include <cstdio>
#include <cstdlib>

namespace michi::thread_role {
namespace {
thread_local bool event_loop = false;
} // namespace

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
