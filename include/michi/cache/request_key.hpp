#pragma once
// The response cache's key for a request: the SHA-256 of the request normalised, so that
// the same question asked twice is found whatever its spacing or member order. What counts:
// the client's API, the model as resolved (the route or model name), every member of the
// body (messages, tools, sampling parameters, stream options, ...) but hints that cannot
// change the answer (user, metadata, store, prompt_cache_key, safety_identifier,
// service_tier), the Anthropic version and beta headers, and the API key only when asked
// (per_key).

#include "michi/core/api.hpp"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace michi::cache {

// How deep a body may nest for its answer to be cached (deeper ones are not: never a
// recursion over the client's input without a bound).
inline constexpr std::size_t max_key_depth = 64;

struct request_key {
    std::string digest;   // 32 bytes: SHA-256 of the normalised request
    bool sampled = false; // it sets temperature above 0
};

// The key of a request; nullopt when its body is not a JSON object (or nests too deeply).
// scope: the API key's id when answers are kept per key, else empty; headers: request
// header values that shape the answer (anthropic-version, anthropic-beta), joined.
std::optional<request_key> key_of(api_kind api, std::string_view model, std::string_view body,
                                  std::string_view scope, std::string_view headers);
// The same for a body already parsed (as the client sent it): not parsed again, not copied.
// The caller has checked its text's json_scan::nesting_depth.
std::optional<request_key> parsed_key_of(api_kind api, std::string_view model,
                                         const nlohmann::json& body, std::string_view scope,
                                         std::string_view headers);
// The key of the body's exact bytes (not normalised), for a request whose parse is another
// API's form (a translated one): the body is not parsed again. sampled: from that parse.
request_key raw_key_of(api_kind api, std::string_view model, std::string_view body,
                       std::string_view scope, std::string_view headers, bool sampled);
// What a request's key covers as one text, not normalised (the body's exact bytes last), into
// out: for response_cache::known_key.
void exact_text(api_kind api, std::string_view model, std::string_view body, std::string_view scope,
                std::string_view headers, std::string& out);
// Whether a parsed request sets temperature above 0.
bool sets_temperature(const nlohmann::json& body);

} // namespace michi::cache
