// The floor of the stack: the least an HTTP/1.1 reverse proxy built on Asio and Beast does,
// for bench/run.sh's FLOOR=1 target. Not part of Michi: no auth, no routing, no JSON, no
// guards, no log. One coroutine per client connection, one keep-alive upstream connection
// per client connection (what a pool amounts to under a closed-loop load), each message read
// by Beast's parser into a string body and written by Beast's serializer, with the same
// per-worker event loops and awaiting style as the gateway (`as_tuple(deferred)`).
//
//   michi-bench-floor LISTEN_PORT UPSTREAM_PORT THREADS
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto op = net::as_tuple(net::deferred);

net::awaitable<void> serve(tcp::socket client, tcp::endpoint upstream_at) {
    tcp::socket upstream(client.get_executor());
    boost::system::error_code ignored;
    client.set_option(tcp::no_delay(true), ignored);
    boost::beast::flat_buffer client_buf, upstream_buf;
    for (;;) {
        http::request_parser<http::string_body> req_parser;
        req_parser.body_limit(4 << 20);
        auto [rec, rn] = co_await http::async_read(client, client_buf, req_parser, op);
        if (rec) break;
        auto req = req_parser.release();
        req.keep_alive(true);
        if (!upstream.is_open()) {
            auto [cec] = co_await upstream.async_connect(upstream_at, op);
            if (cec) break;
            upstream.set_option(tcp::no_delay(true), ignored);
        }
        auto [wec, wn] = co_await http::async_write(upstream, req, op);
        if (wec) break;
        http::response_parser<http::string_body> res_parser;
        res_parser.body_limit(64 << 20);
        auto [uec, un] = co_await http::async_read(upstream, upstream_buf, res_parser, op);
        if (uec) break;
        auto res = res_parser.release();
        if (!res.keep_alive()) upstream.close(ignored);
        res.keep_alive(true);
        auto [cwec, cwn] = co_await http::async_write(client, res, op);
        if (cwec) break;
    }
}

net::awaitable<void> accept_loop(tcp::acceptor acceptor, tcp::endpoint upstream_at) {
    for (;;) {
        auto [ec, sock] = co_await acceptor.async_accept(op);
        if (ec) continue;
        net::co_spawn(acceptor.get_executor(), serve(std::move(sock), upstream_at), net::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT THREADS\n", argv[0]);
        return 2;
    }
    const auto listen_port = static_cast<unsigned short>(std::atoi(argv[1]));
    const tcp::endpoint upstream_at(net::ip::make_address("127.0.0.1"),
                                    static_cast<unsigned short>(std::atoi(argv[2])));
    const int threads = std::max(1, std::atoi(argv[3]));
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i) {
        workers.emplace_back([=] {
            net::io_context ioc(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
            tcp::acceptor acceptor(ioc);
            const tcp::endpoint at(net::ip::make_address("127.0.0.1"), listen_port);
            acceptor.open(at.protocol());
            acceptor.set_option(tcp::acceptor::reuse_address(true));
            int one = 1;
            ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
            acceptor.bind(at);
            acceptor.listen();
            net::co_spawn(ioc, accept_loop(std::move(acceptor), upstream_at), net::detached);
            ioc.run();
        });
    }
    for (auto& w : workers) w.join();
}
