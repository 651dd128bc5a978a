#include "michi/pipeline/stream_head.hpp"

#include <gtest/gtest.h>

#include <string>

namespace michi::pipeline {
namespace {

TEST(StreamHeadTest, StatusSseFieldsChunkedFramingAndTheServedAnswersFields) {
    request_context ctx;
    ctx.request_id = "req_1";
    ctx.log.model = "prov/gpt";
    ctx.log.attempts = 2;
    ctx.route_reason = "weighted";
    const std::string fields = "x-request-id: req_1\r\n"
                               "x-michi-model: prov/gpt\r\n"
                               "x-michi-attempts: 2\r\n"
                               "x-michi-route-reason: weighted\r\n"
                               "\r\n";
    std::string text;
    ctx.keep_alive = true;
    stream_head_text(text, ctx, 200);
    EXPECT_EQ(text, "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/event-stream\r\n"
                    "Cache-Control: no-cache\r\n"
                    "Transfer-Encoding: chunked\r\n" +
                        fields);
    ctx.keep_alive = false; // the connection ends with the stream
    stream_head_text(text, ctx, 201);
    EXPECT_EQ(text, "HTTP/1.1 201 Created\r\n"
                    "Content-Type: text/event-stream\r\n"
                    "Cache-Control: no-cache\r\n"
                    "Connection: close\r\n"
                    "Transfer-Encoding: chunked\r\n" +
                        fields);
    stream_head_text(text, ctx, 299);
    EXPECT_TRUE(text.starts_with("HTTP/1.1 299 <unknown-status>\r\n"));
}

TEST(StreamHeadTest, RateLimitFieldsRetryAfterAndACacheMiss) {
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
    ctx.keep_alive = true;
    std::string text = "left over";
    stream_head_text(text, ctx, 200);
    EXPECT_EQ(text, "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/event-stream\r\n"
                    "Cache-Control: no-cache\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "x-request-id: req_2\r\n"
                    "x-ratelimit-limit-requests: 60\r\n"
                    "x-ratelimit-remaining-requests: 59\r\n"
                    "x-ratelimit-reset-requests: 1s\r\n"
                    "x-ratelimit-limit-tokens: 1000\r\n"
                    "x-ratelimit-remaining-tokens: 900\r\n"
                    "x-ratelimit-reset-tokens: 0s\r\n"
                    "retry-after: 3\r\n"
                    "x-michi-model: prov/gpt\r\n"
                    "x-michi-attempts: 1\r\n"
                    "x-michi-cache: miss\r\n"
                    "\r\n");
}

} // namespace
} // namespace michi::pipeline
