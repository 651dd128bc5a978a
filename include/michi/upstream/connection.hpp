#pragma once
// One keep-alive connection to an upstream endpoint, plain or TLS, owned by one worker.

#include "michi/upstream/endpoint.hpp"
#include "michi/core/net.hpp"
#include "michi/core/tcp_stream.hpp"

#include <array>
#include <memory>
#include <variant>

namespace michi::upstream {

class connection {
public:
    // The read buffer's room, kept for the connection's life: a response head and a small
    // body (or a burst of stream events) come in one read. A read takes as much as the buffer
    // has room for, at least 512 bytes (wire::read_room): an empty buffer took a 900-byte
    // answer in two.
    static constexpr std::size_t read_buffer_bytes = 8 * 1024;

    using plain_stream = tcp_stream;
    using tls_stream = tls_over_tcp;

    connection(executor ex, const endpoint& ep);

    // Resolves, connects and (for TLS) handshakes with SNI, peer and host-name
    // verification, all within `timeout`.
    awaitable<error_code> open(tcp_resolver& resolver, std::chrono::milliseconds timeout);

    // A read of some bytes and a write of all the buffers, on whichever stream this is,
    // with any completion token (`co_await c.async_read_some(b, nothrow_op)`).
    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return michi::async_read_some(tls_.get(), lowest(), buffers, std::forward<Token>(token));
    }
    template <class ConstBuffers, class Token>
    auto async_write(const ConstBuffers& buffers, Token&& token) {
        return michi::async_write(tls_.get(), lowest(), buffers, std::forward<Token>(token));
    }

    // What the socket takes now, on a plain connection (michi::write_now).
    template <std::size_t N>
    std::size_t write_now(const std::array<net::const_buffer, N>& buffers, error_code& ec) {
        return michi::write_now(tls_.get(), lowest(), buffers, ec);
    }

    tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
    void expires_after(std::chrono::milliseconds d) { lowest().expires_after(d); }
    void expires_never() { lowest().expires_never(); }
    // Aborts every pending operation; the connection is then unusable.
    void close();

    const std::string& pool_key() const { return pool_key_; }
    beast::flat_buffer& buffer() { return buffer_; }
    bool reused = false;
    steady_clock::time_point idle_since{};

private:
    std::string pool_key_;
    std::string host_;
    std::string port_;
    std::unique_ptr<plain_stream> plain_;
    std::unique_ptr<tls_stream> tls_;
    beast::flat_buffer buffer_;
};

} // namespace michi::upstream
