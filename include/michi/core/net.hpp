#pragma once
// Namespace aliases and small helpers for Asio/Beast code.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace michi {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
template <class T>
using awaitable = net::awaitable<T>;
using steady_clock = std::chrono::steady_clock;

// Completion token that returns errors as values: auto [ec, n] = co_await op(nothrow).
inline constexpr auto nothrow = net::as_tuple(net::use_awaitable);

} // namespace michi
