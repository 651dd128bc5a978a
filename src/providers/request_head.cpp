#include "michi/providers/request_head.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/core/json_scan.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace michi::providers {

field_list::field_list(const upstream::endpoint& ep) {
    fields_.reserve(6);
    const bool default_port = ep.port == (ep.tls ? "443" : "80");
    set("Host", default_port ? ep.host : ep.host + ":" + ep.port);
}

void field_list::set(std::string_view name, std::string value) {
    for (auto& [n, v] : fields_) {
        if (beast::iequals(n, name)) {
            v = std::move(value);
            return;
        }
    }
    fields_.emplace_back(std::string(name), std::move(value));
}

void head_prefix(std::string& out, const config::provider_config& p, std::string_view target,
                 field_list&& own) {
    own.set("Content-Type", "application/json");
    own.set("User-Agent", "michi/" MICHI_VERSION);
    for (const auto& [name, value] : p.headers) {
        // The body's framing is Michi's own: a configured one would contradict it.
        if (!beast::iequals(name, "content-length") && !beast::iequals(name, "transfer-encoding")) {
            own.set(name, value);
        }
    }
    out.reserve(out.size() + 160 + target.size());
    out.append("POST ");
    out.append(target);
    out.append(" HTTP/1.1\r\n");
    for (const auto& [name, value] : own.fields()) {
        wire::append_field(out, name, value);
    }
}

void finish_head(std::string& head, std::size_t body_size) {
    wire::append_field(head, "Content-Length", std::uint64_t{body_size});
    head.append(wire::crlf);
}

bool splice_model(std::string_view raw, std::size_t model_begin, std::size_t model_end,
                  std::string_view upstream_model, std::string_view first_member,
                  std::string& out) {
    out.clear();
    if (model_end == 0) { // the body was parsed, not scanned: find the model's bytes
        const auto model = json_scan::find_unique(raw, "model");
        if (!model) {
            return false;
        }
        model_begin = static_cast<std::size_t>(model->data() - raw.data());
        model_end = model_begin + model->size();
    }
    out.reserve(raw.size() + upstream_model.size() + 2 + first_member.size());
    std::size_t from = 0;
    if (!first_member.empty()) {
        const std::size_t open = raw.find('{') + 1; // the object has a member: "model"
        out.append(raw.substr(0, open));
        out.append(first_member);
        from = open;
    }
    out.append(raw.substr(from, model_begin - from));
    append_json_string(out, upstream_model);
    out.append(raw.substr(model_end));
    return true;
}

} // namespace michi::providers
