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

void request_parser::on_field_impl(http::field name, string_view name_string, string_view value,
                                   error_code&) {
    // (Beast's header limit bounds the text, far below 4 GiB.)
    auto& t = req_.text_;
    const auto name_at = static_cast<std::uint32_t>(t.size());
    t.append(name_string.data(), name_string.size());
    const auto value_at = static_cast<std::uint32_t>(t.size());
    t.append(value.data(), value.size());
    req_.fields_.push_back({name, name_at, static_cast<std::uint32_t>(name_string.size()),
                            value_at, static_cast<std::uint32_t>(value.size())});
}

void request_parser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                       error_code&) {
    // (Beast has checked a Content-Length against the body limit before this.)
    if (length) {
        req_.body_.reserve(static_cast<std::size_t>(*length));
    }
}

std::size_t request_parser::on_body_impl(string_view body, error_code&) {
    req_.body_.append(body.data(), body.size());
    return body.size();
}

std::size_t request_parser::on_chunk_body_impl(std::uint64_t, string_view body,
                                               error_code& ec) {
    return on_body_impl(body, ec); // a chunk's bytes join the body as plain ones do
}

} // namespace michi::downstream
