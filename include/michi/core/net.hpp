#pragma once
// Namespace aliases and small helpers for Asio/Beast code.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <time.h>

#include <chrono>

namespace michi {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using steady_clock = std::chrono::steady_clock;

// steady_clock's time at the kernel's last timer tick (a few milliseconds behind; read
// without the cycle counter, several times cheaper): for deadlines and idle ages counted
// in seconds, never for measuring. Same clock as steady_clock (CLOCK_MONOTONIC).
inline steady_clock::time_point coarse_now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return steady_clock::time_point(std::chrono::duration_cast<steady_clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// Every I/O object and coroutine runs on its worker's io_context, so they name its
// executor type itself rather than the type-erased any_io_executor: no erased copy, move
// and dispatch per operation (a tenth of a proxied request's instructions).
using executor = net::io_context::executor_type;
template <class T>
using awaitable = net::awaitable<T, executor>;
using tcp_socket = net::basic_stream_socket<tcp, executor>;
using tcp_acceptor = net::basic_socket_acceptor<tcp, executor>;
using tcp_resolver = net::ip::basic_resolver<tcp, executor>;
using steady_timer =
    net::basic_waitable_timer<steady_clock, net::wait_traits<steady_clock>, executor>;

// Completion token that returns errors as values: auto [ec, n] = co_await op(nothrow).
inline constexpr auto nothrow = net::as_tuple(net::use_awaitable_t<executor>{});

// The same for an operation awaited as soon as it is made (`co_await s.async_read_some(b,
// nothrow_op)`, or a function's returned operation awaited by its caller at once): the
// coroutine waits on the operation itself, with no coroutine frame made, stacked and
// destroyed around each one as `use_awaitable` does. The operation starts when awaited, so
// what it reads or writes must stay put until then and until it completes.
inline constexpr auto nothrow_op = net::as_tuple(net::deferred);

} // namespace michi
