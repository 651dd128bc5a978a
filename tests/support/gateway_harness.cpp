#include "support/gateway_harness.hpp"

#include "michi/core/secret.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <stdexcept>
#include <thread>

namespace michi::test {

std::string basic_config(const std::string& fake_base_url, const config_parts& parts) {
    const bool own_threads = parts.server.find("threads:") != std::string::npos;
    return "server:\n  listen: \"127.0.0.1:0\"\n" +
           std::string(own_threads ? "" : "  threads: 1\n") + parts.server +
           "log: { level: warn }\n"
           "store: { sqlite: \"" +
           parts.sqlite + "\"" + parts.store +
           " }\n"
           "providers:\n"
           "  fake: { type: openai, base_url: \"" +
           fake_base_url +
           "/v1\", api_key: \"sk-upstream-test\" }\n"
           "  echo: { type: echo }\n" +
           parts.providers +
           "models:\n"
           "  fake/gpt-test: { upstream: gpt-test, input_per_mtok: 1, output_per_mtok: 2 }\n" +
           parts.models +
           "keys:\n"
           "  - id: tester\n"
           "    class: developer\n"
           "    secret_sha256: \"" +
           sha256_hex(test_secret) + "\"\n" + parts.keys + parts.rest;
}

bool eventually(const std::function<bool()>& check, std::chrono::milliseconds limit) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!check()) {
        if (std::chrono::steady_clock::now() >= give_up) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

std::string key_entry(const std::string& id, const std::string& cls, const std::string& secret,
                      const std::string& extra) {
    return "  - id: " + id + "\n    class: " + cls + "\n    secret_sha256: \"" +
           sha256_hex(secret) + "\"\n" + extra;
}

gateway_harness::gateway_harness(const std::string& yaml, guard::wall_clock clock) {
    auto loaded = config::load_string(yaml);
    if (!loaded.cfg) {
        std::string all;
        for (const auto& e : loaded.errors) {
            all += e + "\n";
        }
        throw std::runtime_error("bad test config:\n" + all);
    }
    auto rt = pipeline::snapshot::build(loaded.cfg);
    if (!rt) {
        throw std::runtime_error(rt.error().message);
    }
    gw_ = std::make_unique<gateway>(rt.value(), std::move(clock));
    gw_->start();
}

gateway_harness::~gateway_harness() {
    gw_->drain(std::chrono::seconds(5));
    gw_->stop();
}

http_reply gateway_harness::request(http::verb method, const std::string& target,
                                    const std::string& body,
                                    std::map<std::string, std::string> headers) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port()));
    stream.expires_after(std::chrono::seconds(30));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) {
        req.set(k, v);
    }
    if (!body.empty() && req[http::field::content_type].empty()) {
        req.set(http::field::content_type, "application/json");
    }
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(stream, buffer, parser);
    const auto& res = parser.get();
    http_reply out;
    out.status = res.result_int();
    for (const auto& field : res) {
        std::string name(field.name_string());
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        out.headers[name] = std::string(field.value());
    }
    out.body = res.body();
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return out;
}

kept_alive_client::kept_alive_client(std::uint16_t port) : sock_(ioc_) {
    sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
}

http::response<http::string_body>
kept_alive_client::request(http::verb method, const std::string& target, const std::string& body,
                           const std::map<std::string, std::string>& headers) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::authorization, std::string("Bearer ") + test_secret);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
    }
    for (const auto& [k, v] : headers) {
        req.set(k, v);
    }
    req.body() = body;
    req.prepare_payload();
    http::write(sock_, req);
    http::response<http::string_body> res;
    http::read(sock_, buffer_, res);
    return res;
}

raw_client::raw_client(std::uint16_t port, std::chrono::milliseconds recv_timeout) : sock_(ioc_) {
    sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(recv_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((recv_timeout.count() % 1000) * 1000);
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void raw_client::send(const std::string& bytes) { net::write(sock_, net::buffer(bytes)); }

std::string raw_client::read_until(const std::string& needle) {
    std::string all;
    char buf[4096];
    while (all.find(needle) == std::string::npos) {
        const auto n = ::recv(sock_.native_handle(), buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
    return all;
}

bool raw_client::wait_closed() {
    char buf[4096];
    for (;;) {
        const auto n = ::recv(sock_.native_handle(), buf, sizeof buf, 0);
        if (n == 0) {
            return true;
        }
        if (n < 0) {
            return errno == ECONNRESET;
        }
    }
}

void raw_client::close() {
    error_code ignored;
    sock_.close(ignored);
}

} // namespace michi::test
