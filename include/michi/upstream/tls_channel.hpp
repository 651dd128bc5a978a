#pragma once
// One TLS client session over an upstream connection's tcp_stream, with OpenSSL working on
// memory rather than on the socket: a request is encrypted and written at once
// (tcp_stream::write_now: one system call, no completion through the scheduler, as the
// plain path writes), the answer's records come through the stream's own reads (its drained
// reads and its deadline), and records already received are decrypted without a wait. Asio's
// ssl::stream costs a completion through the scheduler per write and a second layer of
// composed operations per read. The handshake verifies the peer's chain and host name
// (SNI, SSL_set1_host) and offers the worker's latest session for the endpoint
// (tls_sessions), which records every session the server issues.

#include "michi/core/net.hpp"
#include "michi/core/tcp_stream.hpp"
#include "michi/upstream/tls_sessions.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace michi::upstream {

class tls_channel {
public:
    // Readies ctx for the channels made from it: client-side session caching through
    // tls_sessions (OpenSSL's own store off).
    static void prepare_context(ssl::context& ctx);

    // `lower` must outlive the channel.
    tls_channel(tcp_stream& lower, ssl::context& ctx);
    ~tls_channel();
    tls_channel(const tls_channel&) = delete;
    tls_channel& operator=(const tls_channel&) = delete;

    // The client handshake with `host` (SNI for a name; chain and host-name or IP
    // verification), offering sessions' latest session for `key` and keeping those the
    // server issues there. On a verification failure the error says why (tls_verify_error).
    awaitable<error_code> handshake(const std::string& host, tls_sessions& sessions,
                                    const std::string& key);
    // The handshake resumed an earlier session.
    bool resumed() const noexcept;

    // Encrypts all of `buffers` and writes what the socket takes now. Returns the plaintext
    // taken: all of it, unless `ec` is set; unsent() then says whether ciphertext is left
    // for async_write to send.
    template <std::size_t N>
    std::size_t write_now(const std::array<net::const_buffer, N>& buffers, error_code& ec) {
        std::size_t total = 0;
        for (const auto& b : buffers) {
            total += b.size();
        }
        if (N > 1 && total <= coalesce_limit) {
            // One record for the head and the body: one encryption, one record's overhead.
            scratch_.clear();
            for (const auto& b : buffers) {
                scratch_.append(static_cast<const char*>(b.data()), b.size());
            }
            encrypt(scratch_.data(), scratch_.size(), ec);
        } else {
            for (const auto& b : buffers) {
                if (!ec) {
                    encrypt(b.data(), b.size(), ec);
                }
            }
        }
        if (!ec) {
            send_now(ec);
        }
        return ec ? 0 : total;
    }
    bool unsent() const noexcept { return !out_.empty(); }

    // Encrypts `buffers` (all taken) and writes them with whatever write_now left unsent.
    template <class ConstBuffers, class Handler>
    void async_write(const ConstBuffers& buffers, Handler&& handler) {
        std::size_t total = 0;
        error_code ec;
        for (auto it = net::buffer_sequence_begin(buffers);
             it != net::buffer_sequence_end(buffers) && !ec; ++it) {
            const net::const_buffer b(*it);
            total += b.size();
            encrypt(b.data(), b.size(), ec);
        }
        if (ec) {
            net::post(lower_.get_executor(),
                      net::append(std::forward<Handler>(handler), ec, std::size_t{0}));
            return;
        }
        net::async_write(
            lower_, net::buffer(out_),
            write_op<std::decay_t<Handler>>{{std::forward<Handler>(handler)}, this, total});
    }

    // Reads some plaintext into the first non-empty buffer: from records already received
    // when they hold some (completed through the scheduler), else after the next read of
    // the socket. An end of stream without the peer's close_notify is
    // ssl::error::stream_truncated; with it, net::error::eof.
    template <class MutableBuffers, class Handler>
    void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        const net::mutable_buffer out = first_buffer(buffers).buffer;
        error_code ec;
        // (Nothing received and not yet decrypted, the usual case: straight to the socket.)
        const std::size_t n = out.size() == 0 || !buffered() ? 0 : decrypt(out, ec);
        if (n != 0 || ec || out.size() == 0) {
            net::post(lower_.get_executor(), net::append(std::forward<Handler>(handler), ec, n));
            return;
        }
        lower_.async_read_some(
            in_room(), read_op<std::decay_t<Handler>>{{std::forward<Handler>(handler)}, this, out});
    }

private:
    // Plaintext up to this is copied into one record rather than one record per buffer.
    static constexpr std::size_t coalesce_limit = 16 * 1024;
    // Room for the records read from the socket: a whole largest record fits.
    static constexpr std::size_t in_capacity = 18 * 1024;

    // A completion handler's associations, passed on by the operations below.
    template <class Handler>
    struct forwarding {
        Handler handler;

        using executor_type = net::associated_executor_t<Handler, executor>;
        using allocator_type = net::associated_allocator_t<Handler>;
        allocator_type get_allocator() const noexcept {
            return net::get_associated_allocator(handler);
        }
    };

    // A read of plaintext waiting for records from the socket. Touches the channel only
    // after a read that succeeded (one that failed may follow the channel's end).
    template <class Handler>
    struct read_op : forwarding<Handler> {
        tls_channel* self;
        net::mutable_buffer out;

        typename forwarding<Handler>::executor_type get_executor() const noexcept {
            return net::get_associated_executor(this->handler, self->lower_.get_executor());
        }

        void operator()(error_code ec, std::size_t n) {
            if (!ec && n == 0) {
                ec = net::error::no_buffer_space; // (cannot be: a record is never that long)
            }
            if (ec) {
                if (ec == net::error::eof) {
                    ec = ssl::error::stream_truncated;
                }
                std::move(this->handler)(ec, std::size_t{0});
                return;
            }
            self->in_end_ += n;
            const std::size_t got = self->decrypt(out, ec);
            if (got != 0 || ec) {
                std::move(this->handler)(ec, got);
                return;
            }
            auto& lower = self->lower_;
            lower.async_read_some(self->in_room(), std::move(*this));
        }
    };

    // A write of the pending ciphertext; completes with the plaintext count it carried.
    template <class Handler>
    struct write_op : forwarding<Handler> {
        tls_channel* self;
        std::size_t plaintext;

        typename forwarding<Handler>::executor_type get_executor() const noexcept {
            return net::get_associated_executor(this->handler, self->lower_.get_executor());
        }

        void operator()(error_code ec, std::size_t) {
            if (!ec) {
                self->out_.clear();
            }
            std::move(this->handler)(ec, ec ? std::size_t{0} : plaintext);
        }
    };

    struct bio_io;
    friend struct bio_io;

    // Appends the ciphertext of [data, data + size) to out_.
    void encrypt(const void* data, std::size_t size, error_code& ec);
    // Writes what the socket takes of out_ now.
    void send_now(error_code& ec);
    // Plaintext from the records received so far into out: its size, or 0 when a record is
    // still incomplete (or `ec`).
    std::size_t decrypt(net::mutable_buffer out, error_code& ec);
    // Records received and not yet decrypted (or plaintext of one not yet read).
    bool buffered() const noexcept { return in_end_ != in_begin_ || SSL_has_pending(ssl_) == 1; }
    // Free room after the unread records (moved to the front first).
    net::mutable_buffer in_room();
    // The error of a failed OpenSSL call that returned r.
    error_code failure(int r);
    // Keeps a session the server issued (OpenSSL's new-session callback).
    static int on_new_session(SSL* ssl, SSL_SESSION* session);

    tcp_stream& lower_;
    SSL* ssl_ = nullptr;
    std::unique_ptr<char[]> in_; // records read, [in_begin_, in_end_) not yet decrypted
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    std::string out_;     // ciphertext not yet written
    std::string scratch_; // a request's head and body, joined
    tls_sessions* sessions_ = nullptr;
    std::string session_key_;
};

// Why a peer's certificate was refused: OpenSSL's verification result (X509_V_ERR_*), with
// its text as the message ("certificate verify failed: hostname mismatch").
const boost::system::error_category& tls_verify_category();

} // namespace michi::upstream
