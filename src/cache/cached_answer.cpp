#include "michi/cache/cached_answer.hpp"

#include "michi/core/http_wire.hpp"

#include <charconv>

namespace michi::cache {
namespace {

constexpr std::string_view magic = "MC1";

template <class T>
bool read_number(std::string_view& in, T& out) {
    while (!in.empty() && in.front() == ' ') {
        in.remove_prefix(1);
    }
    const auto [p, ec] = std::from_chars(in.data(), in.data() + in.size(), out);
    if (ec != std::errc{} || p == in.data()) {
        return false;
    }
    in.remove_prefix(static_cast<std::size_t>(p - in.data()));
    return true;
}

} // namespace

void make_fields(cached_answer& a) {
    a.lead.clear();
    a.model_field.clear();
    if (a.stream) {
        return;
    }
    // (1xx, 204 and 304 have no body: their hits are written as any answer is.)
    if (a.status / 100 != 1 && a.status != 204 && a.status != 304) {
        wire::append_field(a.lead, "Content-Type", a.content_type);
        wire::append_field(a.lead, "Content-Length", std::uint64_t{a.body.size()});
    }
    wire::append_field(a.model_field, "x-michi-model", a.model);
}

std::string encode(const cached_answer& a) {
    std::string out;
    out.reserve(64 + a.content_type.size() + a.model.size() + a.body.size());
    out.append(magic);
    for (const std::uint64_t n : {std::uint64_t{a.stream}, std::uint64_t{a.status},
                                  static_cast<std::uint64_t>(a.expires_ms), a.cost_nano,
                                  std::uint64_t{a.content_type.size()},
                                  std::uint64_t{a.model.size()}, std::uint64_t{a.body.size()}}) {
        out.push_back(' ');
        out.append(std::to_string(n));
    }
    out.push_back('\n');
    out.append(a.content_type).append(a.model).append(a.body);
    return out;
}

std::optional<cached_answer> decode(std::string_view in) {
    if (!in.starts_with(magic)) {
        return std::nullopt;
    }
    in.remove_prefix(magic.size());
    cached_answer a;
    unsigned stream = 0;
    std::size_t type_n = 0;
    std::size_t model_n = 0;
    std::size_t body_n = 0;
    if (!read_number(in, stream) || !read_number(in, a.status) || !read_number(in, a.expires_ms) ||
        !read_number(in, a.cost_nano) || !read_number(in, type_n) || !read_number(in, model_n) ||
        !read_number(in, body_n) || in.empty() || in.front() != '\n' || stream > 1) {
        return std::nullopt;
    }
    in.remove_prefix(1);
    if (type_n > in.size() || model_n > in.size() - type_n ||
        body_n != in.size() - type_n - model_n) {
        return std::nullopt;
    }
    a.stream = stream == 1;
    a.content_type = in.substr(0, type_n);
    a.model = in.substr(type_n, model_n);
    a.body = in.substr(type_n + model_n);
    return a;
}

} // namespace michi::cache
