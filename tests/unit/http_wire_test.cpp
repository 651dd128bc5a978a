#include "michi/core/http_wire.hpp"

#include <gtest/gtest.h>

#include <limits>

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
    EXPECT_EQ(head(res, extra),
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-request-id: req_1\r\n"
              "x-michi-model: evil  set-cookie: a=b\r\n\r\n");
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

} // namespace
} // namespace michi::wire
