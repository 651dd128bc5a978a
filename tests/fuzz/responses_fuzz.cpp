// libFuzzer target for the Responses API translator: the input, parsed as JSON, is tried as a
// Responses request (request_to_chat), as a chat answer with itself as the request
// (chat_to_response), and as pivot chunks for the stream writer (with itself as the request),
// ended both ways (finish, failed_event); the input's text is also an error event's message.
// Nothing may throw or crash, every event must be JSON with its sequence number, and the
// events must end at an event boundary.

#include "michi/surface/responses.hpp"

#include "michi/stream/sse.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace responses = michi::surface::responses;
using json = nlohmann::json;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "responses_fuzz: %s\n", what);
        std::abort();
    }
}

// Every event of `events` is JSON of its own type; returns how many there were.
std::size_t check_events(const std::string& events) {
    michi::stream::sse_parser parser;
    std::size_t n = 0;
    parser.feed(events, [&](michi::stream::sse_event&& ev) {
        const auto data = json::parse(ev.data, nullptr, false);
        check(data.is_object(), "an event is not a JSON object");
        check(data.contains("sequence_number"), "an event without its sequence_number");
        check(data.value("type", "") == ev.event, "an event named unlike its type");
        ++n;
    });
    check(parser.at_boundary(), "events do not end at an event boundary");
    return n;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check(check_events(responses::stream_writer::error_event(input)) == 1, "a bad error event");

    const json parsed = json::parse(input, nullptr, false);
    if (parsed.is_discarded()) {
        return 0;
    }
    const auto chat = responses::request_to_chat(parsed);
    if (const auto* req = std::get_if<json>(&chat)) {
        (void)req->dump();
    } else {
        (void)json(std::get<michi::providers::translate_error>(chat).param).dump();
    }
    const json answer = responses::chat_to_response(parsed, parsed, "m", "resp_f", 0);
    check(answer.is_object() && answer["output"].is_array() && !answer["output"].empty(),
          "an answer without output");
    (void)answer.dump(-1, ' ', false, json::error_handler_t::replace);

    responses::stream_writer writer("resp_f", "m", parsed, 0);
    std::string events;
    writer.on_chunk(parsed, events);
    writer.on_chunk(parsed, events);
    const std::string failed = events + writer.failed_event("broken");
    writer.finish(events);
    check(check_events(events) >= 3, "a stream without its lifecycle events");
    check_events(failed);
    return 0;
}
