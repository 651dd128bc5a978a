#pragma once
// One upstream response read by Beast's HTTP/1 parser, keeping only what Michi reads of
// its head: the status, Content-Type and Retry-After (framing and keep-alive are the
// parser's own). Beast's message parser would put every field into an allocated,
// case-insensitively ordered set first, a noticeable part of a proxied request's cost.
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
    void on_response_impl(int code, string_view, int, error_code&) override {
        status_ = static_cast<unsigned>(code);
    }
    void on_field_impl(http::field name, string_view, string_view value, error_code&) override {
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
    void on_header_impl(error_code&) override {}
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
