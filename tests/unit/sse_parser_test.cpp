#include "michi/stream/sse.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace michi::stream {

// Readable failure output for events (found by ADL).
void PrintTo(const sse_event& e, std::ostream* os) {
    *os << "{event=" << ::testing::PrintToString(e.event)
        << " data=" << ::testing::PrintToString(e.data) << " id=" << ::testing::PrintToString(e.id)
        << " retry=" << (e.retry ? std::to_string(*e.retry) : std::string("none")) << "}";
}

namespace {

using namespace std::string_literals;

// Everything observable about one parse of a sequence of pieces.
struct parse_result {
    std::vector<sse_event> events;
    bool failed = false;
    bool at_boundary = false;
    std::uint64_t count = 0;
};

parse_result parse_pieces(const std::vector<std::string_view>& pieces,
                          std::size_t max = sse_parser::default_max_event_bytes) {
    sse_parser parser(max);
    parse_result r;
    for (const std::string_view piece : pieces) {
        const bool ok =
            parser.feed(piece, [&](sse_event&& e) { r.events.push_back(std::move(e)); });
        EXPECT_EQ(ok, !parser.failed());
    }
    r.failed = parser.failed();
    r.at_boundary = parser.at_boundary();
    r.count = parser.events();
    EXPECT_EQ(r.count, r.events.size());
    return r;
}

parse_result parse_whole(std::string_view input,
                         std::size_t max = sse_parser::default_max_event_bytes) {
    return parse_pieces({input}, max);
}

void expect_same(const parse_result& got, const parse_result& want) {
    EXPECT_EQ(got.events, want.events);
    EXPECT_EQ(got.failed, want.failed);
    EXPECT_EQ(got.at_boundary, want.at_boundary);
    EXPECT_EQ(got.count, want.count);
}

// Parses input whole, at every two-piece split and byte by byte; every way must agree.
parse_result parse_every_way(std::string_view input,
                             std::size_t max = sse_parser::default_max_event_bytes) {
    const parse_result whole = parse_whole(input, max);
    for (std::size_t split = 0; split <= input.size(); ++split) {
        SCOPED_TRACE("split at " + std::to_string(split));
        expect_same(parse_pieces({input.substr(0, split), input.substr(split)}, max), whole);
        if (::testing::Test::HasFailure()) {
            break;
        }
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < input.size(); ++i) {
        bytes.push_back(input.substr(i, 1));
    }
    {
        SCOPED_TRACE("byte by byte");
        expect_same(parse_pieces(bytes, max), whole);
    }
    return whole;
}

sse_event ev(std::string data, std::string event = {}, std::string id = {},
             std::optional<std::uint64_t> retry = std::nullopt) {
    return sse_event{std::move(event), std::move(data), std::move(id), retry};
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (std::size_t pos = s.find(from); pos != std::string::npos;
         pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
    }
    return s;
}

const std::string openai_chunk_head =
    R"({"id":"chatcmpl-9Xk2","object":"chat.completion.chunk","created":1718000000,)"
    R"("model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1",)";

const std::vector<std::string> openai_payloads = {
    openai_chunk_head +
        R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,)"
        R"("finish_reason":null}],"usage":null})",
    openai_chunk_head + R"("choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,)"
                        R"("finish_reason":null}],"usage":null})",
    openai_chunk_head +
        R"("choices":[{"index":0,"delta":{"content":" wörld\n: ok"},"logprobs":null,)"
        R"("finish_reason":null}],"usage":null})",
    openai_chunk_head +
        R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],)"
        R"("usage":null})",
    openai_chunk_head +
        R"("choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}})",
    "[DONE]",
};

std::string openai_stream() {
    std::string s;
    for (const auto& p : openai_payloads) {
        s += "data: " + p + "\n\n";
    }
    return s;
}

std::vector<sse_event> openai_events() {
    std::vector<sse_event> out;
    for (const auto& p : openai_payloads) {
        out.push_back(ev(p));
    }
    return out;
}

const std::string anthropic_stream =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_01XFD","type":"message",)"
    R"("role":"assistant","content":[],"model":"claude-3-5-sonnet-20241022",)"
    R"("stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
    R"("usage":{"output_tokens":15}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(SseParserTest, OpenAiChatStream) {
    const parse_result r = parse_every_way(openai_stream());
    EXPECT_EQ(r.events, openai_events());
    EXPECT_FALSE(r.failed);
    EXPECT_TRUE(r.at_boundary);
    EXPECT_EQ(r.count, 6u);
}

TEST(SseParserTest, AnthropicStreamWithEventLinesAndPings) {
    const parse_result r = parse_every_way(anthropic_stream);
    ASSERT_EQ(r.events.size(), 8u);
    const std::vector<std::string> names = {
        "message_start", "content_block_start", "ping",          "content_block_delta",
        "ping",          "content_block_stop",  "message_delta", "message_stop"};
    for (std::size_t i = 0; i < names.size(); ++i) {
        EXPECT_EQ(r.events[i].event, names[i]);
        EXPECT_EQ(r.events[i].data.front(), '{');
        EXPECT_EQ(r.events[i].data.back(), '}');
        EXPECT_TRUE(r.events[i].id.empty());
        EXPECT_FALSE(r.events[i].retry.has_value());
    }
    EXPECT_EQ(r.events[2].data, R"({"type": "ping"})");
    EXPECT_EQ(r.events[3].data, R"({"type":"content_block_delta","index":0,)"
                                R"("delta":{"type":"text_delta","text":"Hi"}})");
    EXPECT_TRUE(r.at_boundary);
}

TEST(SseParserTest, CommentsAndMultiLineData) {
    const std::string input =
        ": OPENROUTER PROCESSING\n\n" // comment-only block: nothing dispatched
        ":\n"                         // empty comment
        "data: first\n"
        ": comment inside a block\n"
        "data: second\n"
        "data:\n"             // empty data line
        "data:  two spaces\n" // only one leading space is stripped
        "data:no space\n"
        "\n"
        "data\n\n"              // field without colon: empty value
        "event: only-event\n\n" // event without data: dispatched
        "unknown: field\n\n"    // nothing known: not dispatched
        "DATA: case matters\n\n"
        "data: a: b\n\n"   // only the first colon splits
        "data\t: tab\n\n"; // field name "data\t" is unknown
    const parse_result r = parse_every_way(input);
    const std::vector<sse_event> want = {
        ev("first\nsecond\n\n two spaces\nno space"),
        ev(""),
        ev("", "only-event"),
        ev("a: b"),
    };
    EXPECT_EQ(r.events, want);
    EXPECT_TRUE(r.at_boundary);
}

TEST(SseParserTest, CrLfAndLoneCrEndingsMatchLf) {
    const std::string lf = openai_stream() + anthropic_stream;
    const parse_result want = parse_whole(lf);
    ASSERT_EQ(want.events.size(), 14u);

    const parse_result crlf = parse_every_way(replace_all(lf, "\n", "\r\n"));
    EXPECT_EQ(crlf.events, want.events);
    EXPECT_TRUE(crlf.at_boundary);

    const parse_result cr = parse_every_way(replace_all(lf, "\n", "\r"));
    EXPECT_EQ(cr.events, want.events);
    EXPECT_TRUE(cr.at_boundary);
}

TEST(SseParserTest, MixedLineEndings) {
    // "\n\r" is two line endings, "\r\n" one, "\r\r" two.
    const parse_result r = parse_every_way("data: a\r\ndata: b\rdata: c\n\r\n"
                                           "data: d\n\rdata: e\r\r"
                                           "data: f\r\n\r\n"
                                           "data: g\r\r\n");
    const std::vector<sse_event> want = {ev("a\nb\nc"), ev("d"), ev("e"), ev("f"), ev("g")};
    EXPECT_EQ(r.events, want);
    EXPECT_TRUE(r.at_boundary);
}

TEST(SseParserTest, CrAtPieceEndThenLfIsOneLineEnding) {
    sse_parser parser;
    std::vector<sse_event> got;
    const auto sink = [&](sse_event&& e) { got.push_back(std::move(e)); };
    EXPECT_TRUE(parser.feed("data: x\r", sink));
    EXPECT_TRUE(parser.feed("\n", sink)); // ends "data: x", not a blank line
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(parser.at_boundary());
    EXPECT_TRUE(parser.feed("", sink));
    EXPECT_TRUE(parser.feed("\r", sink)); // a blank line, dispatched right away
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, "x");
    EXPECT_TRUE(parser.at_boundary());
    EXPECT_TRUE(parser.feed("\n", sink)); // completes that "\r\n": no second blank line
    EXPECT_TRUE(parser.feed("data: y\n\n", sink));
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[1].data, "y");
}

TEST(SseParserTest, LeadingBomDroppedOnce) {
    const std::string bom = "\xEF\xBB\xBF";
    EXPECT_EQ(parse_every_way(bom + "data: x\n\n").events, std::vector<sse_event>{ev("x")});
    EXPECT_EQ(parse_every_way(bom + openai_stream()).events, openai_events());
    // A second BOM is part of the field name, which then is unknown.
    EXPECT_TRUE(parse_every_way(bom + bom + "data: x\n\n").events.empty());
    // A BOM prefix that is not a whole BOM is kept as content.
    EXPECT_TRUE(parse_every_way("\xEF\xBB"
                                "data: x\n\n")
                    .events.empty());
    EXPECT_EQ(parse_every_way("\xEF\xBB\n"
                              "data: x\n\n")
                  .events,
              std::vector<sse_event>{ev("x")});
    // Only at the start of the stream.
    EXPECT_EQ(parse_every_way("data: x\n\n" + bom + "data: y\n\n").events,
              std::vector<sse_event>{ev("x")});
    EXPECT_EQ(parse_every_way("data: " + bom + "\n\n").events, std::vector<sse_event>{ev(bom)});
    EXPECT_TRUE(parse_whole(bom).at_boundary);
    EXPECT_FALSE(parse_whole("\xEF\xBB").at_boundary);
}

// A relay that read the stream's first event itself tells the parser the start has passed: a
// BOM fed afterwards is then part of a field name, as after any first event.
TEST(SseParserTest, StartedWithoutBomKeepsALaterBom) {
    const std::string bom = "\xEF\xBB\xBF";
    std::vector<sse_event> got;
    const auto sink = [&](sse_event&& e) { got.push_back(std::move(e)); };
    sse_parser told;
    told.started_without_bom();
    EXPECT_TRUE(told.feed(bom + "data: y\n\ndata: z\n\n", sink));
    EXPECT_EQ(got, std::vector<sse_event>{ev("z")});
    got.clear();
    sse_parser fresh; // not told: that BOM starts the stream and is dropped
    EXPECT_TRUE(fresh.feed(bom + "data: y\n\ndata: z\n\n", sink));
    EXPECT_EQ(got, (std::vector<sse_event>{ev("y"), ev("z")}));
}

TEST(SseParserTest, IdAndRetryFields) {
    const std::string input = "id: 1\nretry: 3000\ndata: a\n\n"
                              "data: b\n\n" // id is kept, retry is per block
                              "id: 2\n\n"   // not dispatched, but sets the id
                              "data: c\n\n"
                              "id: bad\0id\ndata: d\n\n"s // id with NUL ignored
                              "retry: 12a\ndata: e\n\n"   // retry must be digits only
                              "retry:\ndata: f\n\n"
                              "retry: -5\ndata: g\n\n"
                              "retry: 99999999999999999999999\ndata: h\n\n" // overflow ignored
                              "retry: 10\nretry: 20\ndata: i\n\n"           // last valid one wins
                              "retry: 7\n\n" // not dispatched: dropped
                              "data: j\n\n"
                              "id\ndata: k\n\n" // empty id clears it
                              "id: x:y\nevent: e\ndata: l\nretry: 0\n\n";
    const parse_result r = parse_every_way(input);
    const std::vector<sse_event> want = {
        ev("a", "", "1", 3000), ev("b", "", "1"), ev("c", "", "2"), ev("d", "", "2"),
        ev("e", "", "2"),       ev("f", "", "2"), ev("g", "", "2"), ev("h", "", "2"),
        ev("i", "", "2", 20),   ev("j", "", "2"), ev("k"),          ev("l", "e", "x:y", 0),
    };
    EXPECT_EQ(r.events, want);
}

TEST(SseParserTest, AtBoundaryOnCleanAndCutInput) {
    const std::string input = openai_stream();
    for (std::size_t n = 0; n <= input.size(); ++n) {
        const std::string_view prefix = std::string_view(input).substr(0, n);
        const bool boundary = n == 0 || prefix.ends_with("\n\n");
        EXPECT_EQ(parse_whole(prefix).at_boundary, boundary) << "prefix length " << n;
    }
    EXPECT_TRUE(parse_whole("").at_boundary);
    EXPECT_TRUE(parse_whole("data: a\n\n: keep-alive\n").at_boundary);
    EXPECT_FALSE(parse_whole("data: a\n\n: keep-al").at_boundary);
    EXPECT_FALSE(parse_whole("data: a\n\nid: 3\n").at_boundary);
    EXPECT_TRUE(parse_whole("data: a\r\n\r").at_boundary); // the blank line is complete
    EXPECT_FALSE(parse_whole("data: a\r\n").at_boundary);
}

TEST(SseParserTest, LineLimit) {
    const std::size_t max = 16;
    // "data: 0123456789" is exactly 16 bytes: allowed.
    EXPECT_EQ(parse_every_way("data: 0123456789\n\n", max).events,
              std::vector<sse_event>{ev("0123456789")});
    // A 17-byte complete line fails, after the events before it.
    const parse_result r = parse_every_way("data: a\n\ndata: 0123456789a\n\ndata: b\n\n", max);
    EXPECT_EQ(r.events, std::vector<sse_event>{ev("a")});
    EXPECT_TRUE(r.failed);
    EXPECT_FALSE(r.at_boundary);
    // So does a comment line, and a pending line that already is too long.
    EXPECT_TRUE(parse_every_way(": 0123456789abcdef\n", max).failed);
    EXPECT_TRUE(parse_every_way("data: 0123456789abcdef", max).failed);
    EXPECT_FALSE(parse_every_way("data: 0123456789", max).failed);
}

TEST(SseParserTest, EventLimit) {
    const std::size_t max = 16;
    // Each line fits, the joined data (21 bytes) does not.
    const parse_result r = parse_every_way("data: 0123456789\ndata: 0123456789\n\n", max);
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(r.failed);
    // Event name and data together: 8 + 8 fits, 8 + 9 does not.
    EXPECT_FALSE(parse_every_way("event: 01234567\ndata: 01234567\n\n", max).failed);
    EXPECT_TRUE(parse_every_way("event: 01234567\ndata: 012345678\n\n", max).failed);
}

TEST(SseParserTest, StaysFailed) {
    sse_parser parser(8);
    std::vector<sse_event> got;
    const auto sink = [&](sse_event&& e) { got.push_back(std::move(e)); };
    EXPECT_TRUE(parser.feed("data: a\n\nda", sink));
    EXPECT_FALSE(parser.feed("ta: 0123456789", sink));
    EXPECT_TRUE(parser.failed());
    EXPECT_FALSE(parser.feed("\n\ndata: b\n\n", sink));
    EXPECT_FALSE(parser.feed("", sink));
    EXPECT_TRUE(parser.failed());
    EXPECT_FALSE(parser.at_boundary());
    EXPECT_EQ(parser.events(), 1u);
    EXPECT_EQ(got, std::vector<sse_event>{ev("a")});
}

TEST(SseParserTest, FormatSse) {
    EXPECT_EQ(format_sse("hello"), "data: hello\n\n");
    EXPECT_EQ(format_sse("[DONE]"), "data: [DONE]\n\n");
    EXPECT_EQ(format_sse(""), "data: \n\n");
    EXPECT_EQ(format_sse("a\nb", "delta"), "event: delta\ndata: a\ndata: b\n\n");
    EXPECT_EQ(format_sse("a\n"), "data: a\ndata: \n\n");
    EXPECT_EQ(format_sse("a\r\nb\rc"), "data: a\ndata: b\ndata: c\n\n");
    EXPECT_EQ(format_sse("x", "bad\r\nname"), "event: badname\ndata: x\n\n");
    EXPECT_EQ(format_sse("x", "\n"), "data: x\n\n");
}

TEST(SseParserTest, FormatSseRoundTrip) {
    const std::vector<sse_event> events = {
        ev(R"({"choices":[{"delta":{"content":"hi"}}]})"),
        ev("", "ping"),
        ev(""),
        ev(" leading space"),
        ev("  two"),
        ev(":not a comment"),
        ev("multi\nline\n\ndata"),
        ev("\n"),
        ev("trailing\n"),
        ev("data: nested", "message_delta"),
        ev("[DONE]"),
    };
    std::string stream;
    for (const auto& e : events) {
        stream += format_sse(e.data, e.event);
    }
    const parse_result r = parse_every_way(stream);
    EXPECT_EQ(r.events, events);
    EXPECT_TRUE(r.at_boundary);

    // CRs in data come back as '\n'.
    EXPECT_EQ(parse_whole(format_sse("a\r\nb\rc")).events, std::vector<sse_event>{ev("a\nb\nc")});
}

TEST(SseParserTest, EventsReachCallbackInOrderAsCompleted) {
    sse_parser parser;
    std::vector<std::string> got;
    const auto sink = [&](sse_event&& e) { got.push_back(e.data); };
    EXPECT_TRUE(parser.feed("data: 1\n\ndata: 2\n\ndata: 3", sink));
    EXPECT_EQ(got, (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(parser.events(), 2u);
    EXPECT_TRUE(parser.feed("\n", sink));
    EXPECT_EQ(got.size(), 2u);
    EXPECT_TRUE(parser.feed("\n", sink));
    EXPECT_EQ(got, (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(parser.events(), 3u);
}

TEST(SseParserTest, LongLineByteByByteIsLinear) {
    // Quadratic re-scanning of the carried tail would make this take minutes.
    const std::string payload(512 * 1024, 'x');
    const std::string input = "data: " + payload + "\ndata: " + payload + "\n\n";
    sse_parser parser;
    std::vector<sse_event> got;
    for (const char c : input) {
        ASSERT_TRUE(parser.feed(std::string_view(&c, 1),
                                [&](sse_event&& e) { got.push_back(std::move(e)); }));
    }
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, payload + "\n" + payload);
    EXPECT_TRUE(parser.at_boundary());
}

} // namespace
} // namespace michi::stream

// The raw event splitter used to drop single events while passing every other byte on.
#include "michi/stream/event_splitter.hpp"

namespace michi::stream {
namespace {

std::vector<std::string> split_all(const std::vector<std::string_view>& pieces,
                                   std::string* rest = nullptr) {
    event_splitter s;
    std::vector<std::string> out;
    for (auto p : pieces) {
        s.feed(p, [&](std::string_view ev) { out.emplace_back(ev); });
    }
    if (rest != nullptr) {
        *rest = std::string(s.pending());
    }
    return out;
}

TEST(EventSplitterTest, SplitsAtBlankLinesAtEverySplitPointKeepingEveryByte) {
    const std::string input =
        "data: a\n\nevent: x\r\ndata: b\r\n\r\n: comment\n\ndata: c\r\rdata: tail";
    const std::vector<std::string> expected = {"data: a\n\n", "event: x\r\ndata: b\r\n\r\n",
                                               ": comment\n\n", "data: c\r\r"};
    std::string rest;
    EXPECT_EQ(split_all({input}, &rest), expected);
    EXPECT_EQ(rest, "data: tail");
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        std::string r;
        const auto got = split_all(
            {std::string_view(input).substr(0, cut), std::string_view(input).substr(cut)}, &r);
        std::string joined;
        for (const auto& e : got) {
            joined += e;
        }
        EXPECT_EQ(joined + r, input) << "cut at " << cut;
        // A "\r\n" split between pieces may leave its "\n" to the next event; nothing is lost.
        EXPECT_EQ(got.size(), expected.size()) << "cut at " << cut;
    }
}

// Long lines without a '\r' are skipped to their line end: every split of such a stream,
// in three pieces, gives the same events, and the events pass straight from the pieces.
TEST(EventSplitterTest, LongLinesWithoutCarriageReturnsInThreePieces) {
    std::string input;
    std::vector<std::string> expected;
    for (int i = 0; i < 4; ++i) {
        expected.push_back("data: {\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                           std::string(40 + i, 'x') + "\"}\n\n");
        input += expected.back();
    }
    input += "data: [DONE]";
    for (std::size_t a = 0; a <= input.size(); a += 7) {
        for (std::size_t b = a; b <= input.size(); b += 5) {
            const std::string_view in(input);
            std::string rest;
            EXPECT_EQ(split_all({in.substr(0, a), in.substr(a, b - a), in.substr(b)}, &rest),
                      expected)
                << a << " " << b;
            EXPECT_EQ(rest, "data: [DONE]");
        }
    }
}

TEST(EventSplitterTest, SingleDataLineReadsOnlyTheUsualShape) {
    EXPECT_EQ(single_data_line("data: {\"a\":1}\n\n"), "{\"a\":1}");
    EXPECT_EQ(single_data_line("data:[DONE]\n\n"), "[DONE]");
    EXPECT_EQ(single_data_line("data:  two\n\n"), " two"); // one space is stripped
    EXPECT_EQ(single_data_line("data:\n\n"), "");
    // Anything else is for the SSE parser: other fields, two lines, CRs, comments, no end.
    EXPECT_EQ(single_data_line("event: x\ndata: y\n\n"), std::nullopt);
    EXPECT_EQ(single_data_line("data: a\ndata: b\n\n"), std::nullopt);
    EXPECT_EQ(single_data_line("data: a\r\n\r\n"), std::nullopt);
    EXPECT_EQ(single_data_line("data: a\r\n\n"), std::nullopt);
    EXPECT_EQ(single_data_line(": ping\n\n"), std::nullopt);
    EXPECT_EQ(single_data_line("data: a\n"), std::nullopt);
    EXPECT_EQ(single_data_line("datum: a\n\n"), std::nullopt);
}

// The splitter's own reading of the event it just gave (which skips the scan when it saw the
// event was one line) agrees with single_data_line on every event of every split, CRs
// (before, inside and after an event) and multi-line events included.
TEST(EventSplitterTest, ItsSingleDataLineAgreesWithTheFreeFunctionAtEverySplit) {
    const std::string input = "data: a\n\ndata: {\"b\":1}\n\nevent: x\ndata: y\n\n: ping\n\n"
                              "data: c\r\n\r\ndata: d\n\ndata: e\ndata: f\n\ndata:\n\n"
                              "datum: g\n\n\ndata: h\n\ndata: i\r\rdata: j\n\n";
    for (std::size_t a = 0; a <= input.size(); ++a) {
        for (std::size_t b = a; b <= input.size(); b += 7) {
            const std::string_view in(input);
            event_splitter s;
            std::size_t events = 0;
            for (const auto piece : {in.substr(0, a), in.substr(a, b - a), in.substr(b)}) {
                s.feed(piece, [&](std::string_view ev) {
                    ++events;
                    EXPECT_EQ(s.single_data_line(ev), single_data_line(ev))
                        << "event " << ev << " cut at " << a << ", " << b;
                });
            }
            EXPECT_GE(events, 12u);
        }
    }
}

} // namespace
} // namespace michi::stream
