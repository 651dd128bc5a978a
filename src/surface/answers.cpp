// Errors and whole answers in the client's API.

#include "michi/providers/anthropic.hpp"
#include "michi/stream/sse.hpp"
#include "michi/surface/responses.hpp"
#include "michi/surface/surface.hpp"

#include <ctime>

namespace michi::surface {
namespace {

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The message of an OpenAI error body, or the whole body's text.
std::string message_of(const nlohmann::json& pivot) {
    if (pivot.is_object()) {
        const auto err = pivot.find("error");
        if (err != pivot.end() && err->is_object()) {
            const auto m = err->find("message");
            if (m != err->end() && m->is_string()) {
                return m->get<std::string>();
            }
        }
    }
    return dump(pivot);
}

} // namespace

std::string error_body(api_kind api, const gateway_error& err) {
    return dump(dialect_of(api) == dialect::anthropic ? err.anthropic_body() : err.openai_body());
}

std::string upstream_error_body(api_kind api, unsigned status, const nlohmann::json& pivot) {
    if (dialect_of(api) == dialect::openai) {
        return dump(pivot);
    }
    auto err = errors::upstream_error(message_of(pivot));
    err.status = status;
    return dump(err.anthropic_body());
}

std::string whole_answer(api_kind api, const nlohmann::json& pivot, const std::string& client_model,
                         std::string_view client_body, std::string_view answer_id) {
    if (api == api_kind::messages) {
        return dump(providers::anthropic::response_to_messages(pivot, client_model));
    }
    if (api == api_kind::responses) {
        const auto request = nlohmann::json::parse(client_body, nullptr, false);
        return dump(responses::chat_to_response(pivot, request, client_model,
                                                std::string(answer_id),
                                                static_cast<std::int64_t>(std::time(nullptr))));
    }
    return dump(pivot);
}

std::string broken_event(api_kind api, std::string_view message) {
    if (dialect_of(api) == dialect::anthropic) {
        return providers::anthropic::messages_stream_writer::error_event(message);
    }
    if (api == api_kind::responses) {
        return responses::stream_writer::error_event(message);
    }
    return stream::format_sse(dump(errors::upstream_error(std::string(message)).openai_body()));
}

} // namespace michi::surface
