// The upstream response parser: status, the first Content-Type and Retry-After, keep-alive,
// and the body (plain or chunked) into lent buffers of any size, fed in any split.

#include "michi/upstream/response_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace michi::upstream {
namespace {

struct parsed {
    unsigned status = 0;
    std::string type;
    std::string retry;
    bool keep_alive = false;
    bool done = false;
    std::string body;
};

// Feeds `wire` to a parser `split` bytes at a time (as reads would deliver it), lending
// `lend` bytes of body room per step.
parsed parse(const std::string& wire, std::size_t split, std::size_t lend) {
    response_parser p;
    p.eager(true);
    parsed out;
    std::string pending;
    std::size_t at = 0;
    std::string room(lend, '\0');
    bool need_input = true;
    for (int step = 0; step < 100000 && !p.is_done(); ++step) {
        if (need_input) {
            if (at >= wire.size()) {
                break; // the input ended early
            }
            pending += wire.substr(at, split);
            at += split;
        }
        p.lend(room.data(), room.size());
        error_code ec;
        const auto used = p.put(net::buffer(pending), ec);
        out.body.append(room.data(), room.size() - p.left());
        pending.erase(0, used);
        need_input = ec == http::error::need_more || pending.empty();
        if (ec && ec != http::error::need_more && ec != http::error::need_buffer) {
            ADD_FAILURE() << ec.message();
            break;
        }
    }
    out.status = p.status();
    out.type = std::string(p.content_type());
    out.retry = std::string(p.retry_after());
    out.keep_alive = p.keep_alive();
    out.done = p.is_done();
    return out;
}

TEST(ResponseParserTest, ReadsStatusTypeRetryAfterAndBodyInEverySplit) {
    const std::string body = R"({"error":{"message":"slow down"}})";
    const std::string wire = "HTTP/1.1 429 Too Many Requests\r\nServer: x\r\n"
                             "Content-Type: application/json\r\nretry-after: 7\r\n"
                             "Content-Type: text/plain\r\nRetry-After: 9\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body;
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        for (std::size_t lend : {std::size_t{1}, std::size_t{5}, std::size_t{4096}}) {
            const auto r = parse(wire, split, lend);
            ASSERT_TRUE(r.done) << split << " " << lend;
            EXPECT_EQ(r.status, 429u);
            EXPECT_EQ(r.type, "application/json"); // the first one, as Beast's fields[] gives
            EXPECT_EQ(r.retry, "7");
            EXPECT_TRUE(r.keep_alive);
            EXPECT_EQ(r.body, body) << split << " " << lend;
        }
    }
}

TEST(ResponseParserTest, ChunkedBodyIsJoinedAndConnectionCloseIsSeen) {
    const std::string wire = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "6\r\ndata: \r\n9\r\n{\"a\":1}\n\n\r\n0\r\n\r\n";
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        const auto r = parse(wire, split, 3);
        ASSERT_TRUE(r.done) << split;
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.type, "text/event-stream");
        EXPECT_EQ(r.retry, "");
        EXPECT_FALSE(r.keep_alive);
        EXPECT_EQ(r.body, "data: {\"a\":1}\n\n");
    }
}

// A Content-Type is kept whole whatever its length (a short one inline, a long one not),
// and the first one counts either way.
TEST(ResponseParserTest, ContentTypesOfEveryLengthAreKeptWhole) {
    for (const std::size_t extra : {0u, 43u, 44u, 45u, 200u}) { // 64 bytes inline
        const std::string type = "application/json; p=" + std::string(extra, 'x');
        const auto r = parse("HTTP/1.1 200 OK\r\nContent-Type: " + type +
                                 "\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
                             7, 16);
        ASSERT_TRUE(r.done) << extra;
        EXPECT_EQ(r.type, type) << extra;
    }
}

TEST(ResponseParserTest, UnknownStatusIsKeptAndNoFieldsMeanEmptyValues) {
    const auto r = parse("HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n", 4096, 16);
    ASSERT_TRUE(r.done);
    EXPECT_EQ(r.status, 599u);
    EXPECT_EQ(r.type, "");
    EXPECT_EQ(r.retry, "");
    EXPECT_EQ(r.body, "");
}

TEST(ResponseParserTest, WithoutALentBufferTheBodyWaits) {
    response_parser p;
    p.eager(true);
    const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    error_code ec;
    const auto used = p.put(net::buffer(wire), ec);
    EXPECT_EQ(ec, http::error::need_buffer);
    EXPECT_EQ(used, wire.size() - 2); // the head only
    EXPECT_FALSE(p.is_done());
}

TEST(ResponseParserTest, AnAnswerFramedTwoWaysOrInAnUndecodedCodingIsAnError) {
    for (const std::string fields : {
             "Transfer-Encoding: gzip\r\nContent-Length: 2\r\n",
             "Transfer-Encoding: gzip\r\n",
             "Transfer-Encoding: gzip, chunked\r\n",
             "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
         }) {
        response_parser p;
        p.eager(true);
        const std::string wire = "HTTP/1.1 200 OK\r\n" + fields + "\r\n{}";
        error_code ec;
        p.put(net::buffer(wire), ec);
        EXPECT_TRUE(ec == http::error::bad_transfer_encoding ||
                    ec == http::error::bad_content_length)
            << fields << ": " << ec.message();
    }
    response_parser old;
    error_code ec;
    const std::string http10 = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    old.put(net::buffer(http10), ec);
    EXPECT_EQ(ec, http::error::bad_transfer_encoding);
}

} // namespace
} // namespace michi::upstream
