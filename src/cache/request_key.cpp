#include "michi/cache/request_key.hpp"

#include "michi/core/json_scan.hpp"
#include "michi/core/secret.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>

namespace michi::cache {

namespace {

void append_prefix(std::string& text, api_kind api, std::string_view model, std::string_view scope,
                   std::string_view headers, char form) {
    // One growth of the text, then the parts copied in (no append's checks per part).
    constexpr std::string_view tag = "michi-cache-v1 ";
    const std::string_view kind = to_string(api);
    const std::size_t at = text.size();
    text.resize(at + tag.size() + kind.size() + scope.size() + headers.size() + model.size() + 6);
    char* p = text.data() + at;
    auto put = [&p](std::string_view s) {
        std::memcpy(p, s.data(), s.size());
        p += s.size();
    };
    put(tag);
    *p++ = form;
    *p++ = '\n';
    put(kind);
    *p++ = '\n';
    put(scope);
    *p++ = '\n';
    put(headers);
    *p++ = '\n';
    put(model);
    *p++ = '\n';
}

std::string prefix(api_kind api, std::string_view model, std::string_view scope,
                   std::string_view headers, char form) {
    std::string text;
    append_prefix(text, api, model, scope, headers, form);
    return text;
}

bool sampled_of(const nlohmann::json& body) {
    const auto t = body.find("temperature");
    return t != body.end() && t->is_number() && t->get<double>() > 0;
}

} // namespace

request_key raw_key_of(api_kind api, std::string_view model, std::string_view body,
                       std::string_view scope, std::string_view headers, bool sampled) {
    std::string text = prefix(api, model, scope, headers, 'r');
    text.append(body);
    return {sha256_raw(text), sampled};
}

void exact_text(api_kind api, std::string_view model, std::string_view body, std::string_view scope,
                std::string_view headers, std::string& out) {
    out.clear();
    out.reserve(body.size() + model.size() + scope.size() + headers.size() + 64);
    append_prefix(out, api, model, scope, headers, 'r');
    out.append(body);
}

bool sets_temperature(const nlohmann::json& body) { return sampled_of(body); }

std::optional<request_key> key_of(api_kind api, std::string_view model, std::string_view body,
                                  std::string_view scope, std::string_view headers) {
    if (json_scan::nesting_depth(body, max_key_depth) > max_key_depth) {
        return std::nullopt;
    }
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) {
        return std::nullopt;
    }
    return parsed_key_of(api, model, j, scope, headers);
}

std::optional<request_key> parsed_key_of(api_kind api, std::string_view model,
                                         const nlohmann::json& body, std::string_view scope,
                                         std::string_view headers) {
    static constexpr std::array<std::string_view, 7> skipped{
        "model",       "user", "metadata", "store", "prompt_cache_key", "safety_identifier",
        "service_tier"};
    if (!body.is_object()) {
        return std::nullopt;
    }
    request_key out;
    out.sampled = sampled_of(body);
    std::string text = prefix(api, model, scope, headers, 'n');
    // Members in sorted order (nlohmann keeps objects in a map), each without spaces; the
    // model is the resolved one above, and hints that cannot change the answer are left out.
    for (const auto& [name, value] : body.items()) {
        if (std::ranges::find(skipped, name) != skipped.end()) {
            continue;
        }
        text.append(nlohmann::json(name).dump()).append(":");
        text.append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        text.append(",");
    }
    out.digest = sha256_raw(text);
    return out;
}

} // namespace michi::cache
