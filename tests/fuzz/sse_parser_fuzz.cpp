// libFuzzer target for michi::stream::sse_parser: the same input fed whole, split in two at a
// point derived from the data, and byte by byte must give the same events and the same final
// state; every event must survive a format_sse round trip.

#include "michi/stream/sse.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using michi::stream::format_sse;
using michi::stream::sse_event;
using michi::stream::sse_parser;

// Everything observable about one parse.
struct outcome {
    std::vector<sse_event> events;
    bool failed = false;
    bool at_boundary = false;
    std::uint64_t count = 0;

    bool operator==(const outcome&) const = default;
};

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "sse_parser_fuzz: %s\n", what);
        std::abort();
    }
}

template <typename Pieces>
outcome parse(std::size_t max_event_bytes, const Pieces& pieces) {
    sse_parser parser(max_event_bytes);
    outcome out;
    for (const std::string_view piece : pieces) {
        const bool ok =
            parser.feed(piece, [&](sse_event&& e) { out.events.push_back(std::move(e)); });
        check(ok == !parser.failed(), "feed() result disagrees with failed()");
    }
    out.failed = parser.failed();
    out.at_boundary = parser.at_boundary();
    out.count = parser.events();
    check(out.count == out.events.size(), "events() disagrees with the callback count");
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // The first byte also picks a small limit now and then, so the failure path is fuzzed too.
    const std::size_t max_event_bytes = size > 0 && (data[0] & 0x80) != 0
                                            ? static_cast<std::size_t>(data[0] & 0x3f)
                                            : sse_parser::default_max_event_bytes;
    std::size_t split = 0;
    for (std::size_t i = 0; i < size && i < 8; ++i) {
        split = split * 131 + data[size - 1 - i];
    }
    split %= size + 1;

    const outcome whole = parse(max_event_bytes, std::vector<std::string_view>{input});
    const outcome two = parse(max_event_bytes, std::vector<std::string_view>{input.substr(0, split),
                                                                             input.substr(split)});
    check(two == whole, "whole and two-piece parses differ");

    std::vector<std::string_view> bytes;
    bytes.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes.push_back(input.substr(i, 1));
    }
    check(parse(max_event_bytes, bytes) == whole, "whole and byte-by-byte parses differ");

    // Parsed events carry no CR in data or event, so format_sse must reproduce them exactly
    // (id and retry are not serialised).
    std::string formatted;
    std::vector<sse_event> expected;
    for (const sse_event& e : whole.events) {
        formatted += format_sse(e.data, e.event);
        expected.push_back(sse_event{e.event, e.data, {}, std::nullopt});
    }
    const outcome again =
        parse(sse_parser::default_max_event_bytes, std::vector<std::string_view>{formatted});
    check(again.events == expected && again.at_boundary && !again.failed,
          "format_sse round trip differs");
    return 0;
}
