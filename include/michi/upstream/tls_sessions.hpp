#pragma once
// One worker's latest TLS session for each upstream endpoint (a TLS 1.3 ticket or a TLS 1.2
// session), offered when the worker opens another connection there: a resumed handshake
// skips the certificate exchange and its verification. Only its worker's thread touches it.

#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <unordered_map>

namespace michi::upstream {

class tls_sessions {
public:
    tls_sessions() = default;
    ~tls_sessions();
    tls_sessions(const tls_sessions&) = delete;
    tls_sessions& operator=(const tls_sessions&) = delete;

    // Keeps `session` (taking its reference) as key's latest, made under `ctx`.
    void put(const std::string& key, const SSL_CTX* ctx, SSL_SESSION* session);
    // key's session made under the same ctx (the same trust settings) and not expired, or
    // nullptr; borrowed (SSL_set_session takes a reference of its own).
    SSL_SESSION* find(const std::string& key, const SSL_CTX* ctx);
    // Drops key's session (a handshake offering it failed).
    void forget(const std::string& key);
    std::size_t size() const noexcept { return sessions_.size(); }

private:
    struct entry {
        const SSL_CTX* ctx = nullptr;
        SSL_SESSION* session = nullptr;
    };
    std::unordered_map<std::string, entry> sessions_;
};

} // namespace michi::upstream
