#include "michi/pipeline/passthrough_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace michi::pipeline {
namespace {

TEST(PassthroughScanTest, ReadsAMessagesRequestAndWhereItsModelIs) {
    const std::string body =
        R"({"model":"claude/x","max_tokens":64,"stream":true,"top_k":5,)"
        R"("system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],)"
        R"("messages":[{"role":"user","content":"hello there"}],"tools":[{"name":"t"}]})";
    const auto f = scan_passthrough_body(body, api_kind::messages, 128);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->model, "claude/x");
    EXPECT_EQ(body.substr(f->model_begin, f->model_end - f->model_begin), "\"claude/x\"");
    EXPECT_TRUE(f->stream);
    EXPECT_TRUE(f->tools);
    EXPECT_EQ(f->max_output, 64u);
    EXPECT_GT(f->prompt_tokens, 0u);
}

TEST(PassthroughScanTest, AModelWrittenWithEscapesIsDecoded) {
    // PHP's json_encode escapes slashes; \u escapes spell letters too.
    const std::string body =
        R"({"messages":[{"role":"user","content":"hi"}],"model":"claude\/cl\u0061ude-x"})";
    const auto f = scan_passthrough_body(body, api_kind::messages, 128);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->model, "claude/claude-x");
    EXPECT_EQ(body.substr(f->model_begin, f->model_end - f->model_begin),
              R"("claude\/cl\u0061ude-x")");
    // A broken escape is left to the full parse.
    EXPECT_FALSE(
        scan_passthrough_body(R"({"messages":[{"role":"user","content":"hi"}],"model":"bad\q"})",
                              api_kind::messages, 128));
}

TEST(PassthroughScanTest, ImagesAreSeenByTheirBlocksOnly) {
    const auto images = [](const std::string& content) {
        const std::string body =
            R"({"model":"m","messages":[{"role":"user","content":)" + content + "}]}";
        const auto f = scan_passthrough_body(body, api_kind::messages, 128);
        EXPECT_TRUE(f) << body;
        return f && f->images;
    };
    EXPECT_TRUE(images(R"([{"type":"image","source":{"type":"url","url":"https://x/y.png"}}])"));
    EXPECT_TRUE(
        images(R"([{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"u"}}])"));
    EXPECT_FALSE(images(R"("an image of an image_url")"));
    EXPECT_FALSE(images(R"([{"type":"text","text":"image"}])"));
    EXPECT_FALSE(images(R"([{"type":"text","text":"hi"}])"));
}

} // namespace
} // namespace michi::pipeline
