#include "michi/app/healthcheck.hpp"

#include "michi/core/net.hpp"
#include "michi/core/url_text.hpp"

#include <iostream>

namespace michi {
namespace {

constexpr std::string_view default_url = "http://127.0.0.1:8080/healthz";
constexpr std::chrono::milliseconds default_timeout{2000};

std::string describe(const error_code& ec, std::chrono::milliseconds timeout) {
    if (ec == beast::error::timeout) {
        return "timed out after " + std::to_string(timeout.count()) + " ms";
    }
    return ec.message();
}

// One GET, its status into `status` or the failure into `what`; every step within the
// stream's deadline.
net::awaitable<void> get_status(probe_target t, std::chrono::milliseconds timeout, unsigned& status,
                                std::string& what) {
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(t.host, t.port, net::as_tuple(net::use_awaitable));
    if (rec) {
        what = "cannot resolve " + t.host + ": " + rec.message();
        co_return;
    }
    beast::tcp_stream stream(ex);
    stream.expires_after(timeout);
    auto [cec, ep] = co_await stream.async_connect(results, net::as_tuple(net::use_awaitable));
    if (cec) {
        what = describe(cec, timeout);
        co_return;
    }
    http::request<http::empty_body> req{http::verb::get, t.target, 11};
    req.set(http::field::host, t.host);
    req.set(http::field::user_agent, "michi-gateway healthcheck");
    req.set(http::field::connection, "close");
    auto [wec, wn] = co_await http::async_write(stream, req, net::as_tuple(net::use_awaitable));
    if (wec) {
        what = describe(wec, timeout);
        co_return;
    }
    beast::flat_buffer buf;
    http::response_parser<http::empty_body> parser;
    parser.skip(true); // only the head matters
    auto [rec2, rn] =
        co_await http::async_read_header(stream, buf, parser, net::as_tuple(net::use_awaitable));
    if (rec2) {
        what = describe(rec2, timeout);
        co_return;
    }
    status = parser.get().result_int();
    what = std::to_string(status) + " " + std::string(parser.get().reason());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

} // namespace

std::optional<probe_target> parse_probe_url(std::string_view url, std::string& why) {
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme)) {
        why = "only http:// URLs are probed";
        return std::nullopt;
    }
    url.remove_prefix(scheme.size());
    const auto slash = url.find_first_of("/?");
    const auto authority = url.substr(0, slash);
    probe_target t;
    t.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (t.target.starts_with('?')) {
        t.target.insert(0, "/");
    }
    if (authority.find('@') != std::string_view::npos) {
        why = "user info in the URL is not supported";
        return std::nullopt;
    }
    auto parts = wire::split_authority(authority, why);
    if (!parts) {
        return std::nullopt;
    }
    if (parts->host.empty()) {
        why = "no host in the URL";
        return std::nullopt;
    }
    t.host = std::move(parts->host);
    t.port = parts->port ? std::string(*parts->port) : "80";
    if (t.port.empty() || t.port.size() > 5 ||
        t.port.find_first_not_of("0123456789") != std::string::npos || std::stoi(t.port) == 0 ||
        std::stoi(t.port) > 65535) {
        why = "bad port \"" + t.port + "\"";
        return std::nullopt;
    }
    return t;
}

bool probe(const probe_target& t, std::chrono::milliseconds timeout, std::string& what) {
    unsigned status = 0;
    bool done = false;
    net::io_context ctx;
    what.clear();
    net::co_spawn(ctx, get_status(t, timeout, status, what),
                  [&](const std::exception_ptr&) { done = true; });
    // The stream's deadline bounds connect, write and read; this bounds name resolution too.
    ctx.run_for(timeout + std::chrono::milliseconds(100));
    if (!done) {
        what = "timed out after " + std::to_string(timeout.count()) + " ms";
        return false;
    }
    if (what.empty()) {
        what = "no answer";
    }
    return status == 200;
}

int run_healthcheck(const std::vector<std::string_view>& args) {
    std::string_view url = default_url;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--url" && i + 1 < args.size()) {
            url = args[++i];
        } else if (args[i].starts_with("--url=")) {
            url = args[i].substr(6);
        } else {
            std::cerr << "healthcheck: unexpected argument \"" << args[i] << "\"\n";
            return 2;
        }
    }
    std::string why;
    const auto target = parse_probe_url(url, why);
    if (!target) {
        std::cerr << "healthcheck: " << url << ": " << why << "\n";
        return 2;
    }
    std::string what;
    const bool ok = probe(*target, default_timeout, what);
    (ok ? std::cout : std::cerr) << (ok ? "healthy: " : "unhealthy: ") << url << ": " << what
                                 << "\n";
    return ok ? 0 : 1;
}

} // namespace michi
