#pragma once
// One upstream response read by Beast's HTTP/1 parser, keeping only what Michi reads of
// its head: the status, Content-Type and Retry-After (framing and keep-alive are the
// parser's own, held to RFC 9112 section 6 on top: see framing_field). Beast's message
// parser would put every field into an allocated, case-insensitively ordered set first, a
// noticeable part of a proxied request's cost.
// The body goes into a buffer the caller lends for each read, as with http::buffer_body.

#include "michi/core/net.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <string_view>

namespace michi::upstream {

class response_parser final : public http::basic_parser<false> {
    using string_view = beast::string_view; // Beast's, as its virtual functions take

public:
    unsigned status() const { return status_; }
    // The first such field's value; empty when absent.
    std::string_view content_type() const {
        return type_long_.empty() ? std::string_view(type_.data(), type_size_)
                                  : std::string_view(type_long_);
    }
    std::string_view retry_after() const { return retry_after_; }

    // The next body bytes go to [data, data + size); left() is what is still free.
    void lend(char* data, std::size_t size) {
        data_ = data;
        left_ = size;
    }
    std::size_t left() const { return left_; }
    // Instead of copying, the next body bytes are only noted: borrowed() is then a view of
    // them where the parser was given them (one contiguous run, as from one buffer), valid
    // as long as that buffer's memory is neither freed nor written again.
    void borrow() {
        borrowing_ = true;
        borrowed_ = {};
    }
    std::string_view borrowed() const { return borrowed_; }

private:
    void on_request_impl(http::verb, string_view, string_view, int, error_code& ec) override {
        ec = http::error::bad_method; // never called for a response parser
    }
    void on_response_impl(int code, string_view, int version, error_code&) override {
        status_ = static_cast<unsigned>(code);
        version_below_11_ = version < 11;
    }

    // A response is framed by chunked alone or by one Content-Length (Beast refuses a bad or
    // conflicting length itself). Beast would take a Content-Length that follows a
    // Transfer-Encoding other than chunked, and pass on a body in a coding Michi does not
    // decode ("gzip, chunked"): the connection could then be pooled with part of a body
    // unread, which the next request would read as its answer. Both are errors: the attempt
    // fails and the connection is closed, never pooled.
    void framing_field(http::field name, string_view value, error_code& ec) {
        if (name == http::field::transfer_encoding) {
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
                value.remove_prefix(1);
            }
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
                value.remove_suffix(1);
            }
            if (transfer_encoding_ || content_length_ || !beast::iequals(value, "chunked")) {
                ec = http::error::bad_transfer_encoding;
            }
            transfer_encoding_ = true;
        } else {
            if (transfer_encoding_) {
                ec = http::error::bad_transfer_encoding;
            }
            content_length_ = true;
        }
    }
    void on_field_impl(http::field name, string_view, string_view value, error_code& ec) override {
        if (name == http::field::transfer_encoding || name == http::field::content_length) {
            framing_field(name, value, ec);
            return;
        }
        if (name == http::field::content_type && !seen_type_) {
            // Kept inline when short, as every usual type is ("application/json" would
            // need an allocation in a std::string).
            if (value.size() <= type_.size()) {
                std::memcpy(type_.data(), value.data(), value.size());
                type_size_ = value.size();
            } else {
                type_long_.assign(value.data(), value.size());
            }
            seen_type_ = true;
        } else if (name == http::field::retry_after && !seen_retry_) {
            retry_after_.assign(value.data(), value.size());
            seen_retry_ = true;
        }
    }
    void on_header_impl(error_code& ec) override {
        if (transfer_encoding_ && version_below_11_) {
            ec = http::error::bad_transfer_encoding; // HTTP/1.0 has no chunked coding
        }
    }
    void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
    std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
    void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
        return take(body, ec);
    }
    void on_finish_impl(error_code&) override {}

    // As buffer_body's reader: copies what fits, need_buffer when something is left over.
    std::size_t take(string_view body, error_code& ec) {
        if (borrowing_) {
            if (borrowed_.empty()) {
                borrowed_ = std::string_view(body.data(), body.size());
            } else if (borrowed_.data() + borrowed_.size() == body.data()) {
                borrowed_ = std::string_view(borrowed_.data(), borrowed_.size() + body.size());
            } else {
                ec = http::error::need_buffer; // not one run: the caller copies instead
                return 0;
            }
            return body.size();
        }
        if (data_ == nullptr) {
            ec = http::error::need_buffer;
            return 0;
        }
        const std::size_t n = std::min(body.size(), left_);
        std::memcpy(data_, body.data(), n);
        data_ += n;
        left_ -= n;
        if (n < body.size()) {
            ec = http::error::need_buffer;
        }
        return n;
    }

    unsigned status_ = 0;
    bool version_below_11_ = false;
    bool transfer_encoding_ = false;
    bool content_length_ = false;
    std::array<char, 64> type_{};
    std::size_t type_size_ = 0;
    std::string type_long_;
    std::string retry_after_;
    bool seen_type_ = false;
    bool seen_retry_ = false;
    char* data_ = nullptr;
    std::size_t left_ = 0;
    bool borrowing_ = false;
    std::string_view borrowed_;
};

} // namespace michi::upstream
