#pragma once
// One keep-alive connection to an upstream endpoint, plain or TLS, owned by one worker.

#include "michi/upstream/endpoint.hpp"
#include "michi/core/net.hpp"
#include "michi/core/tcp_stream.hpp"
#include "michi/upstream/tls_channel.hpp"
#include "michi/upstream/tls_sessions.hpp"

#include <array>
#include <memory>

namespace michi::upstream {

class connection {
public:
    // The read buffer's room, kept for the connection's life: a response head and a small
    // body (or a burst of stream events) come in one read. A read takes as much as the buffer
    // has room for, at least 512 bytes (wire::read_room): an empty buffer took a 900-byte
    // answer in two.
    static constexpr std::size_t read_buffer_bytes = 8 * 1024;

    connection(executor ex, const endpoint& ep);

    // Resolves, connects and (for TLS) handshakes with SNI, peer and host-name
    // verification, offering the worker's latest session for the endpoint, all within
    // `timeout`.
    awaitable<error_code> open(tcp_resolver& resolver, tls_sessions& sessions,
                               std::chrono::milliseconds timeout);
    // The same with the endpoint's addresses already resolved.
    awaitable<error_code> open(const tcp_resolver::results_type& addresses, tls_sessions& sessions,
                               std::chrono::milliseconds timeout);

    // A read of some bytes and a write of all the buffers, on whichever stream this is,
    // with any completion token (`co_await c.async_read_some(b, nothrow_op)`). One at a
    // time: a read never overlaps a write.
    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
                if (tls_) {
                    tls_->async_read_some(b, std::move(handler));
                } else {
                    stream_.async_read_some(b, std::move(handler));
                }
            },
            token, buffers);
    }
    // (On a TLS connection this also sends what write_now left unsent.)
    template <class ConstBuffers, class Token>
    auto async_write(const ConstBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                if (tls_) {
                    tls_->async_write(b, std::move(handler));
                } else {
                    net::async_write(stream_, b, std::move(handler));
                }
            },
            token, buffers);
    }

    // Writes what the socket takes now (michi::write_now): the bytes taken; on a TLS
    // connection all of them, encrypted, and unsent() says whether some of the ciphertext
    // is left for async_write.
    template <std::size_t N>
    std::size_t write_now(const std::array<net::const_buffer, N>& buffers, error_code& ec) {
        return tls_ ? tls_->write_now(buffers, ec) : stream_.write_now(buffers, ec);
    }
    bool unsent() const noexcept { return tls_ && tls_->unsent(); }
    // The TLS handshake resumed an earlier session.
    bool resumed() const noexcept { return tls_ && tls_->resumed(); }

    tcp_stream& lowest() { return stream_; }
    void expires_after(std::chrono::milliseconds d) { lowest().expires_after(d); }
    void expires_never() { lowest().expires_never(); }
    // Aborts every pending operation; the connection is then unusable.
    void close();

    const std::string& pool_key() const { return pool_key_; }
    beast::flat_buffer& buffer() { return buffer_; }
    // The read buffer with its room (it may have been let go: release_buffer()).
    beast::flat_buffer& read_buffer() {
        if (buffer_.capacity() < read_buffer_bytes) {
            buffer_.reserve(read_buffer_bytes);
            if (carried_ != 0) {
                buffer_.commit(net::buffer_copy(buffer_.prepare(carried_),
                                                net::buffer(carry_.data(), carried_)));
                carried_ = 0;
            }
        }
        return buffer_;
    }
    // A plain connection that will wait long for its next bytes (a stream between events)
    // lets its read buffer go when it holds no more than a piece of framing (the CRLF that
    // ends a chunk is parsed with the next chunk's size line), which is kept aside until
    // read_buffer() takes room again, once the socket has bytes (async_wait_readable).
    bool plain() const noexcept { return !tls_; }
    bool release_buffer() {
        if (tls_ || buffer_.size() > carry_.size()) {
            return false;
        }
        carried_ = static_cast<std::uint8_t>(
            net::buffer_copy(net::buffer(carry_.data(), carry_.size()), buffer_.data()));
        buffer_ = beast::flat_buffer();
        return true;
    }

    bool reused = false;
    steady_clock::time_point idle_since{};

private:
    std::string pool_key_;
    std::string host_;
    std::string port_;
    tcp_stream stream_;                // (under the TLS session, when there is one)
    std::unique_ptr<tls_channel> tls_; // the TLS session, for an https endpoint
    beast::flat_buffer buffer_;
    std::array<char, 32> carry_{}; // the buffer's bytes while it is let go
    std::uint8_t carried_ = 0;
};

} // namespace michi::upstream
