#include "michi/pipeline/stream_head.hpp"

#include "michi/pipeline/answer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace michi::pipeline {
namespace {

// What a stream's head was before it was written as text: Beast's head (stream_head), made
// chunked and serialised with the served answer's fields, as client_io::write_stream does.
std::string beast_head(const request_context& ctx, unsigned status) {
    auto head = stream_head(ctx, status);
    head.chunked(true);
    std::string fields;
    append_michi_fields(fields, ctx);
    return wire::head(head, fields);
}

TEST(StreamHeadTest, TheSameBytesAsBeastsHeadWithTheServedAnswersFields) {
    request_context ctx;
    ctx.request_id = "req_1";
    ctx.log.model = "prov/gpt";
    ctx.log.attempts = 2;
    ctx.route_reason = "weighted";
    std::string text;
    for (const bool keep_alive : {true, false}) {
        for (const unsigned status : {200u, 201u, 299u}) {
            ctx.keep_alive = keep_alive;
            stream_head_text(text, ctx, status);
            EXPECT_EQ(text, beast_head(ctx, status)) << keep_alive << " " << status;
        }
    }
    EXPECT_TRUE(text.starts_with("HTTP/1.1 299 <unknown-status>\r\n"));
    EXPECT_NE(text.find("Connection: close\r\n"), std::string::npos);
}

TEST(StreamHeadTest, RateLimitFieldsAndACacheMissAsBeastsHeadHasThem) {
    request_context ctx;
    ctx.request_id = "req_2";
    ctx.log.model = "prov/gpt";
    ctx.log.attempts = 1;
    ctx.log.response_cache = "miss";
    guard::rate_headers rate;
    rate.has_requests = true;
    rate.limit_requests = 60;
    rate.remaining_requests = 59;
    rate.reset_requests = std::chrono::seconds(1);
    rate.has_tokens = true;
    rate.limit_tokens = 1000;
    rate.remaining_tokens = 900;
    ctx.rate = rate;
    ctx.retry_after = std::chrono::seconds(3);
    std::string text = "left over";
    stream_head_text(text, ctx, 200);
    EXPECT_EQ(text, beast_head(ctx, 200));
    EXPECT_NE(text.find("x-michi-cache: miss\r\n"), std::string::npos);
}

} // namespace
} // namespace michi::pipeline
