// JSON from clients nested past server.max_json_depth: refused with a 400 naming the limit,
// never walked (a recursive walk of a few thousand levels overflows a worker's stack and
// takes the whole process down).

#include "support/fake_upstream.hpp"
#include "support/gateway_harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace michi::test {
namespace {

using json = nlohmann::json;

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonDepthTest, DeepClientBodiesAre400NamingTheLimit) {
    fake_upstream up;
    config_parts parts;
    parts.providers = "  claude: { type: anthropic, base_url: \"" + up.base_url() + "\" }\n";
    parts.models = "  claude/c: { upstream: c, input_per_mtok: 1, output_per_mtok: 1 }\n";
    gateway_harness gw(basic_config(up.base_url(), parts));
    for (const std::size_t depth : {129u, 200000u}) {
        const std::string deep = nested(depth);
        const std::vector<std::pair<std::string, std::string>> bodies = {
            // an ignored member, relayed to an OpenAI-type upstream
            {"/v1/chat/completions", R"({"model":"fake/gpt-test","metadata":)" + deep +
                                         R"(,"stream_options":{"include_usage":false},)"
                                         R"("messages":[{"role":"user","content":"hi"}]})"},
            // a tool's parameters, translated for an Anthropic upstream
            {"/v1/chat/completions", R"({"model":"claude/c","tools":[{"type":"function",)"
                                     R"("function":{"name":"f","parameters":{"p":)" +
                                         deep +
                                         R"(}}}],"messages":[{"role":"user","content":"hi"}]})"},
            // echo's embeddings input
            {"/v1/embeddings", R"({"model":"echo/e","input":[)" + deep + "]}"},
            // an Anthropic-shaped request
            {"/v1/messages", R"({"model":"echo/e","max_tokens":5,"metadata":)" + deep +
                                 R"(,"messages":[{"role":"user","content":"hi"}]})"},
        };
        for (const auto& [path, body] : bodies) {
            const auto r = gw.request(http::verb::post, path, body);
            EXPECT_EQ(r.status, 400u) << path << " at depth " << depth << ": " << r.body;
            EXPECT_NE(r.body.find("nested deeper than the limit of 128 levels"), std::string::npos)
                << r.body;
        }
    }
    EXPECT_EQ(up.request_count(), 0u);
    // The gateway is still up, and a body at the limit is served.
    const auto fine = gw.chat(R"({"model":"fake/gpt-test","metadata":)" + nested(127) +
                              R"(,"messages":[{"role":"user","content":"hi"}]})");
    EXPECT_EQ(fine.status, 200u) << fine.body;
}

} // namespace
} // namespace michi::test
