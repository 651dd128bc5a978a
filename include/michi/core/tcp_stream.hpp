#pragma once
// A TCP socket with a deadline, for Beast's HTTP functions and Asio's TLS stream, used as
// beast::tcp_stream is: expires_after / expires_never set the deadline of the reads and
// writes that follow; one still pending when it passes fails with beast::error::timeout,
// and the socket is closed.
//
// beast::basic_stream sets and cancels a timer around every read and write: two timer-queue
// operations under the reactor's lock and one more completion each, several of them per
// proxied request. Here the deadline is a stored time. One wait per stream sleeps until the
// earliest deadline set; when it wakes it closes the socket if the deadline in force has
// passed, or sleeps again until it. Moving a deadline later (every request does) costs a
// clock read and a store.

#include "michi/core/drained_read.hpp"
#include "michi/core/net.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace michi {

class tcp_stream {
    using time_point = steady_clock::time_point;

    // What the wait shares with the stream; the stream clears `socket` when it goes away.
    struct watch {
        watch(executor ex, tcp_socket* s) : timer(ex), socket(s) {}
        steady_timer timer;
        tcp_socket* socket;
        time_point deadline = time_point::max();
        time_point armed_for = time_point::max(); // when the pending wait wakes; max: none
        std::uint64_t generation = 0;             // of the pending wait
        bool timed_out = false;
        // Drained reads (wait_after_short_reads): the last read came back short, so the
        // reactor will not try the next one first; a write came after it.
        bool last_short = false;
        bool wrote = false;
        unsigned refs = 1;
    };

    // A counted reference to the watch, held by the stream, each pending operation's handler
    // and the wait. The count is a plain integer, not a shared_ptr's atomic one: all of them
    // live on the thread of the stream's io_context (or are destroyed with it, after that
    // thread has stopped).
    class watch_ref {
    public:
        explicit watch_ref(watch* w) noexcept : w_(w) {}
        watch_ref(const watch_ref& o) noexcept : w_(o.w_) {
            if (w_ != nullptr) {
                ++w_->refs;
            }
        }
        watch_ref(watch_ref&& o) noexcept : w_(std::exchange(o.w_, nullptr)) {}
        watch_ref& operator=(watch_ref o) noexcept {
            std::swap(w_, o.w_);
            return *this;
        }
        ~watch_ref() {
            if (w_ != nullptr && --w_->refs == 0) {
                delete w_;
            }
        }
        watch* operator->() const noexcept { return w_; }

    private:
        watch* w_;
    };

    // Passes the completion on, an error after the deadline closed the socket reported
    // as a timeout. Keeps the wrapped handler's executor and allocator.
    template <class Handler>
    struct timeout_handler {
        Handler handler;
        watch_ref w;

        using executor_type = net::associated_executor_t<Handler, executor>;
        executor_type get_executor() const noexcept {
            return net::get_associated_executor(handler, w->timer.get_executor());
        }
        using allocator_type = net::associated_allocator_t<Handler>;
        allocator_type get_allocator() const noexcept {
            return net::get_associated_allocator(handler);
        }

        void operator()(error_code ec, std::size_t n) {
            if (ec && w->timed_out) {
                ec = beast::error::timeout;
            }
            std::move(handler)(ec, n);
        }
    };

    // The same for a wait, whose completion carries no count.
    template <class Handler>
    struct wait_handler : timeout_handler<Handler> {
        void operator()(error_code ec) {
            if (ec && this->w->timed_out) {
                ec = beast::error::timeout;
            }
            std::move(this->handler)(ec);
        }
    };

    // The same for a drained read: notes whether it came back short.
    template <class Handler>
    struct drained_handler : timeout_handler<Handler> {
        std::size_t asked = 0;

        void operator()(error_code ec, std::size_t n) {
            this->w->last_short = !ec && n < asked;
            timeout_handler<Handler>::operator()(ec, n);
        }
    };

public:
    using executor_type = executor;
    using lowest_layer_type = tcp_socket;

    explicit tcp_stream(executor ex) : tcp_stream(tcp_socket(ex)) {}
    explicit tcp_stream(tcp_socket socket)
        : socket_(std::move(socket)), w_(new watch(socket_.get_executor(), &socket_)) {}
    ~tcp_stream() {
        w_->socket = nullptr;
        w_->timer.cancel();
    }
    tcp_stream(const tcp_stream&) = delete;
    tcp_stream& operator=(const tcp_stream&) = delete;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    tcp_socket& socket() noexcept { return socket_; }
    tcp_socket& lowest_layer() noexcept { return socket_; }

    // (From the coarse clock: timeouts are seconds long, and this runs on every operation.)
    void expires_after(steady_clock::duration d) { expires_at(coarse_now() + d); }
    void expires_at(time_point t) {
        w_->deadline = t;
        w_->timed_out = false;
        if (t < w_->armed_for) {
            arm(w_, t);
        }
    }
    // No deadline (a wait still pending finds nothing to do when it wakes).
    void expires_never() { w_->deadline = time_point::max(); }
    // The first read after a write, when the read before it came back short, waits for
    // epoll instead of trying recv() first (drained_read.hpp). For a plain upstream
    // connection, whose answer follows the request just written: it saves the recv() that
    // fails with EAGAIN, 0.67 a request. Not for a client connection: there the attempt
    // finds the next request already waiting often enough that waiting for epoll instead
    // (one pass of the worker's other ready connections) cost the benchmark's p99 about
    // 1 ms. A no-op where drained reads are not built.
    void wait_after_short_reads() noexcept { drained_reads_ = true; }
    // The socket was closed because a deadline passed.
    bool timed_out() const noexcept { return w_->timed_out; }
    void close() {
        error_code ignored;
        socket_.close(ignored);
    }

    template <class MutableBuffers, class Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const MutableBuffers& b) {
#ifdef MICHI_DRAINED_READS
                if (drained_reads_) {
                    read_drained(first_buffer(b), std::move(handler));
                    return;
                }
#endif
                socket_.async_read_some(
                    b, timeout_handler<std::decay_t<decltype(handler)>>{std::move(handler), w_});
            },
            token, buffers);
    }

    // Waits until the socket has bytes (or an end, or an error) to read, without reading
    // them: a connection that waits long need hold no buffer meanwhile. Then read_now().
    template <class Token>
    auto async_wait_readable(Token&& token) {
        return net::async_initiate<Token, void(error_code)>(
            [this](auto handler) {
                socket_.async_wait(
                    tcp_socket::wait_read,
                    wait_handler<std::decay_t<decltype(handler)>>{{std::move(handler), w_}});
            },
            token);
    }
    // Reads what the socket has now, without waiting: false when it has nothing (the read
    // must then wait); else `ec` and `n` are the read's, as async_read_some's.
    bool read_now(net::mutable_buffer b, error_code& ec, std::size_t& n) {
        n = 0;
        if (!try_recv(b, ec, n)) {
            return false;
        }
        w_->last_short = !ec && n < b.size();
        return true;
    }

    template <class ConstBuffers, class Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const ConstBuffers& b) {
                w_->wrote = true;
                socket_.async_write_some(
                    b, timeout_handler<std::decay_t<decltype(handler)>>{std::move(handler), w_});
            },
            token, buffers);
    }

    // Writes what the socket takes now, without waiting: the count of bytes written (0 when
    // its send buffer is full); `ec` is set on a failure. Only while no write is pending.
    // The read that follows counts as a read after a write (wait_after_short_reads).
    template <std::size_t N>
    std::size_t write_now(const std::array<net::const_buffer, N>& buffers, error_code& ec) {
        ::iovec iov[N];
        std::size_t count = 0;
        for (const auto& b : buffers) {
            if (b.size() != 0) {
                iov[count++] = {const_cast<void*>(b.data()), b.size()};
            }
        }
        if (count == 0 || !socket_.is_open()) {
            return 0;
        }
        w_->wrote = true;
        ::msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = count;
        for (;;) {
            const auto n = ::sendmsg(socket_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n >= 0) {
                return static_cast<std::size_t>(n);
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                ec = error_code(errno, net::error::get_system_category());
            }
            return 0;
        }
    }

private:
    // A drained read: the first after a write is left to the reactor (which, after a short
    // read, waits for epoll); any other after a short read tries recv() here first, since
    // the peer's FIN may wait behind the bytes the short read took.
    template <class Handler>
    void read_drained(drained_read_buffer b, Handler handler) {
        const bool after_write = std::exchange(w_->wrote, false);
        if (w_->last_short && !after_write && b.buffer.size() != 0 && socket_.is_open()) {
            error_code ec;
            std::size_t n = 0;
            if (try_recv(b.buffer, ec, n)) {
                w_->last_short = !ec && n < b.buffer.size();
                net::post(socket_.get_executor(),
                          net::append(timeout_handler<Handler>{std::move(handler), w_}, ec, n));
                return;
            }
        }
        socket_.async_read_some(
            b, drained_handler<Handler>{{std::move(handler), w_}, b.buffer.size()});
    }

    // One non-blocking recv(): false when it would block.
    bool try_recv(net::mutable_buffer b, error_code& ec, std::size_t& n) {
        for (;;) {
            const auto got = ::recv(socket_.native_handle(), b.data(), b.size(), MSG_DONTWAIT);
            if (got > 0) {
                n = static_cast<std::size_t>(got);
                return true;
            }
            if (got == 0) {
                ec = net::error::eof;
                return true;
            }
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return false;
            }
            ec = error_code(errno, net::error::get_system_category());
            return true;
        }
    }

    static void arm(const watch_ref& w, time_point t) {
        w->armed_for = t;
        const auto generation = ++w->generation;
        w->timer.expires_at(t);
        w->timer.async_wait([w, generation](error_code ec) { wake(w, generation, ec); });
    }

    static void wake(const watch_ref& w, std::uint64_t generation, error_code ec) {
        // Cancelled, replaced by a wait for an earlier deadline, or the stream is gone.
        if (ec == net::error::operation_aborted || generation != w->generation ||
            w->socket == nullptr) {
            return;
        }
        w->armed_for = time_point::max();
        if (w->deadline == time_point::max()) {
            return;
        }
        if (steady_clock::now() >= w->deadline) {
            w->timed_out = true;
            error_code ignored;
            w->socket->close(ignored);
            return;
        }
        arm(w, w->deadline);
    }

    tcp_socket socket_;
    watch_ref w_;
    bool drained_reads_ = false;
};

// A connection that is plain TCP or TLS over it: reads and writes go to `tls` when there is
// one, else to `plain` (the upstream's connections and the client's side of a session).
using tls_over_tcp = beast::ssl_stream<tcp_stream>;

template <class MutableBuffers, class Token>
auto async_read_some(tls_over_tcp* tls, tcp_stream& plain, const MutableBuffers& buffers,
                     Token&& token) {
    return net::async_initiate<Token, void(error_code, std::size_t)>(
        [tls, &plain](auto handler, const MutableBuffers& b) {
            if (tls != nullptr) {
                tls->async_read_some(b, std::move(handler));
            } else {
                plain.async_read_some(b, std::move(handler));
            }
        },
        token, buffers);
}

// The buffers after their first n bytes.
template <std::size_t N>
std::array<net::const_buffer, N> after(std::array<net::const_buffer, N> buffers, std::size_t n) {
    for (auto& b : buffers) {
        const auto k = std::min(n, b.size());
        b += k;
        n -= k;
    }
    return buffers;
}

// Writes what a plain connection's socket takes now (tcp_stream::write_now); nothing on a
// TLS one. The bytes written; `ec` set on a failure.
template <std::size_t N>
std::size_t write_now(tls_over_tcp* tls, tcp_stream& plain,
                      const std::array<net::const_buffer, N>& buffers, error_code& ec) {
    return tls != nullptr ? 0 : plain.write_now(buffers, ec);
}

template <class ConstBuffers, class Token>
auto async_write(tls_over_tcp* tls, tcp_stream& plain, const ConstBuffers& buffers, Token&& token) {
    return net::async_initiate<Token, void(error_code, std::size_t)>(
        [tls, &plain](auto handler, const ConstBuffers& b) {
            if (tls != nullptr) {
                net::async_write(*tls, b, std::move(handler));
            } else {
                net::async_write(plain, b, std::move(handler));
            }
        },
        token, buffers);
}

} // namespace michi
