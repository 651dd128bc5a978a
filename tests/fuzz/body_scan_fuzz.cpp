// libFuzzer target for the admission scan (pipeline/body_scan): on any input it must not
// crash, it must never accept a body the full (depth-bounded) parse refuses for its nesting,
// and whenever it accepts a body that the full parse also reads, every fact it read must be
// what the full path reads from the parsed body (model, stream, stream options, tools,
// images, expected output and prompt tokens, the model's position). Each input is scanned
// under the default depth limit and under a small one.

#include "michi/core/json_parse.hpp"
#include "michi/pipeline/body_scan.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/providers/token_estimate.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using json = nlohmann::json;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "body_scan_fuzz: %s\n", what);
        std::abort();
    }
}

// The router's image check on the parsed body (pipeline/handler.cpp), without throwing.
bool dom_images(const json& body) {
    const auto messages = body.find("messages");
    if (messages == body.end() || !messages->is_array()) {
        return false;
    }
    for (const auto& m : *messages) {
        const auto content = m.is_object() ? m.find("content") : m.end();
        if (!m.is_object() || content == m.end() || !content->is_array()) {
            continue;
        }
        for (const auto& part : *content) {
            const auto type = part.is_object() ? part.find("type") : part.end();
            if (part.is_object() && type != part.end() && *type == "image_url") {
                return true;
            }
        }
    }
    return false;
}

void check_scan(std::string_view input, std::size_t max_depth) {
    michi::json_parse::set_max_depth(max_depth);
    const auto facts = michi::pipeline::scan_chat_body(input);
    if (!facts) {
        return;
    }
    const auto parsed = michi::json_parse::parse(input, max_depth);
    check(parsed.why != michi::json_parse::failure::too_deep,
          "accepted a body nested deeper than the limit");
    if (!parsed) {
        return; // malformed bytes the scan only skips: the provider answers for those
    }
    const json& body = parsed.value;
    check(body.is_object(), "accepted a body that is not an object");
    check(body.contains("model") && body["model"].is_string() &&
              body["model"].get<std::string>() == facts->model,
          "model differs");
    check(input.substr(facts->model_begin, facts->model_end - facts->model_begin) ==
              "\"" + facts->model + "\"",
          "model position wrong");
    const auto stream = body.find("stream");
    check(facts->stream == (stream != body.end() && *stream == true), "stream differs");
    check(facts->has_stream_options == body.contains("stream_options"),
          "stream_options presence differs");
    const auto opts = body.find("stream_options");
    const bool usage = opts != body.end() && opts->is_object() && opts->contains("include_usage") &&
                       (*opts)["include_usage"] == true;
    check(facts->wants_usage == usage, "include_usage differs");
    const auto tools = body.find("tools");
    check(facts->tools == (tools != body.end() && tools->is_array() && !tools->empty()),
          "tools differ");
    check(facts->images == dom_images(body), "images differ");
    check(facts->max_output == michi::routing::expected_output_tokens(body),
          "expected output differs");
    check(facts->prompt_tokens == michi::providers::estimate_prompt_tokens(body),
          "prompt tokens differ");
    const auto& messages = body["messages"];
    check(messages.is_array() && !messages.empty(), "accepted bad messages");
    for (const auto& m : messages) {
        check(m.is_object() && m.contains("role") && m["role"].is_string(),
              "accepted a message without a string role");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    (void)michi::pipeline::decoded_size(input);
    check_scan(input, michi::json_parse::default_max_depth);
    check_scan(input, 6);
    return 0;
}
