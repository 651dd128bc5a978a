#include "michi/upstream/connection.hpp"

#include <openssl/ssl.h>

namespace michi::upstream {

connection::connection(executor ex, const endpoint& ep)
    : pool_key_(ep.pool_key), host_(ep.host), port_(ep.port) {
    buffer_.reserve(read_buffer_bytes);
    if (ep.tls) {
        tls_ = std::make_unique<tls_stream>(ex, *ep.tls_ctx);
    } else {
        plain_ = std::make_unique<plain_stream>(ex);
        plain_->wait_after_short_reads();
    }
}

awaitable<error_code> connection::open(tcp_resolver& resolver,
                                       std::chrono::milliseconds timeout) {
    auto [rec, results] = co_await resolver.async_resolve(host_, port_, nothrow);
    if (rec) {
        co_return rec;
    }
    auto& tcp_layer = lowest();
    tcp_layer.expires_after(timeout);
    auto [cec, ep] = co_await net::async_connect(tcp_layer.socket(), results, nothrow);
    if (cec) {
        co_return tcp_layer.timed_out() ? error_code(beast::error::timeout) : cec;
    }
    tcp_layer.socket().set_option(tcp::no_delay(true));
    if (tls_) {
        // SNI first, then verify the certificate chain and that it names this host.
        if (!SSL_set_tlsext_host_name(tls_->native_handle(), host_.c_str())) {
            co_return error_code(static_cast<int>(::ERR_get_error()),
                                 net::error::get_ssl_category());
        }
        tls_->set_verify_mode(ssl::verify_peer);
        tls_->set_verify_callback(ssl::host_name_verification(host_));
        auto [hec] = co_await tls_->async_handshake(ssl::stream_base::client, nothrow);
        if (hec) {
            co_return hec;
        }
    }
    tcp_layer.expires_never();
    co_return error_code{};
}

void connection::close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
}

} // namespace michi::upstream
