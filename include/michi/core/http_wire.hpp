#pragma once
// HTTP/1.1 messages written with one gather write of (head, body), the head serialised
// here into one string (see session_io::write_response). Beast's serializer walks a deep
// buffer-sequence view per write, which costs more than the rest of a proxied request's own
// work; the bytes are the same.

#include "michi/core/net.hpp"
#include "michi/core/safe_text.hpp"

#include <array>
#include <string>

namespace michi::wire {

// Start line, fields, `extra_fields` (already serialised lines, see append_field) and the
// blank line, as sent.
std::string head(const http::response_header<>& h, std::string_view extra_fields = {});
// The same into `out`, replacing what it held (its room is reused).
void head(std::string& out, const http::response_header<>& h, std::string_view extra_fields);
// Appends the start line alone, "HTTP/1.1 200 OK\r\n": with the reason given, or Beast's
// for the status (as head() writes it for a header whose reason was not set).
void append_status_line(std::string& out, unsigned version, unsigned status,
                        std::string_view reason);
void append_status_line(std::string& out, unsigned status);

// The longest value append_field writes (safe_text::header_value_max): a longer one, such
// as a client's model name, is cut there and marked with "...".
inline constexpr std::size_t max_field_value = safe_text::header_value_max;

// Appends "name: value\r\n"; each control character of the value (CR, LF, NUL, ...) becomes
// a space, so no value can end the field or inject another, and the value is cut at
// max_field_value bytes.
void append_field(std::string& out, std::string_view name, std::string_view value);
// "name: 123<suffix>\r\n".
void append_field(std::string& out, std::string_view name, std::uint64_t value,
                  std::string_view suffix = {});

// The chunk-size line of one chunk of a chunked body ("1a2\r\n").
std::string chunk_size_line(std::size_t size);
// The same written into `room`, viewed there.
std::string_view chunk_size_line(std::array<char, 24>& room, std::size_t size);

inline constexpr std::string_view crlf = "\r\n";
inline constexpr std::string_view last_chunk = "0\r\n\r\n";

// Feeds the parser what `buffer` already holds, as Beast's reads do first; true when that
// settled the read (progress, the end, or an error in `ec`) so that no read from the stream
// is needed. Beast's read would deliver the same result through a posted completion.
template <bool isRequest>
bool put_buffered(http::basic_parser<isRequest>& p, beast::flat_buffer& b, error_code& ec) {
    if (b.size() == 0) {
        return false;
    }
    b.consume(p.put(b.data(), ec));
    if (ec == http::error::need_more) {
        ec = {};
        return false;
    }
    return true;
}

// Reading a message without Beast's http::async_read* operations, which run each read
// through two composed operations, and complete through the scheduler when the buffer
// already had what was asked. A read loop is, with `head_only` for just the head:
//
//     while (wire::wants_more(p, b, head_only, ec)) {
//         auto [rec, n] = co_await s.async_read_some(wire::read_room(b), nothrow_op);
//         if (!wire::took_read(p, b, rec, n, ec)) break;
//     }
//
// The parser's own limits (head and body size) apply as with Beast's reads.

// Parses what `b` holds until the parser has the head (head_only) or the whole message.
// True when that needs bytes `b` does not hold yet; false when it is done or failed (`ec`).
template <bool isRequest>
bool wants_more(http::basic_parser<isRequest>& p, beast::flat_buffer& b, bool head_only,
                error_code& ec) {
    while (!(head_only ? p.is_header_done() : p.is_done())) {
        if (!put_buffered(p, b, ec)) {
            return true;
        }
        if (ec) {
            return false;
        }
    }
    return false;
}

// Room for the next read into `b`: what it has spare, at least 512 bytes and at most 64 KiB,
// as Beast's reads size themselves.
inline net::mutable_buffer read_room(beast::flat_buffer& b) {
    const std::size_t spare = b.capacity() - b.size();
    return b.prepare(spare < 512 ? 512 : spare > 65536 ? 65536 : spare);
}

// Takes the result of a read into read_room(b): commits what came. False when the read
// settled the message: an error in `ec`, or the end of the stream, which completes a
// message delimited by it, fails a partial one (http::error::partial_message) and reports
// http::error::end_of_stream when nothing of a message had come.
template <bool isRequest>
bool took_read(http::basic_parser<isRequest>& p, beast::flat_buffer& b, error_code rec,
               std::size_t n, error_code& ec) {
    b.commit(n);
    if (rec == net::error::eof) {
        ec = {};
        if (p.got_some()) {
            p.put_eof(ec);
        } else {
            ec = http::error::end_of_stream;
        }
        return false;
    }
    ec = rec;
    return !rec;
}

} // namespace michi::wire
