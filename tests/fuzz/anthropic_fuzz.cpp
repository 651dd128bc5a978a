// libFuzzer target for the Anthropic translator: the input is tried as an OpenAI request
// (build_chat), an Anthropic response (to_openai), an Anthropic SSE stream (make_stream,
// whole and split in two), an Anthropic error body, a /v1/messages request
// (request_from_messages), an OpenAI response and chunk (response_to_messages,
// messages_stream_writer). Nothing may throw or crash, and every output must be valid JSON
// (dumpable with the strict UTF-8 handler).

#include "michi/providers/anthropic.hpp"

#include "michi/core/json_parse.hpp"
#include "michi/stream/sse.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace anthropic = michi::providers::anthropic;
using json = nlohmann::json;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "anthropic_fuzz: %s\n", what);
        std::abort();
    }
}

bool valid_json(std::string_view text) { return !json::parse(text, nullptr, false).is_discarded(); }

std::vector<std::string> stream_chunks(std::string_view input, std::size_t split) {
    auto translator = anthropic::make_stream("chatcmpl-f", "m", 0, true);
    michi::stream::sse_parser parser;
    std::vector<std::string> chunks;
    bool ok = true;
    for (const std::string_view piece : {input.substr(0, split), input.substr(split)}) {
        parser.feed(piece, [&](michi::stream::sse_event&& ev) {
            if (ok) {
                ok = translator->on_event(ev, chunks);
            }
        });
    }
    check(ok || !translator->error_message().empty(), "an error without a message");
    for (const std::string& chunk : chunks) {
        check(valid_json(chunk), "a chunk is not JSON");
    }
    (void)json(translator->error_message()).dump();
    return chunks;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    const std::size_t split = size == 0 ? 0 : data[0] % (size + 1);
    check(stream_chunks(input, split) == stream_chunks(input, size),
          "whole and two-piece streams differ");
    (void)anthropic::error_to_openai(500, input).dump();
    michi::stream::sse_parser errors;
    errors.feed(anthropic::messages_stream_writer::error_event(input),
                [](michi::stream::sse_event&& ev) {
                    check(ev.event == "error" && valid_json(ev.data), "a bad error event");
                });

    // As the gateway hands bodies to the translators: parsed with the depth limit.
    const json parsed = michi::json_parse::parse_value(input);
    if (parsed.is_discarded()) {
        return 0;
    }
    const auto chat = anthropic::build_chat(parsed, "m", "k", true);
    if (const auto* req = std::get_if<michi::providers::upstream_request>(&chat)) {
        check(valid_json(req->body), "build_chat body is not JSON");
    }
    michi::providers::usage_info usage;
    (void)anthropic::to_openai(parsed, "m", "i", 0, usage).dump();
    const auto messages = anthropic::request_from_messages(parsed);
    if (const auto* req = std::get_if<json>(&messages)) {
        (void)req->dump();
    }
    (void)anthropic::response_to_messages(parsed, "m").dump();
    anthropic::messages_stream_writer writer("msg_f", "m");
    std::string events;
    writer.on_chunk(parsed, events);
    writer.on_chunk(parsed, events);
    writer.finish(events);
    michi::stream::sse_parser parser;
    parser.feed(events, [](michi::stream::sse_event&& ev) {
        check(valid_json(ev.data), "an Anthropic event is not JSON");
    });
    check(parser.at_boundary(), "Anthropic events do not end at an event boundary");
    return 0;
}
