// libFuzzer target for the HTTP/1 readers on both sides of the gateway: the client's requests
// (downstream::request_parser, several on one connection, each parser reusing the storage of the
// request before, as a session does) and the upstream's answer (upstream::response_parser, its
// body read into small lent buffers, as the relay does, or borrowed where it lies). The bytes
// are read through the wire helpers (wants_more, read_room, took_read) whole, and again in
// pieces whose sizes come from the input: both readings must give the same requests, the same
// answer, or both fail. Limits are small now and then, so their errors are fuzzed too.

#include "michi/core/http_wire.hpp"
#include "michi/downstream/request_parser.hpp"
#include "michi/upstream/response_parser.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using michi::error_code;
namespace http = michi::http;
namespace beast = michi::beast;

void check(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "http_parser_fuzz: %s\n", what);
        std::abort();
    }
}

// The peer's bytes, handed out in pieces: all at once, or by the sizes in `pieces`.
class peer {
public:
    peer(std::string_view bytes, const std::vector<std::size_t>* pieces)
        : bytes_(bytes), pieces_(pieces) {}

    // A read into room: how many bytes came (0 with eof at the end).
    std::size_t read(michi::net::mutable_buffer room, error_code& rec) {
        rec = {};
        if (at_ == bytes_.size()) {
            rec = michi::net::error::eof;
            return 0;
        }
        std::size_t want = bytes_.size() - at_;
        if (pieces_ != nullptr && !pieces_->empty()) {
            want = (*pieces_)[next_++ % pieces_->size()];
        }
        const std::size_t n = std::min({want, room.size(), bytes_.size() - at_});
        std::copy_n(bytes_.data() + at_, n, static_cast<char*>(room.data()));
        at_ += n;
        return n;
    }

private:
    std::string_view bytes_;
    const std::vector<std::size_t>* pieces_;
    std::size_t at_ = 0;
    std::size_t next_ = 0;
};

// Reads until the parser is done (or has its head), as the session and the exchange do.
template <bool isRequest>
error_code read_message(http::basic_parser<isRequest>& p, beast::flat_buffer& b, peer& from,
                        bool head_only) {
    error_code ec;
    while (michi::wire::wants_more(p, b, head_only, ec)) {
        error_code rec;
        const auto room = michi::wire::read_room(b);
        const std::size_t n = from.read(room, rec);
        if (!michi::wire::took_read(p, b, rec, n, ec)) {
            break;
        }
    }
    return ec;
}

// Any error but a close between requests, in comparisons.
const error_code failed = http::error::bad_version;

// Everything a session reads of one request.
struct seen_request {
    error_code ec;
    int method = 0;
    std::string method_string, target;
    unsigned version = 0;
    bool keep_alive = false;
    std::vector<std::string> fields;
    std::string body;
    // Beast's header limit is not exact: a head near it passes when it comes in one read (the
    // start line is not counted against it then) and fails when it comes in pieces.
    bool header_limited = false;

    bool operator==(const seen_request&) const = default;
};

// Whether two readings of the same bytes agree, up to a head that met the header limit.
template <typename Seen>
bool agree(const std::vector<Seen>& a, const std::vector<Seen>& b) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        if (a[i].header_limited || b[i].header_limited) {
            return true;
        }
        if (!(a[i] == b[i])) {
            return false;
        }
    }
    return a.size() == b.size();
}

constexpr std::array<http::field, 6> known_fields{
    http::field::content_type, http::field::authorization, http::field::content_length,
    http::field::host,         http::field::connection,    http::field::transfer_encoding};
constexpr std::array<std::string_view, 4> named_fields{"x-api-key", "X-Request-Id", "x-michi",
                                                       "anthropic-version"};

// Reads requests from `bytes` one after another until an error or the end of the stream.
std::vector<seen_request> read_requests(std::string_view bytes,
                                        const std::vector<std::size_t>* pieces,
                                        std::uint32_t header_limit, std::uint64_t body_limit) {
    peer from(bytes, pieces);
    beast::flat_buffer buffer;
    std::vector<seen_request> out;
    michi::downstream::request spent;
    for (int i = 0; i < 64; ++i) {
        michi::downstream::request_parser parser(std::move(spent));
        parser.header_limit(header_limit);
        parser.body_limit(body_limit);
        seen_request seen;
        seen.ec = read_message(parser, buffer, from, true);
        if (!seen.ec) {
            parser.eager(true); // as the session reads a body
            seen.ec = read_message(parser, buffer, from, false);
        }
        const auto& req = parser.get();
        seen.method = static_cast<int>(req.method());
        seen.method_string = req.method_string();
        seen.target = req.target();
        seen.version = req.version();
        for (const auto f : known_fields) {
            seen.fields.emplace_back(req[f]);
        }
        for (const auto name : named_fields) {
            seen.fields.emplace_back(req[name]);
        }
        seen.body = req.body();
        if (parser.is_done()) {
            check(seen.ec == error_code{}, "a done request with an error");
            check(!parser.content_length() || *parser.content_length() == seen.body.size(),
                  "a body of another size than its Content-Length");
        }
        if (seen.ec) {
            // The session answers (or not) by the error alone and closes the connection:
            // what a parser holds after failing is not compared, nor which error it was (a
            // malformed head met the header limit first, or not, by where reads ended).
            seen_request failure;
            failure.ec = seen.ec == http::error::end_of_stream ? seen.ec : failed;
            failure.header_limited = seen.ec == http::error::header_limit;
            out.push_back(std::move(failure));
            break;
        }
        spent = parser.release();
        seen.keep_alive = spent.keep_alive();
        out.push_back(std::move(seen));
        if (!out.back().keep_alive) {
            break;
        }
    }
    return out;
}

// Everything the exchange reads of one answer.
struct seen_response {
    error_code ec;
    unsigned status = 0;
    std::string content_type, retry_after, body;
    bool header_limited = false;

    bool operator==(const seen_response&) const = default;
};

// Reads an answer's head, then its body into lent buffers of `lend_size` bytes.
seen_response read_response(std::string_view bytes, const std::vector<std::size_t>* pieces,
                            std::size_t lend_size, std::uint32_t header_limit) {
    peer from(bytes, pieces);
    beast::flat_buffer buffer;
    michi::upstream::response_parser parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
    seen_response seen;
    seen.ec = read_message(parser, buffer, from, true);
    std::vector<char> piece(lend_size);
    for (int guard = 0; !seen.ec && !parser.is_done(); ++guard) {
        check(guard < 1 << 20, "the body's reading does not end");
        parser.lend(piece.data(), piece.size());
        error_code ec;
        if (!michi::wire::put_buffered(parser, buffer, ec)) {
            error_code rec;
            const std::size_t n = from.read(michi::wire::read_room(buffer), rec);
            if (michi::wire::took_read(parser, buffer, rec, n, ec)) {
                michi::wire::put_buffered(parser, buffer, ec);
            }
        }
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        seen.body.append(piece.data(), piece.size() - parser.left());
        seen.ec = ec;
    }
    if (seen.ec) { // the exchange answers 502 whichever error it was
        seen_response failure;
        failure.ec = failed;
        failure.header_limited = seen.ec == http::error::header_limit;
        return failure;
    }
    seen.status = parser.status();
    seen.content_type = parser.content_type();
    seen.retry_after = parser.retry_after();
    return seen;
}

// An answer whose body the buffer already holds whole, borrowed where it lies as for a small
// success answer; the same body as read_response's, or nothing to compare (not one run).
void check_borrowed(std::string_view bytes, const seen_response& whole,
                    std::uint32_t header_limit) {
    peer from(bytes, nullptr);
    beast::flat_buffer buffer;
    michi::upstream::response_parser parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
    if (read_message(parser, buffer, from, true) || !parser.content_length() ||
        buffer.size() < *parser.content_length()) {
        return;
    }
    parser.borrow();
    error_code ec;
    while (!parser.is_done() && !ec) {
        const std::size_t before = buffer.size();
        michi::wire::put_buffered(parser, buffer, ec);
        check(ec || buffer.size() != before, "a buffered body the parser does not take");
    }
    if (!ec && !whole.ec) {
        check(parser.borrowed() == whole.body, "a borrowed body differs from the one read");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) {
        return 0;
    }
    // Four bytes of settings, then the peer's bytes.
    const std::uint32_t header_limit = (data[0] & 0x80) != 0 ? 32u + data[0] % 64 : 8192;
    const std::uint64_t body_limit = (data[1] & 0x80) != 0 ? data[1] % 64 : 1 << 20;
    const std::size_t lend_size = 1 + data[2] % 48;
    const std::vector<std::size_t> pieces{1u + data[3] % 7, 1u + data[3] / 7 % 13, 1};
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 4, size - 4);

    const auto requests = read_requests(bytes, nullptr, header_limit, body_limit);
    check(agree(read_requests(bytes, &pieces, header_limit, body_limit), requests),
          "requests read in pieces differ from the ones read whole");

    const auto response = read_response(bytes, nullptr, lend_size, header_limit);
    check(agree(std::vector{read_response(bytes, &pieces, lend_size, header_limit)},
                std::vector{response}),
          "an answer read in pieces differs from the one read whole");
    check(read_response(bytes, nullptr, 4096, header_limit) == response,
          "an answer read into larger buffers differs");
    check_borrowed(bytes, response, header_limit);
    return 0;
}
