// OpenAI Chat Completions requests -> Google Gemini generateContent / streamGenerateContent.

#include "michi/providers/gemini.hpp"

#include "gemini_detail.hpp"
#include "michi/providers/usage.hpp"

#include <array>
#include <cctype>
#include <map>

namespace michi::providers::gemini {
namespace {

using detail::count_at;
using detail::dump;
using detail::fail;
using detail::find;
using detail::json;
using detail::lower;
using detail::single;
using detail::string_at;
using translate_util::clean_text;

// Deeper JSON schemas are refused rather than walked (the walk is recursive).
constexpr int max_schema_depth = 64;
// Gemini 3 and later reject replayed function calls without the thoughtSignature they were
// returned with, which OpenAI messages cannot carry; Google documents this sentinel for
// histories that lost it.
constexpr std::string_view skip_signature = "skip_thought_signature_validator";

bool needs_signature(std::string_view model) {
    return model.starts_with("gemini-") && !model.starts_with("gemini-1") &&
           !model.starts_with("gemini-2");
}

std::string indexed(std::string_view base, std::size_t i) {
    return std::string(base) + "[" + std::to_string(i) + "]";
}

// ---- OpenAI request -> Gemini request ----

// MIME type from a URL's file extension; image/jpeg when it says nothing known.
std::string mime_from_url(std::string_view url) {
    url = url.substr(0, url.find_first_of("?#"));
    const std::size_t dot = url.rfind('.');
    const std::size_t slash = url.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
        return "image/jpeg";
    }
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> types{{
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"heic", "image/heic"},
        {"heif", "image/heif"},
        {"pdf", "application/pdf"},
        {"mp3", "audio/mp3"},
        {"wav", "audio/wav"},
        {"mp4", "video/mp4"},
        {"txt", "text/plain"},
        {"json", "application/json"},
    }};
    const std::string ext = lower(std::string(url.substr(dot + 1)));
    for (const auto& [e, mime] : types) {
        if (ext == e) {
            return std::string(mime);
        }
    }
    return "image/jpeg";
}

// A base64 data: URL -> inlineData; an http(s) or gs:// URL -> fileData.
json media_part(const std::string& url, const std::string& param) {
    if (url.starts_with("data:")) {
        const std::size_t comma = url.find(',');
        const std::string_view meta = std::string_view(url).substr(5, comma - 5);
        if (comma == std::string::npos || !meta.ends_with(";base64")) {
            fail("data: URLs must be base64-encoded", param);
        }
        std::string mime(meta.substr(0, meta.find(';')));
        return single("inlineData", {{"mimeType", mime.empty() ? "image/jpeg" : mime},
                                     {"data", url.substr(comma + 1)}});
    }
    const std::string scheme = lower(url.substr(0, url.find(':')));
    if (scheme != "http" && scheme != "https" && scheme != "gs") {
        fail("media URLs must be base64 data: URLs or http(s) URLs", param);
    }
    return single("fileData", {{"mimeType", mime_from_url(url)}, {"fileUri", url}});
}

void add_text(json& parts, std::string text) {
    if (!text.empty()) {
        parts.push_back(single("text", std::move(text)));
    }
}

// Appends the Gemini parts of an OpenAI message content (a string or an array of parts).
void add_content(const json& content, const std::string& param, json& parts) {
    if (content.is_null()) {
        return;
    }
    if (content.is_string()) {
        add_text(parts, content.get<std::string>());
        return;
    }
    if (!content.is_array()) {
        fail("content must be a string or an array of content parts", param);
    }
    for (std::size_t i = 0; i < content.size(); ++i) {
        const json& part = content[i];
        const std::string where = indexed(param, i);
        const std::string type = string_at(part, "type");
        const json* body = find(part, type);
        if (type == "text" || type == "refusal") {
            add_text(parts, string_at(part, type));
        } else if (type == "image_url" && body != nullptr) {
            parts.push_back(media_part(
                body->is_string() ? body->get<std::string>() : string_at(*body, "url"), where));
        } else if (type == "input_audio" && body != nullptr) {
            const std::string mime = "audio/" + string_at(*body, "format");
            parts.push_back(
                single("inlineData", {{"mimeType", mime}, {"data", string_at(*body, "data")}}));
        } else if (type == "file" && body != nullptr && !string_at(*body, "file_data").empty()) {
            parts.push_back(media_part(string_at(*body, "file_data"), where));
        } else {
            fail("unsupported content part for Gemini: '" + type + "'", where);
        }
    }
}

// The text of a content that should be plain text (tool results): text parts concatenated.
std::string content_text(const json& content) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    std::string text;
    if (content.is_array()) {
        for (const json& part : content) {
            text += string_at(part, "text");
        }
    }
    return text;
}

// functionCall.args from an OpenAI function call's arguments (a JSON object text).
json call_args(const json& function, const std::string& param) {
    const json* args = find(function, "arguments");
    if (args == nullptr || args->is_null() || args->is_object()) {
        return args != nullptr && args->is_object() ? *args : json::object();
    }
    if (args->is_string()) {
        const std::string& text = args->get_ref<const std::string&>();
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
            return json::object();
        }
        json parsed = json_parse::parse_value(text);
        if (parsed.is_object()) {
            return parsed;
        }
    }
    fail("tool call arguments must be a JSON object", param);
}

struct contents_builder {
    json contents = json::array();
    json system_parts = json::array();
    std::map<std::string, std::string> tool_names; // tool_call id -> function name
    bool sign_calls = false;

    // Appends a turn; consecutive turns of one role are merged (Gemini alternates roles).
    void append(const char* role, json parts) {
        if (parts.empty()) {
            return;
        }
        if (!contents.empty() && contents.back()["role"] == role) {
            for (json& p : parts) {
                contents.back()["parts"].push_back(std::move(p));
            }
        } else {
            contents.push_back({{"role", role}, {"parts", std::move(parts)}});
        }
    }

    void add_call(const json& function, const std::string& id, const std::string& param,
                  json& parts) {
        const std::string name = string_at(function, "name");
        if (name.empty()) {
            fail("a tool call needs a function name", param);
        }
        if (!id.empty()) {
            tool_names[id] = name;
        }
        json part = single("functionCall", {{"name", name}, {"args", call_args(function, param)}});
        if (sign_calls) {
            part["thoughtSignature"] = skip_signature;
        }
        parts.push_back(std::move(part));
    }

    void add_message(const json& message, std::size_t i) {
        const std::string param = indexed("messages", i);
        if (!message.is_object()) {
            fail("each message must be an object", param);
        }
        const std::string role = string_at(message, "role");
        static const json absent;
        const json* found = find(message, "content");
        const json& content = found != nullptr ? *found : absent;
        json parts = json::array();
        if (role == "system" || role == "developer") {
            add_content(content, param + ".content", system_parts);
        } else if (role == "user") {
            add_content(content, param + ".content", parts);
            append("user", std::move(parts));
        } else if (role == "assistant") {
            add_content(content, param + ".content", parts);
            const std::string calls_param = param + ".tool_calls";
            if (const json* calls = find(message, "tool_calls"); calls && !calls->is_null()) {
                if (!calls->is_array()) {
                    fail("tool_calls must be an array", calls_param);
                }
                for (const json& call : *calls) {
                    const json* fn = find(call, "function");
                    add_call(fn ? *fn : call, string_at(call, "id"), calls_param, parts);
                }
            }
            if (const json* legacy = find(message, "function_call"); legacy && !legacy->is_null()) {
                add_call(*legacy, "", param + ".function_call", parts);
            }
            append("model", std::move(parts));
        } else if (role == "tool" || role == "function") {
            const std::string id = string_at(message, "tool_call_id");
            const auto known = tool_names.find(id);
            std::string name =
                known != tool_names.end() ? known->second : string_at(message, "name");
            const std::string text = content_text(content);
            json response = json_parse::parse_value(text);
            if (!response.is_object()) {
                response = {{"content", text}};
            }
            json call = {{"name", name.empty() ? id : name}, {"response", std::move(response)}};
            append("user", json::array({single("functionResponse", std::move(call))}));
        } else {
            fail("unsupported message role '" + role + "'", param + ".role");
        }
    }
};

// A JSON schema without the keywords Gemini's OpenAPI subset rejects.
json strip_schema(const json& schema, const std::string& param, int depth = 0) {
    if (depth > max_schema_depth) {
        fail("the JSON schema nests too deeply", param);
    }
    if (schema.is_array()) {
        json out = json::array();
        for (const json& e : schema) {
            out.push_back(strip_schema(e, param, depth + 1));
        }
        return out;
    }
    if (!schema.is_object()) {
        return schema;
    }
    json out = json::object();
    for (const auto& [key, value] : schema.items()) {
        if (key == "$schema" || key == "additionalProperties" || key == "strict") {
            continue;
        }
        if (key == "properties" && value.is_object()) {
            // Property names are the caller's, never keywords: keep them all.
            json props = json::object();
            for (const auto& [name, sub] : value.items()) {
                props[name] = strip_schema(sub, param, depth + 1);
            }
            out[key] = std::move(props);
        } else {
            out[key] = strip_schema(value, param, depth + 1);
        }
    }
    return out;
}

json function_declarations(const json& tools) {
    if (!tools.is_array()) {
        fail("tools must be an array", "tools");
    }
    json decls = json::array();
    for (std::size_t i = 0; i < tools.size(); ++i) {
        const std::string param = indexed("tools", i);
        const json* fn = find(tools[i], "function");
        const std::string type = string_at(tools[i], "type");
        if (fn == nullptr || !fn->is_object() || (!type.empty() && type != "function")) {
            fail("Gemini supports only function tools", param);
        }
        const std::string name = string_at(*fn, "name");
        if (name.empty()) {
            fail("a function tool needs a name", param + ".function.name");
        }
        json decl = {{"name", name}};
        if (const std::string description = string_at(*fn, "description"); !description.empty()) {
            decl["description"] = description;
        }
        if (const json* params = find(*fn, "parameters"); params && params->is_object()) {
            json schema = strip_schema(*params, param + ".function.parameters");
            // Gemini rejects an OBJECT schema without properties: a no-argument function.
            const json* props = find(schema, "properties");
            if (props != nullptr && props->is_object() && !props->empty()) {
                decl["parameters"] = std::move(schema);
            } else if (string_at(schema, "type") != "object") {
                decl["parameters"] = std::move(schema);
            }
        }
        decls.push_back(std::move(decl));
    }
    return decls;
}

json tool_config(const json& choice) {
    json config;
    const std::string mode = choice.is_string() ? choice.get<std::string>() : "";
    if (mode == "auto" || mode == "none" || mode == "required") {
        config = {{"mode", mode == "auto" ? "AUTO" : mode == "none" ? "NONE" : "ANY"}};
    } else {
        const json* fn = find(choice, "function");
        const std::string name = fn != nullptr ? string_at(*fn, "name") : "";
        if (name.empty()) {
            fail("tool_choice must be auto, none, required or a function", "tool_choice");
        }
        config = {{"mode", "ANY"}, {"allowedFunctionNames", json::array({name})}};
    }
    return single("functionCallingConfig", std::move(config));
}

// Copies request[from] to config[to] when present: a number, or with integer_only a
// non-negative integer.
void copy_number(const json& request, const char* from, const char* to, bool integer_only,
                 json& config) {
    const json* v = find(request, from);
    if (v == nullptr || v->is_null()) {
        return;
    }
    const bool ok = integer_only ? v->is_number_unsigned() : v->is_number();
    if (!ok) {
        fail(std::string(from) +
                 (integer_only ? " must be a non-negative integer" : " must be a number"),
             from);
    }
    config[to] = *v;
}

json generation_config(const json& request) {
    json config = json::object();
    copy_number(request, "temperature", "temperature", false, config);
    copy_number(request, "top_p", "topP", false, config);
    copy_number(request, "presence_penalty", "presencePenalty", false, config);
    copy_number(request, "frequency_penalty", "frequencyPenalty", false, config);
    copy_number(request, "seed", "seed", false, config);
    copy_number(request, "n", "candidateCount", true, config);
    copy_number(request, "max_tokens", "maxOutputTokens", true, config);
    copy_number(request, "max_completion_tokens", "maxOutputTokens", true, config);
    if (const json* stop = find(request, "stop"); stop && !stop->is_null()) {
        const json list = stop->is_string() ? json::array({*stop}) : *stop;
        const bool ok = list.is_array() && std::all_of(list.begin(), list.end(),
                                                       [](const json& s) { return s.is_string(); });
        if (!ok) {
            fail("stop must be a string or an array of strings", "stop");
        }
        if (!list.empty()) {
            config["stopSequences"] = list;
        }
    }
    for (const char* key : {"logprobs", "top_logprobs", "logit_bias"}) {
        const json* v = find(request, key);
        if (v != nullptr && !v->is_null() && !(v->is_boolean() && !v->get<bool>())) {
            fail(std::string(key) + " is not supported by Gemini", key);
        }
    }
    if (const json* effort = find(request, "reasoning_effort"); effort && !effort->is_null()) {
        const std::string e = effort->is_string() ? effort->get<std::string>() : std::string();
        if (e != "minimal" && e != "low" && e != "medium" && e != "high") {
            fail("reasoning_effort must be minimal, low, medium or high", "reasoning_effort");
        }
        config["thinkingConfig"] = {{"thinkingBudget", e == "minimal"  ? 0
                                                       : e == "low"    ? 1024
                                                       : e == "medium" ? 8192
                                                                       : 24576},
                                    {"includeThoughts", false}};
    }
    if (const json* format = find(request, "response_format"); format && !format->is_null()) {
        const std::string type = string_at(*format, "type");
        if (type == "json_object" || type == "json_schema") {
            config["responseMimeType"] = "application/json";
        } else if (type != "text") {
            fail("response_format.type must be text, json_object or json_schema",
                 "response_format");
        }
        const json* spec = find(*format, "json_schema");
        if (const json* schema = spec != nullptr ? find(*spec, "schema") : nullptr;
            type == "json_schema" && schema != nullptr && schema->is_object()) {
            config["responseSchema"] = strip_schema(*schema, "response_format.json_schema");
        }
    }
    return config;
}

upstream_request build(const json& request, const std::string& model, const std::string& key,
                       bool stream) {
    if (!request.is_object()) {
        fail("the request body must be a JSON object", "");
    }
    const json* messages = find(request, "messages");
    if (messages == nullptr || !messages->is_array()) {
        fail("messages must be an array", "messages");
    }
    contents_builder b;
    b.sign_calls = needs_signature(detail::model_id(model));
    for (std::size_t i = 0; i < messages->size(); ++i) {
        b.add_message((*messages)[i], i);
    }
    json body = json::object();
    if (b.contents.empty()) {
        // Gemini needs at least one turn: a system-only request is asked as the user.
        if (b.system_parts.empty()) {
            fail("messages must contain at least one message with content", "messages");
        }
        b.append("user", std::move(b.system_parts));
    } else if (!b.system_parts.empty()) {
        body["systemInstruction"] = single("parts", std::move(b.system_parts));
    }
    body["contents"] = std::move(b.contents);
    if (const json* tools = find(request, "tools"); tools && !tools->is_null()) {
        json decls = function_declarations(*tools);
        if (!decls.empty()) {
            body["tools"] = json::array({single("functionDeclarations", std::move(decls))});
            if (const json* choice = find(request, "tool_choice"); choice && !choice->is_null()) {
                body["toolConfig"] = tool_config(*choice);
            }
        }
    }
    if (json config = generation_config(request); !config.empty()) {
        body["generationConfig"] = std::move(config);
    }
    const std::string path = "/v1beta/models/" + detail::model_id(model) +
                             (stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    return detail::make_request(path, key, body);
}

} // namespace

translated<upstream_request> build_chat(const nlohmann::json& openai_request,
                                        const std::string& upstream_model,
                                        const std::string& api_key, bool stream) {
    return detail::guarded([&] { return build(openai_request, upstream_model, api_key, stream); });
}

} // namespace michi::providers::gemini
