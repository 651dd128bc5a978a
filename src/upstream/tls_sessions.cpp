#include "michi/upstream/tls_sessions.hpp"

#include <ctime>

namespace michi::upstream {

tls_sessions::~tls_sessions() {
    for (auto& [key, e] : sessions_) {
        SSL_SESSION_free(e.session);
    }
}

void tls_sessions::put(const std::string& key, const SSL_CTX* ctx, SSL_SESSION* session) {
    auto [it, added] = sessions_.try_emplace(key);
    if (!added) {
        SSL_SESSION_free(it->second.session);
    }
    it->second = entry{ctx, session};
}

SSL_SESSION* tls_sessions::find(const std::string& key, const SSL_CTX* ctx) {
    const auto it = sessions_.find(key);
    if (it == sessions_.end()) {
        return nullptr;
    }
    SSL_SESSION* s = it->second.session;
    const auto now = static_cast<long>(std::time(nullptr));
    if (it->second.ctx != ctx || !SSL_SESSION_is_resumable(s) ||
        SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= now) {
        SSL_SESSION_free(s);
        sessions_.erase(it);
        return nullptr;
    }
    return s;
}

void tls_sessions::forget(const std::string& key) {
    const auto it = sessions_.find(key);
    if (it != sessions_.end()) {
        SSL_SESSION_free(it->second.session);
        sessions_.erase(it);
    }
}

} // namespace michi::upstream
