// OpenAI chat request -> Anthropic Messages request.

#include "michi/providers/anthropic.hpp"

#include "anthropic_detail.hpp"

#include <algorithm>

namespace michi::providers::anthropic {
namespace {

using namespace detail;

json image_block(const json& part, const std::string& where) {
    const json* image = field(part, "image_url");
    const std::string url = image != nullptr && image->is_string() ? image->get<std::string>()
                            : image != nullptr                     ? string_field(*image, "url")
                                                                   : std::string();
    if (url.rfind("data:", 0) == 0) {
        const auto comma = url.find(',');
        const std::string header = url.substr(5, comma == std::string::npos ? 0 : comma - 5);
        if (comma == std::string::npos || !header.ends_with(";base64")) {
            fail("image data URLs must be base64 encoded (data:<type>;base64,<data>)", where);
        }
        return {{"type", "image"},
                {"source",
                 {{"type", "base64"},
                  {"media_type", header.substr(0, header.find(';'))},
                  {"data", url.substr(comma + 1)}}}};
    }
    if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
        return {{"type", "image"}, {"source", {{"type", "url"}, {"url", url}}}};
    }
    fail("image_url.url must be a data: URL or an http(s) URL", where);
}

// OpenAI message content (string, parts or null) -> Anthropic content blocks.
json content_blocks(const json& msg, const std::string& where) {
    json blocks = json::array();
    const json* content = field(msg, "content");
    if (content == nullptr) {
        return blocks;
    }
    if (content->is_string()) {
        if (!content->get_ref<const std::string&>().empty()) {
            blocks.push_back({{"type", "text"}, {"text", *content}});
        }
        return blocks;
    }
    if (!content->is_array()) {
        fail("content must be a string or an array of parts", where + ".content");
    }
    for (std::size_t j = 0; j < content->size(); ++j) {
        const json& part = (*content)[j];
        const std::string part_at = at(where + ".content", j);
        const std::string type = string_field(part, "type");
        json block;
        if (type == "text") {
            const json* text = field(part, "text");
            if (text == nullptr || !text->is_string()) {
                fail("a text part needs a string text", part_at);
            }
            if (text->get_ref<const std::string&>().empty()) {
                continue;
            }
            block = {{"type", "text"}, {"text", *text}};
        } else if (type == "image_url") {
            block = image_block(part, part_at);
        } else {
            fail("content part type \"" + type + "\" is not supported by Anthropic", part_at);
        }
        if (const json* cc = field(part, "cache_control"); cc != nullptr && cc->is_object()) {
            block["cache_control"] = *cc;
        }
        blocks.push_back(std::move(block));
    }
    return blocks;
}

bool all_text(const json& blocks) {
    return std::all_of(blocks.begin(), blocks.end(), [](const json& b) {
        return b["type"] == "text" && !b.contains("cache_control");
    });
}

std::string join_text(const json& blocks, std::string_view sep) {
    std::string out;
    for (const json& b : blocks) {
        out += (out.empty() ? "" : std::string(sep)) + b["text"].get<std::string>();
    }
    return out;
}

json tool_use_blocks(const json& msg, const std::string& where) {
    json blocks = json::array();
    const json* calls = field(msg, "tool_calls");
    if (calls == nullptr) {
        return blocks;
    }
    if (!calls->is_array()) {
        fail("tool_calls must be an array", where);
    }
    for (std::size_t j = 0; j < calls->size(); ++j) {
        const json& call = (*calls)[j];
        const json* fn = field(call, "function");
        const std::string id = string_field(call, "id");
        const std::string name = fn != nullptr ? string_field(*fn, "name") : std::string();
        if (id.empty() || name.empty()) {
            fail("tool_calls[" + std::to_string(j) + "] needs an id and a function name", where);
        }
        const json* args = field(*fn, "arguments");
        json input = json::object();
        if (args != nullptr && args->is_string()) {
            if (!args->get_ref<const std::string&>().empty()) {
                input = json_parse::parse_value(args->get_ref<const std::string&>());
            }
        } else if (args != nullptr) {
            input = *args;
        }
        if (!input.is_object()) {
            fail("tool_calls[" + std::to_string(j) +
                     "].function.arguments must be a JSON object (as a string)",
                 where);
        }
        blocks.push_back({{"type", "tool_use"}, {"id", id}, {"name", name}, {"input", input}});
    }
    return blocks;
}

// Appends blocks as one turn, merged into the previous turn when it has the same role.
void append_turn(json& turns, const char* role, json blocks) {
    if (blocks.empty()) {
        return;
    }
    if (!turns.empty() && turns.back()["role"] == role) {
        auto& content = turns.back()["content"];
        content.insert(content.end(), blocks.begin(), blocks.end());
        return;
    }
    turns.push_back({{"role", role}, {"content", std::move(blocks)}});
}

void map_messages(const json& request, json& body) {
    const json* messages = field(request, "messages");
    if (messages == nullptr || !messages->is_array() || messages->empty()) {
        fail("messages must be a non-empty array", "messages");
    }
    json system = json::array();
    json turns = json::array();
    for (std::size_t i = 0; i < messages->size(); ++i) {
        const json& msg = (*messages)[i];
        const std::string where = at("messages", i);
        const std::string role = string_field(msg, "role");
        if (role == "system" || role == "developer") {
            json blocks = content_blocks(msg, where);
            for (const json& b : blocks) {
                if (b["type"] != "text") {
                    fail("system messages may only carry text", where);
                }
            }
            system.insert(system.end(), blocks.begin(), blocks.end());
        } else if (role == "user") {
            append_turn(turns, "user", content_blocks(msg, where));
        } else if (role == "assistant") {
            json blocks = content_blocks(msg, where);
            json calls = tool_use_blocks(msg, where);
            blocks.insert(blocks.end(), calls.begin(), calls.end());
            append_turn(turns, "assistant", std::move(blocks));
        } else if (role == "tool") {
            const std::string id = string_field(msg, "tool_call_id");
            if (id.empty()) {
                fail("a tool message needs a tool_call_id", where);
            }
            json blocks = content_blocks(msg, where);
            json result = {{"type", "tool_result"}, {"tool_use_id", id}};
            result["content"] = all_text(blocks) ? json(join_text(blocks, "\n")) : blocks;
            append_turn(turns, "user", json::array({std::move(result)}));
        } else {
            fail("role \"" + role + "\" is not supported", where + ".role");
        }
    }
    if (turns.empty()) {
        fail("messages must hold at least one user or assistant message", "messages");
    }
    if (!system.empty()) {
        body["system"] = all_text(system) ? json(join_text(system, "\n\n")) : system;
    }
    body["messages"] = std::move(turns);
}

void map_tools(const json& request, json& body) {
    const json* tools = field(request, "tools");
    if (tools != nullptr && !tools->is_array()) {
        fail("tools must be an array", "tools");
    }
    json out = json::array();
    for (std::size_t i = 0; tools != nullptr && i < tools->size(); ++i) {
        const json& tool = (*tools)[i];
        const json* fn = field(tool, "function");
        if (string_field(tool, "type", "function") != "function" || fn == nullptr ||
            string_field(*fn, "name").empty()) {
            fail("only function tools with a name are supported", at("tools", i));
        }
        json t = {{"name", string_field(*fn, "name")}};
        if (const json* d = field(*fn, "description"); d != nullptr && d->is_string()) {
            t["description"] = *d;
        }
        const json* params = field(*fn, "parameters");
        t["input_schema"] =
            params != nullptr && params->is_object() ? *params : json{{"type", "object"}};
        if (const json* cc = field(tool, "cache_control"); cc != nullptr && cc->is_object()) {
            t["cache_control"] = *cc;
        }
        out.push_back(std::move(t));
    }
    if (out.empty()) {
        return; // tool_choice without tools means nothing to Anthropic
    }
    body["tools"] = std::move(out);

    json choice;
    if (const json* tc = field(request, "tool_choice"); tc != nullptr) {
        const std::string mode = tc->is_string() ? tc->get<std::string>() : std::string();
        const json* fn = field(*tc, "function");
        if (mode == "auto" || mode == "none") {
            choice = {{"type", mode}};
        } else if (mode == "required") {
            choice = {{"type", "any"}};
        } else if (string_field(*tc, "type") == "function" && fn != nullptr &&
                   !string_field(*fn, "name").empty()) {
            choice = {{"type", "tool"}, {"name", string_field(*fn, "name")}};
        } else {
            fail("tool_choice must be auto, required, none or a function", "tool_choice");
        }
    }
    const json* parallel = field(request, "parallel_tool_calls");
    if (parallel != nullptr && parallel->is_boolean() && !parallel->get<bool>()) {
        if (choice.is_null()) {
            choice = {{"type", "auto"}};
        }
        if (choice["type"] != "none") {
            choice["disable_parallel_tool_use"] = true;
        }
    }
    if (!choice.is_null()) {
        body["tool_choice"] = std::move(choice);
    }
}

// A number field (null or absent: nothing), or a translate_error.
std::optional<double> number_field(const json& request, const char* key) {
    const json* v = field(request, key);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_number()) {
        fail(std::string(key) + " must be a number", key);
    }
    return v->get<double>();
}

void map_sampling(const json& request, json& body) {
    if (const json* n = field(request, "n"); n != nullptr && !(uint_field(request, "n") == 1u)) {
        fail("n other than 1 is not supported by Anthropic", "n");
    }
    std::uint64_t max_tokens = default_max_tokens;
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        if (field(request, key) != nullptr) {
            const auto v = uint_field(request, key);
            if (!v || *v == 0) {
                fail(std::string(key) + " must be a positive integer", key);
            }
            max_tokens = *v;
        }
    }
    body["max_tokens"] = max_tokens;
    if (const auto t = number_field(request, "temperature")) {
        body["temperature"] = std::clamp(*t, 0.0, 1.0);
    }
    if (const auto p = number_field(request, "top_p")) {
        body["top_p"] = *p;
    }
    if (const json* stop = field(request, "stop")) {
        json seqs = stop->is_string() ? json::array({*stop}) : *stop;
        if (!seqs.is_array() ||
            !std::all_of(seqs.begin(), seqs.end(), [](const json& s) { return s.is_string(); })) {
            fail("stop must be a string or an array of strings", "stop");
        }
        if (!seqs.empty()) {
            body["stop_sequences"] = std::move(seqs);
        }
    }
    if (const json* user = field(request, "user"); user != nullptr && user->is_string()) {
        body["metadata"] = {{"user_id", *user}};
    }
    // What Anthropic cannot honour is refused, never dropped in silence.
    for (const char* key : {"logprobs", "top_logprobs", "seed", "logit_bias"}) {
        const json* v = field(request, key);
        if (v != nullptr && !v->is_null() && !(v->is_boolean() && !v->get<bool>())) {
            fail(std::string(key) + " is not supported by Anthropic", key);
        }
    }
    for (const char* key : {"frequency_penalty", "presence_penalty"}) {
        if (const auto v = number_field(request, key); v && *v != 0) {
            fail(std::string(key) + " is not supported by Anthropic", key);
        }
    }
}

// Thinking budgets for OpenAI's reasoning efforts.
std::uint64_t thinking_budget(std::string_view effort) {
    if (effort == "minimal" || effort == "low") {
        return 1024;
    }
    return effort == "medium" ? 8192 : 24576;
}

// reasoning_effort -> extended thinking, its budget on top of the answer's max_tokens (an
// OpenAI max counts reasoning too, but a client's max is rarely sized for a budget).
void map_reasoning(const json& request, json& body) {
    const json* effort = field(request, "reasoning_effort");
    if (effort == nullptr) {
        return;
    }
    const std::string e = effort->is_string() ? effort->get<std::string>() : std::string();
    if (e != "minimal" && e != "low" && e != "medium" && e != "high") {
        fail("reasoning_effort must be minimal, low, medium or high", "reasoning_effort");
    }
    if (body.contains("temperature") || body.contains("top_p")) {
        fail("temperature and top_p cannot be set with reasoning_effort for Anthropic "
             "(extended thinking samples on its own)",
             body.contains("temperature") ? "temperature" : "top_p");
    }
    const auto budget = thinking_budget(e);
    body["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};
    body["max_tokens"] = body["max_tokens"].get<std::uint64_t>() + budget;
}

// response_format -> Anthropic's structured outputs (a JSON schema the answer follows).
bool map_response_format(const json& request, json& body) {
    const json* format = field(request, "response_format");
    if (format == nullptr) {
        return false;
    }
    const std::string type = string_field(*format, "type");
    if (type == "text") {
        return false;
    }
    const json* spec = field(*format, "json_schema");
    const json* schema = spec != nullptr ? field(*spec, "schema") : nullptr;
    if (type != "json_schema" || schema == nullptr || !schema->is_object()) {
        fail("response_format must be text or json_schema with a schema for Anthropic",
             "response_format");
    }
    body["output_format"] = {{"type", "json_schema"}, {"schema", *schema}};
    return true;
}

} // namespace

translated<upstream_request> build_chat(const nlohmann::json& openai_request,
                                        const std::string& upstream_model,
                                        const std::string& api_key, bool stream) {
    try {
        if (!openai_request.is_object()) {
            fail("the request body must be a JSON object", "");
        }
        json body = {{"model", upstream_model}};
        map_messages(openai_request, body);
        map_tools(openai_request, body);
        map_sampling(openai_request, body);
        map_reasoning(openai_request, body);
        const bool structured = map_response_format(openai_request, body);
        if (stream) {
            body["stream"] = true;
        }
        upstream_request out{"/v1/messages", {}, dump(body)};
        if (structured) {
            out.headers.emplace_back("anthropic-beta", std::string(structured_outputs_beta));
        }
        if (!api_key.empty()) {
            out.headers.emplace_back("x-api-key", api_key);
        }
        out.headers.emplace_back("anthropic-version", std::string(api_version));
        out.headers.emplace_back("content-type", "application/json");
        return out;
    } catch (const failure& f) {
        return f.error;
    } catch (const std::exception& e) {
        return translate_error{std::string("invalid request: ") + e.what(), ""};
    }
}

} // namespace michi::providers::anthropic
