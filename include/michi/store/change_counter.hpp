#pragma once
// A counter that processes on one machine share through a small file mapped into each
// (MAP_SHARED): one bumps it after a change it committed elsewhere (the key registry's
// SQLite file), the others read it on every request for the cost of a load from memory,
// and look at the change only when it moved. For changes that must be seen by the very next
// request in every process sharing the file (a revoked key), where a poll would leave a
// window and a query per request would cost every request a system call or more.

#include <atomic>
#include <cstdint>
#include <string>

namespace michi::store {

class change_counter {
public:
    // Maps `path` (created with 8 zero bytes when missing). On any failure the counter is
    // not shared (valid() is false, value() stays 0) and `error` says why.
    change_counter(const std::string& path, std::string& error);
    ~change_counter();
    change_counter(const change_counter&) = delete;
    change_counter& operator=(const change_counter&) = delete;

    bool valid() const noexcept { return word_ != nullptr; }
    // The current value (acquire: what was committed before a bump is visible after it).
    std::uint64_t value() const noexcept {
        return word_ == nullptr ? 0 : std::atomic_ref(*word_).load(std::memory_order_acquire);
    }
    // Bumps it, after the change it announces was committed.
    void bump() noexcept {
        if (word_ != nullptr) {
            std::atomic_ref(*word_).fetch_add(1, std::memory_order_release);
        }
    }

private:
    std::uint64_t* word_ = nullptr;
    static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free,
                  "the counter is shared between processes: its atomics must not be locks");
};

} // namespace michi::store
