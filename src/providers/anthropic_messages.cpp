// The gateway's /v1/messages endpoint: Anthropic requests -> OpenAI chat requests, and OpenAI
// responses and chunks -> Anthropic messages and stream events.

#include "michi/providers/anthropic.hpp"

#include "anthropic_detail.hpp"
#include "michi/providers/usage.hpp"

#include <algorithm>
#include <map>

namespace michi::providers::anthropic {
namespace {

using namespace detail;

std::string anthropic_stop(std::string_view finish_reason) {
    if (finish_reason == "length") {
        return "max_tokens";
    }
    if (finish_reason == "tool_calls" || finish_reason == "function_call") {
        return "tool_use";
    }
    if (finish_reason == "content_filter") {
        return "refusal";
    }
    return "end_turn";
}

// Text of an Anthropic content value (string or blocks); non-text blocks are skipped.
std::string blocks_text(const json& content, std::string_view sep) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    std::string out;
    for (std::size_t i = 0; content.is_array() && i < content.size(); ++i) {
        if (string_field(content[i], "type") == "text") {
            out += (out.empty() ? "" : std::string(sep)) + string_field(content[i], "text");
        }
    }
    return out;
}

json image_part(const json& block, const std::string& where) {
    const json* source = field(block, "source");
    const std::string type = source != nullptr ? string_field(*source, "type") : "";
    std::string url;
    if (type == "base64") {
        url = "data:" + string_field(*source, "media_type") + ";base64," +
              string_field(*source, "data");
    } else if (type == "url") {
        url = string_field(*source, "url");
    } else {
        fail("image source type \"" + type + "\" is not supported", where);
    }
    return {{"type", "image_url"}, {"image_url", {{"url", url}}}};
}

// One Anthropic turn -> OpenAI messages appended to out (tool results become tool messages).
void map_turn(const json& msg, const std::string& where, json& out) {
    const std::string role = string_field(msg, "role");
    const json* content = field(msg, "content");
    if (role == "system") {
        // A system turn inside messages (Claude Code sends one to models it does not know).
        if (content == nullptr || (!content->is_string() && !content->is_array())) {
            fail("content must be a string or an array of text blocks", where + ".content");
        }
        out.push_back({{"role", "system"}, {"content", blocks_text(*content, "\n\n")}});
        return;
    }
    if (role != "user" && role != "assistant") {
        fail("role must be user, assistant or system", where + ".role");
    }
    if (content != nullptr && content->is_string()) {
        out.push_back({{"role", role}, {"content", *content}});
        return;
    }
    if (content == nullptr || !content->is_array()) {
        fail("content must be a string or an array of blocks", where + ".content");
    }
    json parts = json::array();
    json tool_calls = json::array();
    json tool_results = json::array();
    for (std::size_t j = 0; j < content->size(); ++j) {
        const json& block = (*content)[j];
        const std::string block_at = at(where + ".content", j);
        const std::string type = string_field(block, "type");
        if (type == "text") {
            parts.push_back({{"type", "text"}, {"text", string_field(block, "text")}});
        } else if (type == "image" && role == "user") {
            parts.push_back(image_part(block, block_at));
        } else if (type == "tool_use" && role == "assistant") {
            tool_calls.push_back(openai_tool_call(block));
        } else if (type == "tool_result" && role == "user") {
            const json* result = field(block, "content");
            tool_results.push_back(
                {{"role", "tool"},
                 {"tool_call_id", string_field(block, "tool_use_id")},
                 {"content", result != nullptr ? blocks_text(*result, "\n") : std::string()}});
        } else if (type != "thinking" && type != "redacted_thinking") {
            fail("content block type \"" + type + "\" is not supported here", block_at);
        }
    }
    out.insert(out.end(), tool_results.begin(), tool_results.end());
    const bool text_only =
        std::all_of(parts.begin(), parts.end(), [](const json& p) { return p["type"] == "text"; });
    json text = blocks_text(parts, role == "user" ? "\n\n" : "");
    if (!tool_calls.empty()) {
        json m = {{"role", "assistant"},
                  {"content", text.get_ref<const std::string&>().empty() ? json(nullptr) : text}};
        m["tool_calls"] = std::move(tool_calls);
        out.push_back(std::move(m));
    } else if (!parts.empty() || tool_results.empty()) {
        out.push_back({{"role", role}, {"content", text_only ? text : parts}});
    }
}

void map_tools(const json& request, json& out) {
    const json* tools = field(request, "tools");
    if (tools != nullptr && !tools->is_array()) {
        fail("tools must be an array", "tools");
    }
    json mapped = json::array();
    for (std::size_t i = 0; tools != nullptr && i < tools->size(); ++i) {
        const json& tool = (*tools)[i];
        const json* schema = field(tool, "input_schema");
        if (string_field(tool, "name").empty() || schema == nullptr || !schema->is_object()) {
            fail("only custom tools with a name and an input_schema are supported", at("tools", i));
        }
        json fn = {{"name", string_field(tool, "name")}, {"parameters", *schema}};
        if (const json* d = field(tool, "description"); d != nullptr && d->is_string()) {
            fn["description"] = *d;
        }
        mapped.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    if (mapped.empty()) {
        return;
    }
    out["tools"] = std::move(mapped);
    const json* choice = field(request, "tool_choice");
    if (choice == nullptr) {
        return;
    }
    const std::string type = string_field(*choice, "type");
    if (type == "auto" || type == "none") {
        out["tool_choice"] = type;
    } else if (type == "any") {
        out["tool_choice"] = "required";
    } else if (type == "tool" && !string_field(*choice, "name").empty()) {
        out["tool_choice"] = {{"type", "function"},
                              {"function", {{"name", string_field(*choice, "name")}}}};
    } else {
        fail("tool_choice must be auto, any, none or tool with a name", "tool_choice");
    }
    const json* serial = field(*choice, "disable_parallel_tool_use");
    if (serial != nullptr && serial->is_boolean() && serial->get<bool>()) {
        out["parallel_tool_calls"] = false;
    }
}

void map_options(const json& request, json& out) {
    for (const char* key : {"temperature", "top_p"}) {
        if (const json* v = field(request, key)) {
            if (!v->is_number()) {
                fail(std::string(key) + " must be a number", key);
            }
            out[key] = *v;
        }
    }
    if (const json* stops = field(request, "stop_sequences")) {
        if (!stops->is_array() || !std::all_of(stops->begin(), stops->end(),
                                               [](const json& s) { return s.is_string(); })) {
            fail("stop_sequences must be an array of strings", "stop_sequences");
        }
        if (!stops->empty()) {
            out["stop"] = *stops;
        }
    }
    if (const json* stream = field(request, "stream"); stream != nullptr && *stream == true) {
        out["stream"] = true;
        out["stream_options"] = {{"include_usage", true}};
    }
    if (const json* meta = field(request, "metadata")) {
        if (const std::string user = string_field(*meta, "user_id"); !user.empty()) {
            out["user"] = user;
        }
    }
    if (field(request, "top_k") != nullptr) {
        fail("top_k cannot be carried to this model's provider", "top_k");
    }
    // Extended thinking (or output_config's effort) -> a reasoning effort.
    std::string effort;
    if (const json* thinking = field(request, "thinking");
        thinking != nullptr && string_field(*thinking, "type") == "enabled") {
        const auto budget = uint_field(*thinking, "budget_tokens").value_or(0);
        effort = budget < 4096 ? "low" : budget < 16384 ? "medium" : "high";
    } else if (const json* config = field(request, "output_config")) {
        const std::string e = string_field(*config, "effort");
        if (e == "low" || e == "medium" || e == "high") {
            effort = e;
        }
    }
    if (!effort.empty()) {
        out["reasoning_effort"] = effort;
    }
}

} // namespace

translated<nlohmann::json> request_from_messages(const nlohmann::json& messages_request) {
    try {
        const json& req = messages_request;
        if (!req.is_object()) {
            fail("the request body must be a JSON object", "");
        }
        const std::string model = string_field(req, "model");
        if (model.empty()) {
            fail("model is required", "model");
        }
        const auto max_tokens = uint_field(req, "max_tokens");
        if (!max_tokens || *max_tokens == 0) {
            fail("max_tokens is required and must be a positive integer", "max_tokens");
        }
        json messages = json::array();
        if (const json* system = field(req, "system")) {
            if (!system->is_string() && !system->is_array()) {
                fail("system must be a string or an array of text blocks", "system");
            }
            if (std::string text = blocks_text(*system, "\n\n"); !text.empty()) {
                messages.push_back({{"role", "system"}, {"content", std::move(text)}});
            }
        }
        const json* turns = field(req, "messages");
        if (turns == nullptr || !turns->is_array() || turns->empty()) {
            fail("messages must be a non-empty array", "messages");
        }
        for (std::size_t i = 0; i < turns->size(); ++i) {
            map_turn((*turns)[i], at("messages", i), messages);
        }
        json out = {
            {"model", model}, {"messages", std::move(messages)}, {"max_tokens", *max_tokens}};
        map_tools(req, out);
        map_options(req, out);
        return out;
    } catch (const failure& f) {
        return f.error;
    } catch (const std::exception& e) {
        return translate_error{std::string("invalid request: ") + e.what(), ""};
    }
}

nlohmann::json response_to_messages(const nlohmann::json& openai_response,
                                    const std::string& model) {
    json content = json::array();
    const json* choices = field(openai_response, "choices");
    const json* choice =
        choices != nullptr && choices->is_array() && !choices->empty() ? &(*choices)[0] : nullptr;
    const json* message = choice != nullptr ? field(*choice, "message") : nullptr;
    const json* text = message != nullptr ? field(*message, "content") : nullptr;
    if (std::string t = text != nullptr ? blocks_text(*text, "") : ""; !t.empty()) {
        content.push_back({{"type", "text"}, {"text", std::move(t)}});
    }
    const json* calls = message != nullptr ? field(*message, "tool_calls") : nullptr;
    for (std::size_t i = 0; calls != nullptr && calls->is_array() && i < calls->size(); ++i) {
        const json* fn = field((*calls)[i], "function");
        json input = json_parse::parse_value(fn != nullptr ? string_field(*fn, "arguments") : "");
        content.push_back({{"type", "tool_use"},
                           {"id", string_field((*calls)[i], "id")},
                           {"name", fn != nullptr ? string_field(*fn, "name") : ""},
                           {"input", input.is_object() ? input : json::object()}});
    }
    const json* usage = field(openai_response, "usage");
    const token_usage tokens =
        usage != nullptr ? read_openai_chat_usage(*usage).value_or(token_usage{}) : token_usage{};
    std::string id = string_field(openai_response, "id");
    if (id.rfind("chatcmpl-", 0) == 0) {
        id.erase(0, 9);
    }
    return {{"id", id.rfind("msg_", 0) == 0 ? id : "msg_" + (id.empty() ? "michi" : id)},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model},
            {"content", std::move(content)},
            {"stop_reason",
             anthropic_stop(choice != nullptr ? string_field(*choice, "finish_reason") : "")},
            {"stop_sequence", nullptr},
            {"usage", anthropic_usage_json(tokens)}};
}

struct messages_stream_writer::state {
    enum class block { none, text, thinking, tool };

    std::string id;
    std::string model;
    bool started = false;
    bool finished = false;
    block open = block::none;
    std::size_t open_index = 0;
    std::size_t next_index = 0;
    std::map<std::uint64_t, std::size_t> tools; // OpenAI tool_calls index -> block index
    std::string stop_reason = "end_turn";
    bool usage_known = false;
    token_usage tokens;

    static void event(std::string& out, const char* type, json data) {
        data["type"] = type;
        out += stream::format_sse(dump(data), type);
    }
    void start(std::string& out) {
        if (started) {
            return;
        }
        started = true;
        event(out, "message_start",
              {{"message",
                {{"id", id},
                 {"type", "message"},
                 {"role", "assistant"},
                 {"model", model},
                 {"content", json::array()},
                 {"stop_reason", nullptr},
                 {"stop_sequence", nullptr},
                 {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}}}});
    }
    void close(std::string& out) {
        if (open != block::none) {
            event(out, "content_block_stop", {{"index", open_index}});
            open = block::none;
        }
    }
    void open_block(std::string& out, block kind, json content_block) {
        close(out);
        open = kind;
        open_index = next_index++;
        event(out, "content_block_start",
              {{"index", open_index}, {"content_block", std::move(content_block)}});
    }
    void delta(std::string& out, std::size_t index, json d) {
        event(out, "content_block_delta", {{"index", index}, {"delta", std::move(d)}});
    }

    void on_tool_call(std::string& out, const json& call, std::size_t position) {
        const std::uint64_t key = uint_field(call, "index").value_or(position);
        const json* fn = field(call, "function");
        auto it = tools.find(key);
        if (it == tools.end()) {
            std::string call_id = string_field(call, "id");
            open_block(out, block::tool,
                       {{"type", "tool_use"},
                        {"id", call_id.empty() ? "toolu_" + std::to_string(next_index) : call_id},
                        {"name", fn != nullptr ? string_field(*fn, "name") : ""},
                        {"input", json::object()}});
            it = tools.emplace(key, open_index).first;
        }
        if (std::string args = fn != nullptr ? string_field(*fn, "arguments") : ""; !args.empty()) {
            delta(out, it->second, {{"type", "input_json_delta"}, {"partial_json", args}});
        }
    }

    void on_chunk(const json& chunk, std::string& out) {
        start(out);
        if (const json* usage = field(chunk, "usage")) {
            if (const auto read = read_openai_chat_usage(*usage)) {
                usage_known = true;
                tokens = *read;
            }
        }
        const json* choices = field(chunk, "choices");
        if (choices == nullptr || !choices->is_array() || choices->empty()) {
            return;
        }
        const json& choice = (*choices)[0];
        const json* d = field(choice, "delta");
        const std::string reasoning = d != nullptr ? string_field(*d, "reasoning_content") : "";
        if (!reasoning.empty()) {
            if (open != block::thinking) {
                open_block(out, block::thinking, {{"type", "thinking"}, {"thinking", ""}});
            }
            delta(out, open_index, {{"type", "thinking_delta"}, {"thinking", reasoning}});
        }
        const std::string text = d != nullptr ? string_field(*d, "content") : "";
        if (!text.empty()) {
            if (open != block::text) {
                open_block(out, block::text, {{"type", "text"}, {"text", ""}});
            }
            delta(out, open_index, {{"type", "text_delta"}, {"text", text}});
        }
        const json* calls = d != nullptr ? field(*d, "tool_calls") : nullptr;
        for (std::size_t j = 0; calls != nullptr && calls->is_array() && j < calls->size(); ++j) {
            on_tool_call(out, (*calls)[j], j);
        }
        if (const std::string finish = string_field(choice, "finish_reason"); !finish.empty()) {
            stop_reason = anthropic_stop(finish);
        }
    }

    void finish(std::string& out) {
        if (finished) {
            return;
        }
        start(out);
        close(out);
        finished = true;
        json usage =
            usage_known ? anthropic_usage_json(tokens) : json{{"output_tokens", tokens.output}};
        event(out, "message_delta",
              {{"delta", {{"stop_reason", stop_reason}, {"stop_sequence", nullptr}}},
               {"usage", std::move(usage)}});
        event(out, "message_stop", json::object());
    }
};

messages_stream_writer::messages_stream_writer(std::string id, std::string model)
    : s_(std::make_shared<state>()) {
    s_->id = std::move(id);
    s_->model = std::move(model);
}

void messages_stream_writer::on_chunk(const nlohmann::json& chunk, std::string& out) {
    if (!s_->finished) {
        s_->on_chunk(chunk, out);
    }
}

void messages_stream_writer::finish(std::string& out) { s_->finish(out); }

std::string messages_stream_writer::error_event(std::string_view message) {
    const json data = {{"type", "error"},
                       {"error", {{"type", "api_error"}, {"message", std::string(message)}}}};
    return stream::format_sse(dump(data), "error");
}

} // namespace michi::providers::anthropic
