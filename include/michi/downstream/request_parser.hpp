#pragma once
// A client's request read by Beast's HTTP/1 parser into a flat record: the start line, every
// field's name and value appended to one string in arrival order, and the whole body.
// Beast's message parser puts each field into an allocated node of a case-insensitively
// ordered set first; Michi reads four fields of a request, so a scan of a short list costs
// less than building the set. Limits and keep-alive are the parser's own; framing is the
// parser's, held to RFC 9112 section 6 on top (see on_field_impl).

#include "michi/core/net.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace michi::downstream {

class request {
public:
    http::verb method() const { return method_; }
    std::string_view method_string() const { return method_string_; }
    std::string_view target() const { return target_; }
    unsigned version() const { return version_; }
    // Whether the connection may carry another request after this one's response.
    bool keep_alive() const { return keep_alive_; }

    // The first field of that name (names compare case-insensitively); empty when absent.
    std::string_view operator[](http::field name) const;
    std::string_view operator[](std::string_view name) const;

    // Fields Beast has no name for that Michi reads on every request: found once while the
    // head is parsed, so that reading one compares no names.
    enum class extra : std::uint8_t { x_api_key, x_request_id, anthropic_version, anthropic_beta };
    // The first field of that name, as operator[] with its name would find it.
    std::string_view operator[](extra name) const {
        const auto at = extra_[static_cast<std::size_t>(name)];
        if (at == no_field) {
            return {};
        }
        const auto& f = fields_[at];
        return std::string_view(text_).substr(f.value_at, f.value_size);
    }

    const std::string& body() const { return body_; }
    // Lends the body out (to work off the event loop) and takes it back: the request has
    // none meanwhile.
    std::string lend_body() noexcept { return std::move(body_); }
    void take_back_body(std::string body) noexcept { body_ = std::move(body); }
    // Lets the body's storage go (a stream past its commit point no longer needs it).
    void release_body() { std::string().swap(body_); }
    // Lets the fields' storage go too: after this the request has no fields (a stream past
    // its commit point reads none).
    void release_fields() {
        std::string().swap(text_);
        std::vector<field_ref>().swap(fields_);
        extra_.fill(no_field);
    }
    // A HEAD request is served as the GET it asks about (its answer then goes without a
    // body); method_string() still says HEAD.
    bool is_head() const noexcept { return method_ == http::verb::head || head_; }
    void serve_head_as_get() noexcept {
        if (method_ == http::verb::head) {
            method_ = http::verb::get;
            head_ = true;
        }
    }

private:
    friend class request_parser;

    struct field_ref {
        http::field id;
        std::uint32_t name_at, name_size, value_at, value_size;
    };

    static constexpr std::uint32_t no_field = 0xFFFFFFFF;
    // Where in fields_ the first field of each extra name is (no_field: none came).
    std::array<std::uint32_t, 4> extra_{no_field, no_field, no_field, no_field};

    http::verb method_ = http::verb::unknown;
    std::string method_string_;
    std::string target_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    bool head_ = false; // a HEAD request served as a GET
    std::string text_;  // field names and values, back to back
    std::vector<field_ref> fields_;
    std::string body_;
};

class request_parser final : public http::basic_parser<true> {
    using string_view = beast::string_view; // Beast's, as its virtual functions take

public:
    request_parser() = default;
    // Reads into the storage of a request done with (the previous one on the connection):
    // its strings are emptied and keep their room, unless a large body left a lot of it.
    explicit request_parser(request&& spent);

    // The head's limit (Beast's), which also bounds the trailer section of a chunked body.
    void header_limit(std::uint32_t bytes) {
        basic_parser::header_limit(bytes);
        header_limit_ = bytes;
    }
    // The bytes a body read may leave unparsed in the read buffer: the parser consumes body
    // bytes as they come, so only a chunk line or the trailer section waits there whole, and
    // one longer than this is refused (an unterminated one would otherwise grow the buffer
    // without end).
    // True (and ec set) when `buffered` unparsed bytes exceed that.
    bool overlong_line(std::size_t buffered, error_code& ec) {
        if (buffered <= max_chunk_extension + header_limit_ + 64) {
            return false;
        }
        ec = http::error::bad_chunk_extension;
        refusal_ = "a chunk line or trailer section too long";
        return true;
    }
    // Why the parser refused the body for a limit of its own (empty: Beast's error says).
    std::string_view refusal() const noexcept { return refusal_; }

    // A chunk extension longer than this is refused (Michi reads none: RFC 9112 section 7.1.1
    // lets a server ignore them, not take unbounded ones).
    static constexpr std::size_t max_chunk_extension = 4096;

    // The request read so far (its fields complete once the header is done).
    const request& get() const { return req_; }
    // Takes the request out; the parser is then spent.
    request release() {
        req_.keep_alive_ = keep_alive();
        return std::move(req_);
    }

private:
    void on_request_impl(http::verb method, string_view method_string, string_view target,
                         int version, error_code&) override;
    void on_response_impl(int, string_view, int, error_code& ec) override {
        ec = http::error::bad_version; // never called for a request parser
    }
    void on_field_impl(http::field name, string_view name_string, string_view value,
                       error_code&) override;
    void on_header_impl(error_code& ec) override;
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override;
    std::size_t on_body_impl(string_view body, error_code&) override;
    void on_chunk_header_impl(std::uint64_t, string_view extensions, error_code& ec) override;
    std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override;
    void on_finish_impl(error_code&) override {}

    request req_;
    bool transfer_encoding_ = false;    // a Transfer-Encoding field came
    bool content_length_ = false;       // a Content-Length field came
    std::uint32_t header_limit_ = 8192; // (Beast's default)
    std::size_t trailer_bytes_ = 0;     // the trailer section's fields so far
    const char* refusal_ = "";
};

} // namespace michi::downstream
