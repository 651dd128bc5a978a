#pragma once
// HTTP/1.1 messages written with one gather write of (head, body), the head serialised
// here into one string (see session_io::write_response). Beast's serializer walks a deep buffer-sequence view per write,
// which costs more than the rest of a proxied request's own work; the bytes are the same.

#include "michi/core/net.hpp"

#include <string>

namespace michi::wire {

// Start line, fields, `extra_fields` (already serialised lines, see append_field) and the
// blank line, as sent.
std::string head(const http::response_header<>& h, std::string_view extra_fields = {});

// Appends "name: value\r\n"; a CR or LF in the value becomes a space (no header
// injection through a configured name).
void append_field(std::string& out, std::string_view name, std::string_view value);
// "name: 123<suffix>\r\n".
void append_field(std::string& out, std::string_view name, std::uint64_t value,
                  std::string_view suffix = {});

// The chunk-size line of one chunk of a chunked body ("1a2\r\n").
std::string chunk_size_line(std::size_t size);

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

} // namespace michi::wire
