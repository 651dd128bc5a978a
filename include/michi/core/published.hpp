#pragma once
// An immutable value that one thread replaces now and then (a config reload, an admin key
// change) and every request reads.
//
// get() copies the shared_ptr under a short lock. On the request path that is two atomic
// read-modify-writes on one lock and one count shared by all workers, whose cache lines then
// move between their cores on every request. A reader instead keeps its own copy and looks
// at an atomic generation number only (a load of a line that stays shared while nothing is
// published): it takes the lock and copies the pointer again only when a newer value was
// published. Generations come from one process-wide counter, so a reader never mistakes a
// new instance at a recycled address for the one it cached.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace michi {

template <class T>
class published {
public:
    explicit published(std::shared_ptr<const T> v)
        : v_(std::move(v)), generation_(next_generation()) {}
    published(const published&) = delete;
    published& operator=(const published&) = delete;

    std::shared_ptr<const T> get() const {
        std::lock_guard lock(mu_);
        return v_;
    }

    void set(std::shared_ptr<const T> v) {
        {
            std::lock_guard lock(mu_);
            v_.swap(v);
            generation_.store(next_generation(), std::memory_order_release);
        }
        // the old value is released here, after the lock
    }

    // One reader's cached copy: a connection's, or a thread's. Not itself thread-safe.
    class reader {
    public:
        // The current value; the reference stays valid until this reader's next get().
        const std::shared_ptr<const T>& get(const published& p) {
            const auto g = p.generation_.load(std::memory_order_acquire);
            if (source_ != &p || g != generation_) {
                v_ = p.get();
                generation_ = g;
                source_ = &p;
            }
            return v_;
        }
        // The generation of the value get() last returned: a new value published has
        // another (never a recycled one).
        std::uint64_t generation() const noexcept { return generation_; }

    private:
        const published* source_ = nullptr;
        std::uint64_t generation_ = 0;
        std::shared_ptr<const T> v_;
    };

private:
    static std::uint64_t next_generation() {
        static std::atomic<std::uint64_t> n{0};
        return n.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    mutable std::mutex mu_;
    std::shared_ptr<const T> v_;
    std::atomic<std::uint64_t> generation_;
};

} // namespace michi
