// libFuzzer target for the Gemini translator: the input read as an OpenAI request
// (build_chat, build_embeddings), as a Gemini response (to_openai, embeddings_to_openai,
// error_to_openai) and as an SSE stream (make_stream, fed whole and split in two). Nothing may
// throw or crash, every produced body must be valid JSON, and the split stream must give the
// same chunks as the whole one.

#include "michi/core/json_parse.hpp"
#include "michi/providers/gemini.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace gemini = michi::providers::gemini;
using json = nlohmann::json;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "gemini_fuzz: %s\n", what);
        std::abort();
    }
}

void check_request(const michi::providers::translated<michi::providers::upstream_request>& r) {
    if (const auto* req = std::get_if<michi::providers::upstream_request>(&r)) {
        check(json::accept(req->body), "a translated request body is not JSON");
    }
}

std::vector<std::string> stream_chunks(std::string_view input, std::size_t split) {
    auto translator = gemini::make_stream("id", "m", 0, true);
    michi::stream::sse_parser parser;
    std::vector<std::string> out;
    bool ok = true;
    for (const std::string_view piece : {input.substr(0, split), input.substr(split)}) {
        parser.feed(piece, [&](michi::stream::sse_event&& ev) {
            ok = ok && translator->on_event(ev, out);
        });
    }
    for (const std::string& chunk : out) {
        check(json::accept(chunk), "a chunk is not JSON");
    }
    (void)translator->finished();
    (void)json(translator->error_message()).dump();
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // As the gateway hands bodies to the translators: parsed with the depth limit.
    const json parsed = michi::json_parse::parse_value(input);
    if (!parsed.is_discarded()) {
        check_request(gemini::build_chat(parsed, "gemini-2.0-flash", "k", size % 2 == 0));
        check_request(gemini::build_embeddings(parsed, "text-embedding-004", "k"));
        michi::providers::usage_info usage;
        (void)gemini::to_openai(parsed, "m", "id", 0, usage).dump();
        (void)gemini::embeddings_to_openai(parsed, "m", usage).dump();
    }
    (void)gemini::error_to_openai(static_cast<unsigned>(400 + size % 200), input).dump();

    const std::size_t split = size == 0 ? 0 : data[0] % (size + 1);
    check(stream_chunks(input, split) == stream_chunks(input, size),
          "split and whole streams differ");
    return 0;
}
