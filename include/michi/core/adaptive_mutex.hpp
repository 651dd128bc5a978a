#pragma once
// A mutex for critical sections of a few hundred instructions that every worker enters on
// every request (the ledger's key shards, the stores' buffers). glibc's adaptive mutex
// spins briefly before it sleeps: when two workers meet on one key, the second waits for
// less time than a futex sleep and wake-up would cost it. Otherwise a std::mutex.

#include <pthread.h>

namespace michi {

class adaptive_mutex {
public:
    adaptive_mutex() = default;
    adaptive_mutex(const adaptive_mutex&) = delete;
    adaptive_mutex& operator=(const adaptive_mutex&) = delete;
    ~adaptive_mutex() { pthread_mutex_destroy(&m_); }

    void lock() { pthread_mutex_lock(&m_); }
    bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
    void unlock() { pthread_mutex_unlock(&m_); }

private:
    pthread_mutex_t m_ = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
};

} // namespace michi
