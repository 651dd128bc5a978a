// Requests of the client's API in pivot form.

#include "michi/providers/anthropic.hpp"
#include "michi/surface/responses.hpp"
#include "michi/surface/surface.hpp"

namespace michi::surface {

result<nlohmann::json> to_pivot(api_kind api, nlohmann::json request) {
    providers::translated<nlohmann::json> converted;
    switch (api) {
    case api_kind::count_tokens:
        if (request.is_object() && !request.contains("max_tokens")) {
            request["max_tokens"] = 1; // a count reaches no model: it sends no output limit
        }
        [[fallthrough]];
    case api_kind::messages:
        converted = providers::anthropic::request_from_messages(request);
        break;
    case api_kind::responses: converted = responses::request_to_chat(request); break;
    case api_kind::chat:
    case api_kind::embeddings: return request;
    }
    if (auto* err = std::get_if<providers::translate_error>(&converted)) {
        if (err->unsupported) {
            return errors::unsupported_parameter(err->message, err->param);
        }
        return errors::invalid_request(err->message, err->param);
    }
    return std::move(std::get<nlohmann::json>(converted));
}

} // namespace michi::surface
