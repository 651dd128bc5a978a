#include "michi/downstream/request_parser.hpp"

namespace michi::downstream {

std::string_view request::operator[](http::field name) const {
    for (const auto& f : fields_) {
        if (f.id == name) {
            return std::string_view(text_).substr(f.value_at, f.value_size);
        }
    }
    return {};
}

std::string_view request::operator[](std::string_view name) const {
    for (const auto& f : fields_) {
        if (f.name_size == name.size() &&
            beast::iequals(std::string_view(text_).substr(f.name_at, f.name_size), name)) {
            return std::string_view(text_).substr(f.value_at, f.value_size);
        }
    }
    return {};
}

namespace {
// Room a reused request keeps for its body; a larger one is given back.
constexpr std::size_t kept_body_room = 64 * 1024;
} // namespace

request_parser::request_parser(request&& spent) : req_(std::move(spent)) {
    req_.method_ = http::verb::unknown;
    req_.head_ = false;
    req_.method_string_.clear();
    req_.target_.clear();
    req_.version_ = 11;
    req_.keep_alive_ = false;
    req_.text_.clear();
    req_.fields_.clear();
    req_.extra_.fill(request::no_field);
    if (req_.body_.capacity() > kept_body_room) {
        std::string().swap(req_.body_);
    }
    req_.body_.clear();
}

void request_parser::on_request_impl(http::verb method, string_view method_string,
                                     string_view target, int version, error_code&) {
    req_.method_ = method;
    req_.method_string_.assign(method_string.data(), method_string.size());
    req_.target_.assign(target.data(), target.size());
    req_.version_ = static_cast<unsigned>(version);
    req_.text_.reserve(512);
    req_.fields_.reserve(16);
}

namespace {
// Whether a Transfer-Encoding value is exactly "chunked" (optional whitespace around it).
bool just_chunked(beast::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
        value.remove_suffix(1);
    }
    return beast::iequals(value, "chunked");
}
// The extra field a name Beast does not know is, or -1 (names compare case-insensitively).
int extra_of(beast::string_view name) {
    switch (name.size()) {
    case 9: return beast::iequals(name, "x-api-key") ? 0 : -1;
    case 12: return beast::iequals(name, "x-request-id") ? 1 : -1;
    case 17: return beast::iequals(name, "anthropic-version") ? 2 : -1;
    case 14: return beast::iequals(name, "anthropic-beta") ? 3 : -1;
    default: return -1;
    }
}

} // namespace

void request_parser::on_field_impl(http::field name, string_view name_string, string_view value,
                                   error_code& ec) {
    if (is_header_done()) {
        // A trailer field of a chunked body: none is read, and together they are held to the
        // head's limit (Beast bounds the head, not the trailers).
        trailer_bytes_ += name_string.size() + value.size() + 4;
        if (trailer_bytes_ > header_limit_) {
            ec = http::error::bad_field;
            refusal_ = "a trailer section larger than the head's limit";
        }
        return;
    }
    // Framing as RFC 9112 section 6.3 asks of a server: a body is delimited by chunked alone
    // or by one Content-Length, never both. Beast reads a Transfer-Encoding whose last coding
    // is not chunked ("gzip", "chunked, identity") as no body at all, and takes a
    // Content-Length after a Transfer-Encoding; the body's bytes would then be read as the
    // next request. Both are errors here (400 and the connection closed, see session.cpp).
    // No other coding is decoded, so only "chunked" itself is accepted.
    if (name == http::field::transfer_encoding) {
        if (transfer_encoding_ || content_length_ || !just_chunked(value)) {
            ec = http::error::bad_transfer_encoding;
            return;
        }
        transfer_encoding_ = true;
    } else if (name == http::field::content_length) {
        if (transfer_encoding_) {
            ec = http::error::bad_transfer_encoding;
            return;
        }
        content_length_ = true; // (Beast refuses a bad or conflicting one itself)
    }
    // (Beast's header limit bounds the text, far below 4 GiB.)
    auto& t = req_.text_;
    const auto name_at = static_cast<std::uint32_t>(t.size());
    t.append(name_string.data(), name_string.size());
    const auto value_at = static_cast<std::uint32_t>(t.size());
    t.append(value.data(), value.size());
    if (name == http::field::unknown) {
        if (const int e = extra_of(name_string);
            e >= 0 && req_.extra_[static_cast<std::size_t>(e)] == request::no_field) {
            req_.extra_[static_cast<std::size_t>(e)] =
                static_cast<std::uint32_t>(req_.fields_.size());
        }
    }
    req_.fields_.push_back({name, name_at, static_cast<std::uint32_t>(name_string.size()), value_at,
                            static_cast<std::uint32_t>(value.size())});
}

void request_parser::on_header_impl(error_code& ec) {
    // An HTTP/1.0 message has no chunked coding (RFC 9112 section 6.1): its framing is faulty.
    if (transfer_encoding_ && req_.version_ < 11) {
        ec = http::error::bad_transfer_encoding;
    }
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
    // (Beast has checked a Content-Length against the body limit before this.)
    if (length) {
        req_.body_.reserve(static_cast<std::size_t>(*length));
    }
}

std::size_t request_parser::on_body_impl(string_view body, error_code&) {
    req_.body_.append(body.data(), body.size());
    return body.size();
}

void request_parser::on_chunk_header_impl(std::uint64_t, string_view extensions, error_code& ec) {
    if (extensions.size() > max_chunk_extension) {
        ec = http::error::bad_chunk_extension;
        refusal_ = "a chunk extension longer than 4096 bytes";
    }
}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) {
    return on_body_impl(body, ec); // a chunk's bytes join the body as plain ones do
}

} // namespace michi::downstream
