#pragma once
// Turns a translator's upstream_request (path, fields, body) into the request on the wire:
// shared by the adapters of translated providers (not a public interface).

#include "michi/providers/adapter.hpp"
#include "michi/providers/request_head.hpp"

namespace michi::providers::detail {

inline result<void> to_wire(const binding& b, translated<upstream_request>&& call,
                            outgoing_request& out) {
    if (auto* err = std::get_if<translate_error>(&call)) {
        return errors::invalid_request(std::move(err->message), std::move(err->param));
    }
    auto& r = std::get<upstream_request>(call);
    field_list fields(*b.endpoint);
    for (auto& [name, value] : r.headers) {
        fields.set(name, std::move(value));
    }
    out.body = std::move(r.body);
    head_prefix(out.head, *b.config, b.endpoint->base_path + r.path, std::move(fields));
    finish_head(out.head, out.body.size());
    return ok();
}

inline std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

} // namespace michi::providers::detail
