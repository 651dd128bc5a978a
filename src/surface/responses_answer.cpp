// The Responses API's whole answers: a pivot chat.completion -> a `response` object, and the
// pieces of one that the stream writer shares (envelope, items, usage).
//
// A pivot that carries the model's reasoning beside the content (DeepSeek's
// reasoning_content, vLLM's reasoning) gives a reasoning item first, its text as one
// summary_text part: every Responses client reads summaries (the AI SDK, the Agents SDK and
// Codex show them), and a client that sends the item back gets it dropped, never refused.

#include "michi/surface/responses.hpp"

#include "michi/providers/usage.hpp"
#include "responses_detail.hpp"

#include <set>

namespace michi::surface::responses {
namespace detail {

namespace_map namespaces_of(const json& request) {
    namespace_map out;
    const json* tools = field(request, "tools");
    for (std::size_t i = 0; tools != nullptr && tools->is_array() && i < tools->size(); ++i) {
        const json& tool = (*tools)[i];
        const json* members = field(tool, "tools");
        if (string_field(tool, "type") != "namespace" || members == nullptr ||
            !members->is_array()) {
            continue;
        }
        const std::string ns = string_field(tool, "name");
        for (const json& member : *members) {
            const std::string name = string_field(member, "name");
            if (!ns.empty() && !name.empty()) {
                out.emplace(flat_name(ns, name), std::make_pair(ns, name));
            }
        }
    }
    return out;
}

std::string id_suffix(std::string_view response_id) {
    if (response_id.rfind("resp_", 0) == 0) {
        response_id.remove_prefix(5);
    }
    return response_id.empty() ? std::string("michi") : std::string(response_id);
}

std::string item_id(std::string_view prefix, std::string_view suffix, std::size_t index) {
    std::string id(prefix);
    id.append("_").append(suffix).append("_").append(std::to_string(index));
    return id;
}

json envelope(const json& request, const std::string& model, const std::string& response_id,
              std::int64_t created) {
    const auto given = [&](const char* key, json fallback) {
        const json* v = field(request, key);
        return v != nullptr ? *v : std::move(fallback);
    };
    const auto given_as = [&](const char* key, json fallback, bool (json::*is)() const noexcept) {
        const json* v = field(request, key);
        return v != nullptr && (v->*is)() ? *v : std::move(fallback);
    };
    json reasoning = {{"effort", nullptr}, {"summary", nullptr}};
    if (const json* r = field(request, "reasoning")) {
        for (const char* key : {"effort", "summary"}) {
            if (const json* v = field(*r, key); v != nullptr && v->is_string()) {
                reasoning[key] = *v;
            }
        }
    }
    json text = {{"format", {{"type", "text"}}}};
    if (const json* t = field(request, "text"); t != nullptr && t->is_object()) {
        if (const json* f = field(*t, "format"); f != nullptr && f->is_object()) {
            text["format"] = *f;
        }
        if (const json* v = field(*t, "verbosity"); v != nullptr && v->is_string()) {
            text["verbosity"] = *v;
        }
    }
    // Member by member: a braced list of pairs costs nlohmann a temporary array for each.
    json r = json::object();
    r["id"] = response_id;
    r["object"] = "response";
    r["created_at"] = created;
    r["status"] = "in_progress";
    r["background"] = false;
    r["error"] = nullptr;
    r["incomplete_details"] = nullptr;
    r["instructions"] = given_as("instructions", nullptr, &json::is_string);
    r["max_output_tokens"] = given_as("max_output_tokens", nullptr, &json::is_number);
    r["max_tool_calls"] = given_as("max_tool_calls", nullptr, &json::is_number);
    r["model"] = model;
    r["output"] = json::array();
    r["parallel_tool_calls"] = given_as("parallel_tool_calls", true, &json::is_boolean);
    r["previous_response_id"] = nullptr;
    r["prompt_cache_key"] = given_as("prompt_cache_key", nullptr, &json::is_string);
    r["reasoning"] = std::move(reasoning);
    r["safety_identifier"] = given_as("safety_identifier", nullptr, &json::is_string);
    r["service_tier"] = "default";
    r["store"] = false;
    r["temperature"] = given_as("temperature", nullptr, &json::is_number);
    r["text"] = std::move(text);
    r["tool_choice"] = given("tool_choice", "auto");
    r["tools"] = given_as("tools", json::array(), &json::is_array);
    r["top_p"] = given_as("top_p", nullptr, &json::is_number);
    r["truncation"] = "disabled";
    r["usage"] = nullptr;
    r["user"] = given_as("user", nullptr, &json::is_string);
    r["metadata"] = given_as("metadata", json::object(), &json::is_object);
    return r;
}

json usage_json(const token_usage& u) {
    json input_details = {{"cached_tokens", u.cache_read}};
    if (u.cache_write() != 0) {
        input_details["cache_write_tokens"] = u.cache_write();
    }
    return {{"input_tokens", u.total_input()},
            {"input_tokens_details", std::move(input_details)},
            {"output_tokens", u.output},
            {"output_tokens_details", {{"reasoning_tokens", u.reasoning}}},
            {"total_tokens", token_usage::sum(u.total_input(), u.output)}};
}

std::string_view status_of(std::string_view finish_reason) {
    return finish_reason == "length" || finish_reason == "content_filter" ? "incomplete"
                                                                          : "completed";
}

json incomplete_details(std::string_view finish_reason) {
    if (status_of(finish_reason) == "completed") {
        return nullptr;
    }
    return {{"reason", finish_reason == "length" ? "max_output_tokens" : "content_filter"}};
}

json function_call_item(std::string id, std::string call_id, const std::string& chat_name,
                        std::string arguments, std::string_view status,
                        const namespace_map& namespaces) {
    json item = {{"id", std::move(id)},
                 {"type", "function_call"},
                 {"status", status},
                 {"arguments", std::move(arguments)},
                 {"call_id", std::move(call_id)},
                 {"name", chat_name}};
    if (const auto it = namespaces.find(chat_name); it != namespaces.end()) {
        item["namespace"] = it->second.first;
        item["name"] = it->second.second;
    }
    return item;
}

std::string reasoning_text(const json& message_or_delta) {
    std::string text = string_field(message_or_delta, "reasoning_content");
    return text.empty() ? string_field(message_or_delta, "reasoning") : text;
}

} // namespace detail

namespace {

using namespace detail;

// The text of a chat message's content: a string, or text parts.
std::string content_text(const json* content) {
    if (content == nullptr) {
        return {};
    }
    if (content->is_string()) {
        return content->get<std::string>();
    }
    std::string out;
    for (std::size_t i = 0; content->is_array() && i < content->size(); ++i) {
        out += string_field((*content)[i], "text");
    }
    return out;
}

} // namespace

nlohmann::json chat_to_response(const nlohmann::json& completion, const nlohmann::json& request,
                                const std::string& model, const std::string& response_id,
                                std::int64_t created) {
    const json* choices = field(completion, "choices");
    const json* choice =
        choices != nullptr && choices->is_array() && !choices->empty() ? &(*choices)[0] : nullptr;
    const json* message = choice != nullptr ? field(*choice, "message") : nullptr;
    const std::string finish = choice != nullptr ? string_field(*choice, "finish_reason") : "";
    const std::string_view status = status_of(finish);
    const std::string suffix = id_suffix(response_id);

    json output = json::array();
    if (std::string thought = message != nullptr ? reasoning_text(*message) : "";
        !thought.empty()) {
        output.push_back({{"id", item_id("rs", suffix, output.size())},
                          {"type", "reasoning"},
                          {"summary", {{{"type", "summary_text"}, {"text", std::move(thought)}}}}});
    }
    const std::string text =
        content_text(message != nullptr ? field(*message, "content") : nullptr);
    const std::string refusal = message != nullptr ? string_field(*message, "refusal") : "";
    const json* calls = message != nullptr ? field(*message, "tool_calls") : nullptr;
    const bool has_calls = calls != nullptr && calls->is_array() && !calls->empty();
    if (!text.empty() || !refusal.empty() || !has_calls) {
        json parts = json::array();
        if (!text.empty() || refusal.empty()) {
            parts.push_back({{"type", "output_text"},
                             {"text", text},
                             {"annotations", json::array()},
                             {"logprobs", json::array()}});
        }
        if (!refusal.empty()) {
            parts.push_back({{"type", "refusal"}, {"refusal", refusal}});
        }
        output.push_back({{"id", item_id("msg", suffix, output.size())},
                          {"type", "message"},
                          {"status", "completed"},
                          {"role", "assistant"},
                          {"content", std::move(parts)}});
    }
    const namespace_map namespaces = namespaces_of(request);
    std::set<std::string, std::less<>> call_ids;
    for (std::size_t i = 0; has_calls && i < calls->size(); ++i) {
        const json& call = (*calls)[i];
        const json* fn = field(call, "function");
        std::string call_id = string_field(call, "id");
        if (call_id.empty() || call_ids.count(call_id) != 0) {
            call_id = item_id("call", suffix, output.size());
        }
        call_ids.insert(call_id);
        output.push_back(function_call_item(
            item_id("fc", suffix, output.size()), std::move(call_id),
            fn != nullptr ? string_field(*fn, "name") : "",
            fn != nullptr ? string_field(*fn, "arguments") : "", "completed", namespaces));
    }

    // The item the answer was cut in, if it was: the last one (reasoning items carry no status).
    if (!output.empty() && output.back().contains("status")) {
        output.back()["status"] = status;
    }
    json response = envelope(request, model, response_id, created);
    response["status"] = status;
    response["incomplete_details"] = incomplete_details(finish);
    response["output"] = std::move(output);
    if (const json* usage = field(completion, "usage")) {
        if (const auto tokens = providers::read_openai_chat_usage(*usage)) {
            response["usage"] = usage_json(*tokens);
        }
    }
    return response;
}

} // namespace michi::surface::responses
