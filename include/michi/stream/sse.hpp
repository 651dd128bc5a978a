#pragma once
// Server-Sent Events (text/event-stream): an incremental parser that the relay feeds upstream
// body pieces as they arrive, and the serialiser for the events written to the client.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace michi::stream {

// One dispatched event of a text/event-stream.
struct sse_event {
    // Value of the last "event" field of the event's block; empty means the default ("message").
    std::string event;
    // Values of the block's "data" fields joined with '\n' (no trailing '\n').
    std::string data;
    // The stream's last event ID: the last valid "id" field seen so far, in this block or an
    // earlier one (WHATWG keeps it across events; an "id" field with an empty value clears it).
    std::string id;
    // The block's last valid "retry" field (ASCII digits only, fits 64 bits), if any.
    std::optional<std::uint64_t> retry;

    bool operator==(const sse_event&) const = default;
};

// Incremental parser for one text/event-stream body, fed piece by piece in constant memory.
//
// Follows the WHATWG EventSource parsing rules on bytes (no UTF-8 decoding or validation):
// line endings "\n", "\r\n" and a lone "\r" (a "\r" ending one piece and a "\n" starting the
// next are one line ending); one UTF-8 BOM at the start of the stream dropped; lines starting
// with ':' are comments; "field:value" with one leading space of the value stripped, a line
// without ':' is a field with an empty value; unknown fields ignored; a blank line dispatches.
// One deliberate departure: a block with an "event" field but no "data" field is dispatched
// (with empty data); a block with neither is not. A "retry" field in a block that is not
// dispatched is dropped. An event cut by the end of input is never dispatched (see at_boundary).
class sse_parser {
public:
    static constexpr std::size_t default_max_event_bytes = 4 * 1024 * 1024;

    // max_event_bytes caps both a single line (without its line ending) and the event under
    // construction (data plus event name), so the parser holds at most about twice that.
    explicit sse_parser(std::size_t max_event_bytes = default_max_event_bytes);

    // Consumes the next piece of the stream (split anywhere) and calls on_event, in order, for
    // every event it completes. Returns false once a line or an event exceeds max_event_bytes
    // (events completed before that point in the same piece are still delivered); the parser
    // then stays failed and ignores further input. on_event must not throw.
    bool feed(std::string_view bytes, const std::function<void(sse_event&&)>& on_event);

    // The stream's start has passed without a BOM: its first bytes were read elsewhere (a
    // relay reads a plain first "data:" event itself). A BOM fed after this is not dropped.
    // Only before the first feed.
    void started_without_bom() noexcept {
        if (bom_matched_ == 0) {
            bom_checked_ = true;
        }
    }

    // Events dispatched so far.
    std::uint64_t events() const noexcept { return events_; }

    bool failed() const noexcept { return failed_; }

    // True when the input so far ended exactly at an event boundary: no partial line and no
    // field line since the last blank line (comments do not count). Tells a clean stream end
    // from a cut one. False once failed.
    bool at_boundary() const noexcept;

private:
    // Drops the BOM from the start of the stream, even when it arrives split across pieces;
    // returns what is left of bytes.
    std::string_view consume_bom(std::string_view bytes);
    void process_line(std::string_view line, const std::function<void(sse_event&&)>& on_event);
    void dispatch(const std::function<void(sse_event&&)>& on_event);
    bool fail() noexcept;

    std::size_t max_event_bytes_;
    // Unterminated tail of the current line from earlier pieces; never re-scanned.
    std::string line_;
    std::string event_;
    std::string data_;
    std::string last_id_;
    std::optional<std::uint64_t> retry_;
    sse_event out_; // the event handed to on_event; its buffers return to event_ and data_
    std::uint64_t events_ = 0;
    std::size_t bom_matched_ = 0;
    bool bom_checked_ = false;
    // The previous piece ended with '\r': a '\n' starting the next one belongs to that ending.
    bool skip_lf_ = false;
    bool has_data_ = false;
    bool has_event_ = false;
    // A field line (not a comment) was seen since the last blank line.
    bool block_open_ = false;
    bool failed_ = false;
};

// Serialises one event: "event: <event>\n" when event is non-empty, one "data: <line>\n" per
// line of data, then "\n". Lines of data are split at "\n" (and, since the format cannot carry
// them inside a line, at "\r\n" and "\r" too); CR and LF are removed from event. Empty data
// gives one empty data line, so the event is still dispatched by a reader.
std::string format_sse(std::string_view data, std::string_view event = {});

} // namespace michi::stream
