#include "michi/core/http_wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

namespace michi::wire {
namespace {

// What Beast's own serializer writes for a message: the reference for wire::head.
template <bool isRequest>
std::string beast_bytes(http::message<isRequest, http::string_body> m) {
    std::ostringstream os;
    os << m;
    return os.str();
}

TEST(HttpWireTest, ResponseBytesAreTheSameAsBeastWrites) {
    http::response<http::string_body> res{http::status::too_many_requests, 11};
    res.set(http::field::content_type, "application/json");
    res.set("x-custom", "v");
    res.body() = R"({"error":{}})";
    res.keep_alive(false);
    res.prepare_payload();
    EXPECT_EQ(head(res) + res.body(), beast_bytes(res));
    EXPECT_TRUE(head(res).starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
}

TEST(HttpWireTest, ExtraFieldsGoAfterTheMessagesOwnBeforeTheBlankLine) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_length, "0");
    std::string extra;
    append_field(extra, "x-request-id", "req_1");
    append_field(extra, "x-michi-model", "evil\r\nset-cookie: a=b");
    EXPECT_EQ(head(res, extra), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-request-id: req_1\r\n"
                                "x-michi-model: evil  set-cookie: a=b\r\n\r\n");
}

TEST(HttpWireTest, FieldValuesCarryNoControlCharacterAndAreCut) {
    std::string out;
    append_field(out, "x-michi-model", std::string("echo/a\0b\x1b[31m\x7f\tc\xc3\xa9", 18));
    EXPECT_EQ(out, "x-michi-model: echo/a b [31m \tc\xc3\xa9\r\n");
    for (std::size_t at = 0; at < 40; ++at) { // a control byte anywhere in a word or the tail
        std::string v(40, 'v');
        v[at] = '\x01';
        std::string line;
        append_field(line, "x", v);
        EXPECT_EQ(line, "x: " + std::string(at, 'v') + " " + std::string(39 - at, 'v') + "\r\n");
    }
    std::string big;
    append_field(big, "x-michi-model", std::string(1 << 20, 'm'));
    EXPECT_EQ(big, "x-michi-model: " + std::string(max_field_value, 'm') + "...\r\n");
}

TEST(HttpWireTest, NumericFieldsWithAndWithoutSuffix) {
    std::string out = "a: b\r\n";
    append_field(out, "x-ratelimit-remaining-tokens", std::uint64_t{0});
    append_field(out, "x-ratelimit-reset-requests", std::uint64_t{60}, "s");
    append_field(out, "x-max", std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(out, "a: b\r\nx-ratelimit-remaining-tokens: 0\r\n"
                   "x-ratelimit-reset-requests: 60s\r\nx-max: 18446744073709551615\r\n");
    std::string long_name(300, 'n'); // longer than the stack line: the same bytes all the same
    std::string lng;
    append_field(lng, long_name, std::uint64_t{7}, "ms");
    EXPECT_EQ(lng, long_name + ": 7ms\r\n");
}

TEST(HttpWireTest, UnknownStatusAndHttp10) {
    http::response<http::string_body> res{static_cast<http::status>(599), 10};
    EXPECT_EQ(head(res), beast_bytes(res));
}

TEST(HttpWireTest, ChunkSizeLinesAreLowercaseHex) {
    EXPECT_EQ(chunk_size_line(1), "1\r\n");
    EXPECT_EQ(chunk_size_line(255), "ff\r\n");
    EXPECT_EQ(chunk_size_line(16384), "4000\r\n");
    EXPECT_EQ(chunk_size_line(0xabcdef), "abcdef\r\n");
}

// Feeds `wire` to the parser in pieces of `split` bytes as reads would bring them, then the
// end of the stream, the way a read loop over wants_more / took_read does.
error_code read_all(http::response_parser<http::string_body>& p, const std::string& wire,
                    std::size_t split, bool head_only) {
    beast::flat_buffer b;
    error_code ec;
    std::size_t at = 0;
    while (wants_more(p, b, head_only, ec)) {
        const auto room = read_room(b);
        EXPECT_GE(room.size(), 512u);
        EXPECT_LE(room.size(), 65536u);
        const std::size_t n = std::min({split, room.size(), wire.size() - at});
        std::memcpy(room.data(), wire.data() + at, n);
        at += n;
        const error_code rec = n == 0 ? error_code(net::error::eof) : error_code{};
        if (!took_read(p, b, rec, n, ec)) {
            break;
        }
    }
    return ec;
}

TEST(HttpWireTest, AReadLoopGetsTheHeadThenTheWholeMessageInEverySplit) {
    const std::string wire =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    for (std::size_t split = 1; split <= wire.size(); ++split) {
        http::response_parser<http::string_body> head;
        EXPECT_FALSE(read_all(head, wire, split, true)) << split;
        EXPECT_TRUE(head.is_header_done());
        EXPECT_EQ(head.get()[http::field::content_type], "application/json");
        http::response_parser<http::string_body> whole;
        whole.eager(true);
        EXPECT_FALSE(read_all(whole, wire, split, false)) << split;
        ASSERT_TRUE(whole.is_done());
        EXPECT_EQ(whole.get().body(), R"({"a":1})");
    }
}

TEST(HttpWireTest, TheEndOfTheStreamEndsABodyWithoutLengthAndFailsAPartialMessage) {
    http::response_parser<http::string_body> until_close;
    until_close.eager(true);
    EXPECT_FALSE(read_all(until_close, "HTTP/1.1 200 OK\r\n\r\nall of it", 4, false));
    ASSERT_TRUE(until_close.is_done());
    EXPECT_EQ(until_close.get().body(), "all of it");

    http::response_parser<http::string_body> nothing;
    EXPECT_EQ(read_all(nothing, "", 4, true), http::error::end_of_stream);

    http::response_parser<http::string_body> half_head;
    EXPECT_EQ(read_all(half_head, "HTTP/1.1 200 OK\r\nContent-", 4, true),
              http::error::partial_message);

    http::response_parser<http::string_body> short_body;
    short_body.eager(true);
    EXPECT_EQ(read_all(short_body, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 4, false),
              http::error::partial_message);
}

TEST(HttpWireTest, AReadErrorAndTheParsersLimitsEndTheLoop) {
    http::response_parser<http::string_body> p;
    beast::flat_buffer b;
    error_code ec;
    ASSERT_TRUE(wants_more(p, b, true, ec));
    EXPECT_FALSE(took_read(p, b, net::error::connection_reset, 0, ec));
    EXPECT_EQ(ec, net::error::connection_reset);

    http::response_parser<http::string_body> limited;
    limited.header_limit(64);
    EXPECT_EQ(read_all(limited, "HTTP/1.1 200 OK\r\nX-Long: " + std::string(200, 'v') + "\r\n\r\n",
                       16, true),
              http::error::header_limit);
}

} // namespace
} // namespace michi::wire
