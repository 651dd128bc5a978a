// The Responses API's requests in pivot form: a /v1/responses request -> an OpenAI chat
// request, for a target that speaks chat (or is reached through it).
//
// Translated: model, input (a string, or items: messages of every role with text and image
// parts, function_call, function_call_output), instructions, function and namespace tools and
// tool_choice (responses_tools.cpp, which drops web_search tools), text.format and
// text.verbosity, reasoning.effort, max_output_tokens, temperature, top_p,
// parallel_tool_calls, stream, user (safety_identifier when no user).
//
// Dropped, as hints that cannot change the answer: metadata, store (nothing is kept, so the
// answer echoes store: false), include (but logprobs), prompt_cache_key,
// prompt_cache_retention, prompt_cache_options, service_tier, truncation ("disabled"; and
// "auto": a chat target never truncates, so an input too long for it gets the provider's
// context-length error instead of a silently shortened conversation), background: false,
// background_options, stream_options, max_tool_calls (it bounds built-in tools, which are
// refused), image (image context compression), client_metadata (Codex),
// reasoning.summary, reasoning.generate_summary and reasoning.context, and `reasoning` input
// items with item_reference items that point at them ("rs_..."): a chat target cannot take
// reasoning back, neither the summary text nor the encrypted content (only the provider that
// wrote it can read that), so earlier reasoning is left out as a chat client would leave it.
//
// Refused, 400 unsupported_parameter naming the field: previous_response_id, conversation,
// prompt (stored prompts), background: true, context_management, moderation,
// access_programs, top_logprobs > 0, include "message.output_text.logprobs",
// reasoning.mode other than "standard", hosted tools (file_search, computer_use,
// code_interpreter, image_generation, mcp, shell, apply_patch, tool_search, ...), custom
// tools, tool_choice naming a hosted (web_search too) or custom tool, input_file parts,
// images given by file_id, images outside user messages or in tool outputs, item_reference
// to anything but reasoning, input items of other types, text.format other than text,
// json_object and json_schema, and any field the Responses API does not define.

#include "michi/surface/responses.hpp"

#include "responses_detail.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

namespace michi::surface::responses {
namespace {

using namespace detail;

// Top-level fields translated below, each checked where it is read.
constexpr std::array<std::string_view, 18> translated_fields = {"model",
                                                                "input",
                                                                "instructions",
                                                                "tools",
                                                                "tool_choice",
                                                                "text",
                                                                "reasoning",
                                                                "max_output_tokens",
                                                                "temperature",
                                                                "top_p",
                                                                "parallel_tool_calls",
                                                                "stream",
                                                                "user",
                                                                "safety_identifier",
                                                                "include",
                                                                "truncation",
                                                                "background",
                                                                "top_logprobs"};
// Hints dropped (see the top of this file).
constexpr std::array<std::string_view, 11> dropped_fields = {"metadata",
                                                             "store",
                                                             "prompt_cache_key",
                                                             "prompt_cache_retention",
                                                             "prompt_cache_options",
                                                             "service_tier",
                                                             "background_options",
                                                             "stream_options",
                                                             "max_tool_calls",
                                                             "image",
                                                             "client_metadata"};

bool one_of(std::string_view v, std::initializer_list<std::string_view> set) {
    return std::find(set.begin(), set.end(), v) != set.end();
}

void check_fields(const json& req) {
    for (const auto& [key, value] : req.items()) {
        if (value.is_null() ||
            std::find(translated_fields.begin(), translated_fields.end(), key) !=
                translated_fields.end() ||
            std::find(dropped_fields.begin(), dropped_fields.end(), key) != dropped_fields.end()) {
            continue;
        }
        if (key == "previous_response_id" || key == "conversation") {
            unsupported(key + " needs conversation state, which the gateway keeps only for "
                              "models served by a Responses API provider; send the whole "
                              "conversation in input instead",
                        key);
        }
        if (key == "prompt") {
            unsupported("stored prompts (prompt) are served only by a Responses API provider; "
                        "send the instructions and input themselves",
                        key);
        }
        unsupported(key + " is not supported for this model (it is reached through the chat "
                          "completions API, which cannot carry it)",
                    key);
    }
}

// ---- input ----------------------------------------------------------------------------------

// The chat messages being built, and whether the last one is an assistant message that the
// function calls of the same turn join.
struct conversation {
    json messages = json::array();
    bool assistant_open = false;

    void push(json message, bool assistant) {
        messages.push_back(std::move(message));
        assistant_open = assistant;
    }
};

json image_part(const json& part, const std::string& where, const std::string& role) {
    if (role != "user") {
        unsupported("images are carried only in user messages for this model", where);
    }
    const json* url = field(part, "image_url");
    if (url == nullptr && field(part, "file_id") != nullptr) {
        unsupported("images given by file_id need OpenAI's file store; send image_url (an "
                    "https or data: URL) instead",
                    where + ".file_id");
    }
    if (url == nullptr || !url->is_string() || url->get_ref<const std::string&>().empty()) {
        invalid("input_image needs an image_url", where + ".image_url");
    }
    json image = {{"url", *url}};
    if (const json* detail = field(part, "detail"); detail != nullptr && detail->is_string()) {
        image["detail"] = *detail;
    }
    return {{"type", "image_url"}, {"image_url", std::move(image)}};
}

void map_message(const json& item, const std::string& where, conversation& conv) {
    const std::string role = string_field(item, "role");
    if (!one_of(role, {"user", "assistant", "system", "developer"})) {
        invalid("role must be user, assistant, system or developer", where + ".role");
    }
    const std::string chat_role = role == "developer" ? "system" : role;
    const bool assistant = role == "assistant";
    const json* content = field(item, "content");
    if (content != nullptr && content->is_string()) {
        conv.push({{"role", chat_role}, {"content", *content}}, assistant);
        return;
    }
    if (content == nullptr || !content->is_array()) {
        invalid("content must be a string or an array of content parts", where + ".content");
    }
    json parts = json::array();
    std::string text;
    bool images = false;
    const std::string sep = assistant ? "" : "\n\n";
    for (std::size_t j = 0; j < content->size(); ++j) {
        const json& part = (*content)[j];
        const std::string part_at = at(where + ".content", j);
        const std::string type = string_field(part, "type");
        if (type == "input_text" || type == "output_text" || type == "refusal") {
            const json* t = field(part, type == "refusal" ? "refusal" : "text");
            if (t == nullptr || !t->is_string()) {
                invalid(type + " needs a string " + (type == "refusal" ? "refusal" : "text"),
                        part_at);
            }
            text += (j == 0 ? "" : sep) + t->get<std::string>();
            parts.push_back({{"type", "text"}, {"text", *t}});
        } else if (type == "input_image") {
            parts.push_back(image_part(part, part_at, role));
            images = true;
        } else if (type == "input_file") {
            unsupported("file inputs (input_file) are not supported for this model", part_at);
        } else {
            unsupported("content part type \"" + type + "\" is not supported for this model",
                        part_at);
        }
    }
    conv.push({{"role", chat_role}, {"content", images ? std::move(parts) : json(text)}},
              assistant);
}

void map_function_call(const json& item, const std::string& where, conversation& conv) {
    const std::string call_id = string_field(item, "call_id");
    if (call_id.empty()) {
        invalid("function_call needs a call_id", where + ".call_id");
    }
    std::string name = string_field(item, "name");
    if (name.empty()) {
        invalid("function_call needs a name", where + ".name");
    }
    if (const std::string ns = string_field(item, "namespace"); !ns.empty()) {
        name = flat_name(ns, name);
    }
    const json* args = field(item, "arguments");
    if (args != nullptr && !args->is_string()) {
        invalid("arguments must be a string of JSON", where + ".arguments");
    }
    json call = {{"id", call_id},
                 {"type", "function"},
                 {"function",
                  {{"name", std::move(name)},
                   {"arguments", args != nullptr ? *args : json(std::string())}}}};
    if (!conv.assistant_open) {
        conv.push({{"role", "assistant"}, {"content", nullptr}}, true);
    }
    json& message = conv.messages.back();
    if (!message.contains("tool_calls")) {
        message["tool_calls"] = json::array();
    }
    message["tool_calls"].push_back(std::move(call));
}

void map_function_output(const json& item, const std::string& where, conversation& conv) {
    const std::string call_id = string_field(item, "call_id");
    if (call_id.empty()) {
        invalid("function_call_output needs a call_id", where + ".call_id");
    }
    const json* output = field(item, "output");
    std::string text;
    if (output != nullptr && output->is_string()) {
        text = output->get<std::string>();
    } else if (output != nullptr && output->is_array()) {
        for (std::size_t j = 0; j < output->size(); ++j) {
            const json& part = (*output)[j];
            const std::string type = string_field(part, "type");
            if (type != "input_text" && type != "output_text") {
                unsupported("a function output part of type \"" + type +
                                "\" cannot be carried to this model (tool results are text)",
                            at(where + ".output", j));
            }
            text += string_field(part, "text");
        }
    } else {
        invalid("output must be a string or an array of content parts", where + ".output");
    }
    conv.push({{"role", "tool"}, {"tool_call_id", call_id}, {"content", std::move(text)}}, false);
}

void map_item(const json& item, const std::string& where, conversation& conv) {
    if (!item.is_object()) {
        invalid("an input item must be an object", where);
    }
    std::string type = string_field(item, "type");
    if (type.empty() && field(item, "role") != nullptr) {
        type = "message";
    }
    if (type == "message") {
        map_message(item, where, conv);
    } else if (type == "function_call") {
        map_function_call(item, where, conv);
    } else if (type == "function_call_output") {
        map_function_output(item, where, conv);
    } else if (type == "reasoning") {
        // Dropped: a chat target cannot take reasoning back (see the top of this file).
    } else if (type == "item_reference") {
        if (string_field(item, "id").rfind("rs_", 0) != 0) {
            unsupported("item_reference needs items stored by the provider, which the gateway "
                        "does not keep for this model; send the item itself (the Vercel AI "
                        "SDK does with providerOptions.openai.store = false)",
                        where);
        }
    } else if (type.empty()) {
        invalid("an input item needs a type", where + ".type");
    } else {
        unsupported("input items of type \"" + type + "\" are not supported for this model", where);
    }
}

json map_input(const json& req) {
    conversation conv;
    if (const json* instructions = field(req, "instructions")) {
        if (!instructions->is_string()) {
            invalid("instructions must be a string", "instructions");
        }
        if (!instructions->get_ref<const std::string&>().empty()) {
            conv.push({{"role", "system"}, {"content", *instructions}}, false);
        }
    }
    const json* input = field(req, "input");
    if (input == nullptr) {
        invalid("input is required", "input");
    }
    if (input->is_string()) {
        conv.push({{"role", "user"}, {"content", *input}}, false);
    } else if (input->is_array()) {
        for (std::size_t i = 0; i < input->size(); ++i) {
            map_item((*input)[i], at("input", i), conv);
        }
    } else {
        invalid("input must be a string or an array of items", "input");
    }
    if (conv.messages.empty()) {
        invalid("input must not be empty", "input");
    }
    return std::move(conv.messages);
}

// ---- the rest -------------------------------------------------------------------------------

void map_text(const json& req, json& out) {
    const json* text = field(req, "text");
    if (text == nullptr) {
        return;
    }
    if (!text->is_object()) {
        invalid("text must be an object", "text");
    }
    if (const json* verbosity = field(*text, "verbosity")) {
        if (!verbosity->is_string()) {
            invalid("text.verbosity must be a string", "text.verbosity");
        }
        out["verbosity"] = *verbosity;
    }
    const json* format = field(*text, "format");
    if (format == nullptr) {
        return;
    }
    const std::string type = string_field(*format, "type");
    if (type == "text") {
        return;
    }
    if (type == "json_object") {
        out["response_format"] = {{"type", "json_object"}};
        return;
    }
    if (type != "json_schema") {
        unsupported("text.format type \"" + type + "\" is not supported for this model",
                    "text.format");
    }
    const std::string name = string_field(*format, "name");
    if (name.empty()) {
        invalid("a json_schema format needs a name", "text.format.name");
    }
    const json* schema = field(*format, "schema");
    if (schema == nullptr || !schema->is_object()) {
        invalid("a json_schema format needs a schema object", "text.format.schema");
    }
    json spec = {{"name", name}, {"schema", *schema}};
    if (const json* strict = field(*format, "strict")) {
        if (!strict->is_boolean()) {
            invalid("strict must be a boolean", "text.format.strict");
        }
        spec["strict"] = *strict;
    }
    if (const json* d = field(*format, "description"); d != nullptr && d->is_string()) {
        spec["description"] = *d;
    }
    out["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(spec)}};
}

void map_reasoning(const json& req, json& out) {
    const json* reasoning = field(req, "reasoning");
    if (reasoning == nullptr) {
        return;
    }
    if (!reasoning->is_object()) {
        invalid("reasoning must be an object", "reasoning");
    }
    if (const json* effort = field(*reasoning, "effort")) {
        if (!effort->is_string()) {
            invalid("reasoning.effort must be a string", "reasoning.effort");
        }
        out["reasoning_effort"] = *effort;
    }
    if (const json* mode = field(*reasoning, "mode"); mode != nullptr && *mode != "standard") {
        unsupported("reasoning.mode is served only by a Responses API provider", "reasoning.mode");
    }
}

void map_options(const json& req, json& out) {
    if (field(req, "max_output_tokens") != nullptr) {
        const auto n = uint_field(req, "max_output_tokens");
        if (!n || *n == 0) {
            invalid("max_output_tokens must be a positive integer", "max_output_tokens");
        }
        out["max_completion_tokens"] = *n;
    }
    for (const char* key : {"temperature", "top_p"}) {
        if (const json* v = field(req, key)) {
            if (!v->is_number()) {
                invalid(std::string(key) + " must be a number", key);
            }
            out[key] = *v;
        }
    }
    if (const json* stream = field(req, "stream")) {
        if (!stream->is_boolean()) {
            invalid("stream must be a boolean", "stream");
        }
        if (stream->get<bool>()) {
            out["stream"] = true;
            out["stream_options"] = {{"include_usage", true}};
        }
    }
    for (const char* key : {"user", "safety_identifier"}) {
        if (const json* v = field(req, key)) {
            if (!v->is_string()) {
                invalid(std::string(key) + " must be a string", key);
            }
            if (!out.contains("user")) {
                out["user"] = *v;
            }
        }
    }
    if (const json* background = field(req, "background")) {
        if (!background->is_boolean()) {
            invalid("background must be a boolean", "background");
        }
        if (background->get<bool>()) {
            unsupported("background responses need stored state, which the gateway keeps only "
                        "for models served by a Responses API provider",
                        "background");
        }
    }
    if (const json* truncation = field(req, "truncation")) {
        if (*truncation != "auto" && *truncation != "disabled") {
            invalid("truncation must be auto or disabled", "truncation");
        }
    }
    if (field(req, "top_logprobs") != nullptr) {
        const auto n = uint_field(req, "top_logprobs");
        if (!n) {
            invalid("top_logprobs must be a non-negative integer", "top_logprobs");
        }
        if (*n != 0) {
            unsupported("logprobs are not supported for this model", "top_logprobs");
        }
    }
    if (const json* include = field(req, "include")) {
        if (!include->is_array()) {
            invalid("include must be an array of strings", "include");
        }
        for (std::size_t i = 0; i < include->size(); ++i) {
            if (!(*include)[i].is_string()) {
                invalid("include must be an array of strings", at("include", i));
            }
            if ((*include)[i] == "message.output_text.logprobs") {
                unsupported("logprobs are not supported for this model", at("include", i));
            }
        }
    }
}

} // namespace

providers::translated<nlohmann::json> request_to_chat(const nlohmann::json& responses_request) {
    try {
        const json& req = responses_request;
        if (!req.is_object()) {
            invalid("the request body must be a JSON object", "");
        }
        const std::string model = string_field(req, "model");
        if (model.empty()) {
            invalid("model is required", "model");
        }
        check_fields(req);
        json out = {{"model", model}, {"messages", map_input(req)}};
        json tools = map_tools(req);
        json choice = json::object();
        map_tool_choice(req, tools, choice);
        // Chat refuses tool_choice and parallel_tool_calls without tools.
        if (!tools.empty()) {
            out["tools"] = std::move(tools);
            if (choice.contains("tool_choice")) {
                out["tool_choice"] = std::move(choice["tool_choice"]);
            }
        }
        if (const json* parallel = field(req, "parallel_tool_calls")) {
            if (!parallel->is_boolean()) {
                invalid("parallel_tool_calls must be a boolean", "parallel_tool_calls");
            }
            if (out.contains("tools")) {
                out["parallel_tool_calls"] = *parallel;
            }
        }
        map_text(req, out);
        map_reasoning(req, out);
        map_options(req, out);
        return out;
    } catch (const failure& f) {
        return f.error;
    } catch (const std::exception& e) {
        return providers::translate_error{std::string("invalid request: ") + e.what(), "", false};
    }
}

} // namespace michi::surface::responses
