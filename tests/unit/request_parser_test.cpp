// The client request parser: start line, fields looked up by name or by Beast's field id
// (the first of a repeated name, case-insensitively), keep-alive, and the whole body (plain
// or chunked), fed in every split; Beast's limits still apply.

#include "michi/downstream/request_parser.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace michi::downstream {
namespace {

// Feeds `wire` to a fresh parser `split` bytes at a time, as reads would deliver it.
// nullopt (with the error in `error`) when the parser refused the input.
std::optional<request> parse(const std::string& wire, std::size_t split,
                             error_code* error = nullptr, std::uint64_t body_limit = 1 << 20,
                             std::uint32_t header_limit = 8192, request* reuse = nullptr) {
    std::optional<request_parser> made;
    if (reuse != nullptr) {
        made.emplace(std::move(*reuse));
    } else {
        made.emplace();
    }
    request_parser& p = *made;
    p.eager(true);
    p.body_limit(body_limit);
    p.header_limit(header_limit);
    std::string pending;
    std::size_t at = 0;
    while (!p.is_done()) {
        if (at >= wire.size()) {
            return std::nullopt; // the input ended early
        }
        pending += wire.substr(at, split);
        at += split;
        error_code ec;
        pending.erase(0, p.put(net::buffer(pending), ec));
        if (ec && ec != http::error::need_more) {
            if (error != nullptr) {
                *error = ec;
            }
            return std::nullopt;
        }
    }
    return p.release();
}

TEST(RequestParserTest, ReadsStartLineFieldsAndBodyInEverySplit) {
    const std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
    const std::string wire = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\n"
                             "authorization: Bearer sk-1\r\nX-Request-Id: abc\r\n"
                             "x-custom: one\r\nX-CUSTOM: two\r\nContent-Type: application/json\r\n"
                             "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body;
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        const auto r = parse(wire, split);
        ASSERT_TRUE(r) << split;
        EXPECT_EQ(r->method(), http::verb::post);
        EXPECT_EQ(r->method_string(), "POST");
        EXPECT_EQ(r->target(), "/v1/chat/completions?x=1");
        EXPECT_EQ(r->version(), 11u);
        EXPECT_TRUE(r->keep_alive());
        EXPECT_EQ((*r)[http::field::authorization], "Bearer sk-1");
        EXPECT_EQ((*r)["Authorization"], "Bearer sk-1");
        EXPECT_EQ((*r)["x-request-id"], "abc");
        EXPECT_EQ((*r)["x-custom"], "one"); // the first of a repeated name
        EXPECT_EQ((*r)[http::field::content_type], "application/json");
        EXPECT_EQ((*r)["x-api-key"], "");
        EXPECT_EQ((*r)[http::field::expect], "");
        EXPECT_EQ(r->body(), body) << split;
    }
}

// The fields Michi reads on every request that Beast has no name for, looked up by their own
// id: as by name (the first of a repeated one, any case), empty when absent, and nothing of
// a previous request on the connection, or of fields let go, shows through.
TEST(RequestParserTest, ExtraFieldsAreFoundAsByName) {
    using extra = request::extra;
    const std::string wire = "POST /v1/messages HTTP/1.1\r\nHost: gw\r\nX-API-KEY: sk-a\r\n"
                             "x-api-key: sk-b\r\nAnthropic-Version: 2023-06-01\r\n"
                             "x-request-idx: no\r\nanthropic-beta: tools\r\n"
                             "X-Request-Id: r-1\r\nContent-Length: 0\r\n\r\n";
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        auto r = parse(wire, split);
        ASSERT_TRUE(r) << split;
        EXPECT_EQ((*r)[extra::x_api_key], "sk-a");
        EXPECT_EQ((*r)[extra::x_api_key], (*r)["x-api-key"]);
        EXPECT_EQ((*r)[extra::x_request_id], "r-1");
        EXPECT_EQ((*r)[extra::anthropic_version], "2023-06-01");
        EXPECT_EQ((*r)[extra::anthropic_beta], "tools");
        auto next = parse("GET /v1/models HTTP/1.1\r\nx-request-id: r-2\r\n\r\n", split, nullptr,
                          1 << 20, 8192, &*r);
        ASSERT_TRUE(next);
        EXPECT_EQ((*next)[extra::x_request_id], "r-2");
        EXPECT_EQ((*next)[extra::x_api_key], "");
        EXPECT_EQ((*next)[extra::anthropic_version], "");
        EXPECT_EQ((*next)[extra::anthropic_beta], "");
        next->release_fields();
        EXPECT_EQ((*next)[extra::x_request_id], "");
    }
}

// The next request on a connection reuses the previous one's storage: nothing of the
// previous request shows through (fields, target, body, keep-alive).
TEST(RequestParserTest, AReusedRequestCarriesNothingOver) {
    const std::string big(100 * 1024, 'x');
    auto first = parse("PUT /first/long/target HTTP/1.1\r\nX-Old: stale\r\nAuthorization: "
                       "Bearer one\r\nContent-Length: " +
                           std::to_string(big.size()) + "\r\n\r\n" + big,
                       64 * 1024);
    ASSERT_TRUE(first);
    EXPECT_EQ((*first)["x-old"], "stale");
    auto second = parse("GET /v1/models HTTP/1.0\r\nAuthorization: Bearer two\r\n\r\n", 7, nullptr,
                        1 << 20, 8192, &*first);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->method(), http::verb::get);
    EXPECT_EQ(second->method_string(), "GET");
    EXPECT_EQ(second->target(), "/v1/models");
    EXPECT_EQ(second->version(), 10u);
    EXPECT_FALSE(second->keep_alive());
    EXPECT_EQ((*second)["x-old"], "");
    EXPECT_EQ((*second)[http::field::authorization], "Bearer two");
    EXPECT_EQ(second->body(), "");
    const std::string small = "{}";
    auto third = parse("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n" + small, 3, nullptr, 1 << 20,
                       8192, &*second);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->body(), small);
    EXPECT_EQ((*third)["authorization"], "");
    EXPECT_TRUE(third->keep_alive());
}

TEST(RequestParserTest, ChunkedBodyIsJoinedAndConnectionCloseEndsKeepAlive) {
    const std::string wire = "POST /v1/embeddings HTTP/1.1\r\nConnection: close\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"
                             "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        const auto r = parse(wire, split);
        ASSERT_TRUE(r) << split;
        EXPECT_EQ(r->body(), "{\"a\":1}");
        EXPECT_FALSE(r->keep_alive());
    }
}

// An empty chunked body is its last chunk alone; when its final CRLF comes split, Beast 1.81
// (which asserted otherwise, in builds with assertions: src/core/boost_assert.cpp) reads on.
TEST(RequestParserTest, AnEmptyChunkedBodyInEverySplit) {
    const std::string wire = "POST /v1/chat/completions HTTP/1.1\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        const auto r = parse(wire, split);
        ASSERT_TRUE(r) << split;
        EXPECT_EQ(r->body(), "");
        EXPECT_TRUE(r->keep_alive());
    }
}

TEST(RequestParserTest, Http10KeepsAliveOnlyWhenAsked) {
    const auto plain = parse("GET /healthz HTTP/1.0\r\n\r\n", 4096);
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->version(), 10u);
    EXPECT_FALSE(plain->keep_alive());
    EXPECT_EQ(plain->body(), "");
    const auto asked = parse("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 4096);
    ASSERT_TRUE(asked);
    EXPECT_TRUE(asked->keep_alive());
}

TEST(RequestParserTest, UnknownMethodKeepsItsName) {
    const auto r = parse("BREW /pot HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 4096);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method(), http::verb::unknown);
    EXPECT_EQ(r->method_string(), "BREW");
}

TEST(RequestParserTest, BodyAndHeaderLimitsAndMalformedInputAreRefused) {
    error_code ec;
    EXPECT_FALSE(parse("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", 4096, &ec, 10));
    EXPECT_EQ(ec, http::error::body_limit);
    EXPECT_FALSE(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
                       4096, &ec, 10));
    EXPECT_EQ(ec, http::error::body_limit);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nX-Long: " + std::string(200, 'a') + "\r\n\r\n", 4096, &ec,
                       1 << 20, 100));
    EXPECT_EQ(ec, http::error::header_limit);
    EXPECT_FALSE(
        parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 4096, &ec));
    EXPECT_EQ(ec, http::error::multiple_content_length);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 4096, &ec));
    EXPECT_TRUE(ec);
}

TEST(RequestParserTest, FramingIsChunkedAloneOrOneContentLength) {
    // RFC 9112 section 6: only "chunked" (the one coding decoded), never with a length.
    for (const std::string fields : {
             "Transfer-Encoding: gzip\r\n",
             "Transfer-Encoding: chunked, identity\r\n",
             "Transfer-Encoding: gzip, chunked\r\n",
             "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
             "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
             "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
             "Transfer-Encoding:\r\n",
         }) {
        for (const std::size_t split : {1u, 7u, 4096u}) {
            error_code ec;
            EXPECT_FALSE(parse("POST / HTTP/1.1\r\n" + fields + "\r\n0\r\n\r\n", split, &ec))
                << fields;
            EXPECT_TRUE(ec == http::error::bad_transfer_encoding ||
                        ec == http::error::bad_content_length)
                << fields << ": " << ec.message();
        }
    }
    error_code ec;
    EXPECT_FALSE(
        parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 4096, &ec));
    EXPECT_EQ(ec, http::error::bad_transfer_encoding);
    // Exactly chunked, in any case and with spaces around it, still reads the body.
    const auto ok =
        parse("POST / HTTP/1.1\r\nTransfer-Encoding:  Chunked \r\n\r\n2\r\nhi\r\n0\r\n\r\n", 3);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->body(), "hi");
}

} // namespace
} // namespace michi::downstream
