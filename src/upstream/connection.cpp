#include "michi/upstream/connection.hpp"

namespace michi::upstream {

connection::connection(executor ex, const endpoint& ep)
    : pool_key_(ep.pool_key), host_(ep.host), port_(ep.port), stream_(ex) {
    buffer_.reserve(read_buffer_bytes);
    // The answer follows the request just written: its first read waits for epoll rather
    // than trying recv() first (tcp_stream::wait_after_short_reads), the TLS session's
    // reads of records as the plain connection's reads.
    stream_.wait_after_short_reads();
    if (ep.tls) {
        tls_ = std::make_unique<tls_channel>(stream_, *ep.tls_ctx);
    }
}

awaitable<error_code> connection::open(tcp_resolver& resolver, tls_sessions& sessions,
                                       std::chrono::milliseconds timeout) {
    auto [rec, results] = co_await resolver.async_resolve(host_, port_, nothrow);
    if (rec) {
        co_return rec;
    }
    co_return co_await open(results, sessions, timeout);
}

awaitable<error_code> connection::open(const tcp_resolver::results_type& addresses,
                                       tls_sessions& sessions, std::chrono::milliseconds timeout) {
    stream_.expires_after(timeout);
    auto [cec, ep] = co_await net::async_connect(stream_.socket(), addresses, nothrow);
    if (cec) {
        co_return stream_.timed_out() ? error_code(beast::error::timeout) : cec;
    }
    stream_.socket().set_option(tcp::no_delay(true));
    if (tls_) {
        // SNI, then the certificate chain and that it names this host; every record the
        // handshake exchanges goes through the stream, within the same deadline.
        const auto hec = co_await tls_->handshake(host_, sessions, pool_key_);
        if (hec) {
            co_return stream_.timed_out() ? error_code(beast::error::timeout) : hec;
        }
    }
    stream_.expires_never();
    co_return error_code{};
}

void connection::close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
}

} // namespace michi::upstream
