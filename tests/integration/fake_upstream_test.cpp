// Self-test of the fake upstream used by the integration suites, driven by a plain Beast client.

#include "support/temp_dir.hpp"
#include "support/fake_upstream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using asio::use_awaitable;
using michi::test::fake_upstream;
using michi::test::temp_dir;
using namespace std::chrono_literals;

constexpr auto use_tuple = asio::as_tuple(use_awaitable);

// Runs the client coroutine made by `make` on its own io_context, bounded by `timeout`.
template <class MakeCoro>
::testing::AssertionResult run_client(MakeCoro make, std::chrono::milliseconds timeout = 10s) {
    asio::io_context ioc;
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(ioc, make(), [&](std::exception_ptr e) {
        done = true;
        error = e;
    });
    ioc.run_for(timeout);
    if (!done) {
        return ::testing::AssertionFailure() << "client did not finish in time";
    }
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            return ::testing::AssertionFailure() << "client threw: " << e.what();
        }
    }
    return ::testing::AssertionSuccess();
}

asio::awaitable<tcp::socket> connect_to(std::uint16_t port) {
    tcp::socket socket(co_await asio::this_coro::executor);
    co_await socket.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
                                  use_awaitable);
    co_return socket;
}

http::request<http::string_body> make_request(const std::string& body,
                                              const std::string& key = "sk-test") {
    http::request<http::string_body> req(http::verb::post, "/v1/chat/completions", 11);
    req.set(http::field::host, "upstream.test");
    req.set(http::field::authorization, "Bearer " + key);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    return req;
}

TEST(FakeUpstreamTest, KeepAliveServesManyRequestsOnOneConnection) {
    fake_upstream up;
    EXPECT_EQ(up.base_url(), "http://127.0.0.1:" + std::to_string(up.port()));

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        beast::flat_buffer buffer;
        for (int i = 0; i < 3; ++i) {
            auto req = make_request(R"({"model":"m)" + std::to_string(i) + R"("})",
                                    "sk-" + std::to_string(i));
            co_await http::async_write(socket, req, use_awaitable);
            http::response<http::string_body> res;
            co_await http::async_read(socket, buffer, res, use_awaitable);
            EXPECT_EQ(res.result_int(), 200u);
            EXPECT_TRUE(res.keep_alive());
            EXPECT_EQ(res[http::field::content_type], "application/json");
            auto body = nlohmann::json::parse(res.body());
            EXPECT_EQ(body["model"], "m" + std::to_string(i));
            EXPECT_EQ(body["choices"][0]["message"]["content"], "hello from fake");
            EXPECT_EQ(body["usage"]["total_tokens"], 8);
        }
    }));

    EXPECT_EQ(up.request_count(), 3u);
    EXPECT_EQ(up.connections_opened(), 1u);
    auto reqs = up.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(reqs[1].method, "POST");
    EXPECT_EQ(reqs[1].target, "/v1/chat/completions");
    EXPECT_EQ(reqs[1].headers.at("authorization"), "Bearer sk-1");
    EXPECT_EQ(reqs[1].headers.at("content-type"), "application/json");
    EXPECT_EQ(reqs[1].headers.at("host"), "upstream.test");
    EXPECT_EQ(reqs[1].body, R"({"model":"m1"})");
    // The client's socket is gone with its io_context: the fake sees the close.
    EXPECT_TRUE(up.wait_until([&] { return up.connections_closed() == 1; }));
}

TEST(FakeUpstreamTest, DefaultHandlerFallsBackToFakeModelAndHandlerErrorsBecome500) {
    fake_upstream up;
    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        beast::flat_buffer buffer;
        auto req = make_request("not json");
        co_await http::async_write(socket, req, use_awaitable);
        http::response<http::string_body> res;
        co_await http::async_read(socket, buffer, res, use_awaitable);
        EXPECT_EQ(nlohmann::json::parse(res.body())["model"], "fake-model");

        up.set_handler([](const michi::test::recorded_request&) -> michi::test::fake_response {
            throw std::runtime_error("boom");
        });
        co_await http::async_write(socket, req, use_awaitable);
        http::response<http::string_body> failed;
        co_await http::async_read(socket, buffer, failed, use_awaitable);
        EXPECT_EQ(failed.result_int(), 500u);
        EXPECT_NE(failed.body().find("boom"), std::string::npos);
    }));
    EXPECT_EQ(up.connections_opened(), 1u);
}

TEST(FakeUpstreamTest, SseResponseIsChunkedOneEventPerChunkAndKeepsConnection) {
    fake_upstream up;
    up.set_handler([](const michi::test::recorded_request&) {
        return michi::test::sse_response({R"({"a":1})", R"({"a":2})", "[DONE]"}, 5ms);
    });

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        beast::flat_buffer buffer;
        auto req = make_request(R"({"model":"m","stream":true})");
        co_await http::async_write(socket, req, use_awaitable);

        http::response_parser<http::string_body> parser;
        int chunk_count = 0;
        auto on_chunk = [&](std::uint64_t size, std::string_view, error_code&) {
            if (size > 0) {
                ++chunk_count;
            }
        };
        parser.on_chunk_header(on_chunk);
        co_await http::async_read(socket, buffer, parser, use_awaitable);
        const auto& res = parser.get();
        EXPECT_EQ(res.result_int(), 200u);
        EXPECT_TRUE(res.chunked());
        EXPECT_TRUE(res.keep_alive());
        EXPECT_EQ(res[http::field::content_type], "text/event-stream");
        EXPECT_EQ(res.body(), "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n");
        EXPECT_EQ(chunk_count, 3);

        // The connection stays usable after a completed stream.
        up.set_handler(michi::test::default_chat_completion);
        co_await http::async_write(socket, req, use_awaitable);
        http::response<http::string_body> plain;
        co_await http::async_read(socket, buffer, plain, use_awaitable);
        EXPECT_EQ(plain.result_int(), 200u);
    }));

    EXPECT_EQ(up.request_count(), 2u);
    EXPECT_EQ(up.connections_opened(), 1u);
    EXPECT_EQ(up.streams_aborted(), 0u);
}

TEST(FakeUpstreamTest, CutAfterChunksEndsWithoutTerminatorAndIsNotAnAbort) {
    fake_upstream up;
    up.set_handler([](const michi::test::recorded_request&) {
        auto res = michi::test::sse_response({"one", "two"});
        res.cut_after_chunks = true;
        return res;
    });

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        beast::flat_buffer buffer;
        auto req = make_request("{}");
        co_await http::async_write(socket, req, use_awaitable);
        http::response_parser<http::string_body> parser;
        auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_tuple);
        EXPECT_EQ(ec, http::error::partial_message) << ec.message();
        EXPECT_EQ(parser.get().body(), "data: one\n\ndata: two\n\n");
    }));

    EXPECT_TRUE(up.wait_until([&] { return up.connections_closed() == 1; }));
    EXPECT_EQ(up.streams_aborted(), 0u);
}

TEST(FakeUpstreamTest, CloseConnectionAndHeadDelay) {
    fake_upstream up;
    up.set_handler([](const michi::test::recorded_request&) {
        auto res = michi::test::json_response(201, R"({"ok":true})");
        res.head_delay = 20ms;
        res.close_connection = true;
        res.headers.emplace_back("x-extra", "yes");
        return res;
    });

    for (int round = 0; round < 2; ++round) {
        ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
            auto socket = co_await connect_to(up.port());
            beast::flat_buffer buffer;
            auto req = make_request("{}");
            const auto started = std::chrono::steady_clock::now();
            co_await http::async_write(socket, req, use_awaitable);
            http::response<http::string_body> res;
            co_await http::async_read(socket, buffer, res, use_awaitable);
            EXPECT_GE(std::chrono::steady_clock::now() - started, 20ms);
            EXPECT_EQ(res.result_int(), 201u);
            EXPECT_FALSE(res.keep_alive());
            EXPECT_EQ(res["x-extra"], "yes");
            EXPECT_EQ(res.body(), R"({"ok":true})");
            http::response<http::string_body> next;
            auto [ec, n] = co_await http::async_read(socket, buffer, next, use_tuple);
            EXPECT_EQ(ec, http::error::end_of_stream) << ec.message();
        }));
    }
    EXPECT_EQ(up.connections_opened(), 2u);
    EXPECT_EQ(up.request_count(), 2u);
}

// Reads the head and, if `want_body`, the first body bytes; then the caller drops the socket.
template <class Stream>
asio::awaitable<void> read_head_then_return(Stream& stream, bool want_body) {
    beast::flat_buffer buffer;
    auto req = make_request(R"({"stream":true})");
    co_await http::async_write(stream, req, use_awaitable);
    http::response_parser<http::string_body> parser;
    co_await http::async_read_header(stream, buffer, parser, use_awaitable);
    EXPECT_TRUE(parser.get().chunked());
    while (want_body && parser.get().body().empty()) {
        co_await http::async_read_some(stream, buffer, parser, use_awaitable);
    }
    if (want_body) {
        EXPECT_EQ(parser.get().body().substr(0, 7), "data: 0");
    }
}

michi::test::fake_response long_stream(std::chrono::milliseconds delay) {
    std::vector<std::string> events;
    for (int i = 0; i < 100; ++i) {
        events.push_back(std::to_string(i));
    }
    return michi::test::sse_response(std::move(events), delay);
}

TEST(FakeUpstreamTest, ClientClosingMidStreamCountsAsAbort) {
    fake_upstream up;
    // 100 chunks 100 ms apart: the stream would take 10 s to complete.
    up.set_handler([](const michi::test::recorded_request&) { return long_stream(100ms); });

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        co_await read_head_then_return(socket, true);
        socket.close();
    }));

    EXPECT_TRUE(up.wait_until([&] { return up.streams_aborted() == 1; }, 5s));
    EXPECT_TRUE(up.wait_until([&] { return up.connections_closed() == 1; }, 5s));
    EXPECT_EQ(up.streams_aborted(), 1u);
}

TEST(FakeUpstreamTest, AbortIsSeenDuringChunkDelayWithoutAnyWrite) {
    fake_upstream up;
    // The first chunk is 60 s away, so only the concurrent read can notice the close.
    up.set_handler([](const michi::test::recorded_request&) { return long_stream(60s); });

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        auto socket = co_await connect_to(up.port());
        co_await read_head_then_return(socket, false);
        socket.close();
    }));

    EXPECT_TRUE(up.wait_until([&] { return up.streams_aborted() == 1; }, 5s));
}

TEST(FakeUpstreamTest, DestructorStopsWhileResponsesAreSuspended) {
    asio::io_context client_ioc;
    tcp::socket delayed_head(client_ioc);
    tcp::socket delayed_chunk(client_ioc);
    const auto started = std::chrono::steady_clock::now();
    {
        fake_upstream up;
        up.set_handler([](const michi::test::recorded_request& req) {
            if (req.target == "/head") {
                auto res = michi::test::json_response(200, "{}");
                res.head_delay = 60s;
                return res;
            }
            return long_stream(60s);
        });
        const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), up.port());
        delayed_head.connect(endpoint);
        delayed_chunk.connect(endpoint);
        auto head_req = make_request("{}");
        head_req.target("/head");
        http::write(delayed_head, head_req);
        auto chunk_req = make_request("{}");
        http::write(delayed_chunk, chunk_req);
        ASSERT_TRUE(up.wait_until([&] { return up.request_count() == 2; }));
        // Leaving the scope destroys the fake with both coroutines suspended on 60 s timers.
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(FakeUpstreamTest, TlsVerifiesForLocalhostWithTestCa) {
    temp_dir dir;
    auto files = michi::test::make_test_certs(dir.str());
    fake_upstream up(&files);
    EXPECT_EQ(up.base_url("localhost"), "https://localhost:" + std::to_string(up.port()));

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        ssl::context ctx(ssl::context::tls_client);
        ctx.load_verify_file(files.ca_file);
        ctx.set_verify_mode(ssl::verify_peer);
        ssl::stream<tcp::socket> stream(co_await connect_to(up.port()), ctx);
        EXPECT_EQ(SSL_set_tlsext_host_name(stream.native_handle(), "localhost"), 1);
        stream.set_verify_callback(ssl::host_name_verification("localhost"));
        co_await stream.async_handshake(ssl::stream_base::client, use_awaitable);

        beast::flat_buffer buffer;
        for (int i = 0; i < 2; ++i) {
            auto req = make_request(R"({"model":"tls-model"})");
            co_await http::async_write(stream, req, use_awaitable);
            http::response<http::string_body> res;
            co_await http::async_read(stream, buffer, res, use_awaitable);
            EXPECT_EQ(res.result_int(), 200u);
            EXPECT_EQ(nlohmann::json::parse(res.body())["model"], "tls-model");
        }
    }));
    EXPECT_EQ(up.connections_opened(), 1u);
    EXPECT_EQ(up.request_count(), 2u);
}

TEST(FakeUpstreamTest, TlsFailsHostNameVerificationForIpAndWithoutTestCa) {
    temp_dir dir;
    auto files = michi::test::make_test_certs(dir.str());
    fake_upstream up(&files);

    auto handshake = [&](bool trust_ca, const std::string& host) {
        error_code result;
        EXPECT_TRUE(run_client([&]() -> asio::awaitable<void> {
            ssl::context ctx(ssl::context::tls_client);
            if (trust_ca) {
                ctx.load_verify_file(files.ca_file);
            }
            ctx.set_verify_mode(ssl::verify_peer);
            ssl::stream<tcp::socket> stream(co_await connect_to(up.port()), ctx);
            stream.set_verify_callback(ssl::host_name_verification(host));
            auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
            result = ec;
        }));
        return result;
    };

    // The certificate has only SAN DNS:localhost, so an IP-named host must not verify.
    auto ip_error = handshake(true, "127.0.0.1");
    ASSERT_TRUE(ip_error);
    EXPECT_EQ(ip_error.category(), asio::error::get_ssl_category());
    EXPECT_EQ(ERR_GET_REASON(ip_error.value()), SSL_R_CERTIFICATE_VERIFY_FAILED)
        << ip_error.message();

    auto untrusted_error = handshake(false, "localhost");
    ASSERT_TRUE(untrusted_error);
    EXPECT_EQ(ERR_GET_REASON(untrusted_error.value()), SSL_R_CERTIFICATE_VERIFY_FAILED)
        << untrusted_error.message();

    EXPECT_FALSE(handshake(true, "localhost")) << "control: the same setup verifies for localhost";

    EXPECT_TRUE(up.wait_until([&] { return up.connections_closed() == 3; }));
    EXPECT_EQ(up.connections_opened(), 3u);
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(FakeUpstreamTest, TlsClientClosingMidStreamCountsAsAbort) {
    temp_dir dir;
    auto files = michi::test::make_test_certs(dir.str());
    fake_upstream up(&files);
    up.set_handler([](const michi::test::recorded_request&) { return long_stream(60s); });

    ASSERT_TRUE(run_client([&]() -> asio::awaitable<void> {
        ssl::context ctx(ssl::context::tls_client);
        ctx.load_verify_file(files.ca_file);
        ctx.set_verify_mode(ssl::verify_peer);
        ssl::stream<tcp::socket> stream(co_await connect_to(up.port()), ctx);
        stream.set_verify_callback(ssl::host_name_verification("localhost"));
        co_await stream.async_handshake(ssl::stream_base::client, use_awaitable);
        co_await read_head_then_return(stream, false);
        stream.next_layer().close();
    }));

    EXPECT_TRUE(up.wait_until([&] { return up.streams_aborted() == 1; }, 5s));
}

} // namespace
