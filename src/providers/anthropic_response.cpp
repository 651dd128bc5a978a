// Anthropic message responses, stream events and error bodies -> OpenAI shapes.

#include "michi/providers/anthropic.hpp"

#include "anthropic_detail.hpp"
#include "michi/providers/usage.hpp"

#include <map>

namespace michi::providers::anthropic {
namespace {

using namespace detail;
using translate_util::clean_text;

std::string openai_finish(std::string_view stop_reason) {
    if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
        return "length";
    }
    if (stop_reason == "tool_use") {
        return "tool_calls";
    }
    if (stop_reason == "refusal") {
        return "content_filter";
    }
    return "stop"; // end_turn, stop_sequence, pause_turn and anything newer
}

std::string error_type_for(unsigned status) {
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return "api_error";
    }
}

class stream_translator final : public translate_util::openai_chunk_stream {
public:
    using openai_chunk_stream::openai_chunk_stream;

    bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) override {
        try {
            return handle(ev, out);
        } catch (const std::exception&) {
            return true; // a malformed event is skipped
        }
    }
    bool finished() const override { return finished_; }
    const usage_info& usage() const override { return info_; }
    std::string error_message() const override { return error_; }

private:
    struct tool_block {
        std::size_t index = 0; // OpenAI tool_calls index
        bool has_arguments = false;
    };

    json chunk(json choices) const {
        json c = base_chunk();
        c["choices"] = std::move(choices);
        return c;
    }
    // One chunk of one choice, written as dump(chunk(...)) writes it (keys in order), with
    // the stream's own fields serialised once: no object built per event.
    void emit(std::vector<std::string>& out, const json& delta,
              const json& finish = nullptr) const {
        if (tail_.empty()) {
            tail_ = dump(base_chunk()).substr(1); // "created":…,"object":"chat.completion.chunk"}
        }
        std::string c = R"({"choices":[{"delta":)";
        c.append(dump(delta)).append(R"(,"finish_reason":)").append(dump(finish));
        c.append(R"(,"index":0}],)").append(tail_);
        out.push_back(std::move(c));
    }
    void emit_arguments(std::vector<std::string>& out, tool_block& tool, const std::string& args) {
        tool.has_arguments = true;
        emit(out, {{"tool_calls",
                    json::array({{{"index", tool.index}, {"function", {{"arguments", args}}}}})}});
    }
    tool_block* tool_at(const json& data) {
        const auto index = uint_field(data, "index");
        const auto it = index ? tools_.find(*index) : tools_.end();
        return it == tools_.end() ? nullptr : &it->second;
    }

    bool handle(const stream::sse_event& ev, std::vector<std::string>& out) {
        if (finished_) {
            return true;
        }
        const json data = json_parse::parse_value(ev.data);
        const std::string type = ev.event.empty() ? string_field(data, "type") : ev.event;
        if (type == "error") {
            const json* err = field(data, "error");
            error_ = err != nullptr ? string_field(*err, "message") : std::string();
            if (error_.empty()) {
                error_ = data.is_discarded() ? clean_text(ev.data, 1000) : std::string();
            }
            if (error_.empty()) {
                error_ = "upstream stream error";
            }
            return false;
        }
        const json* delta = field(data, "delta");
        if (type == "message_start") {
            const json* message = field(data, "message");
            if (const json* usage = message != nullptr ? field(*message, "usage") : nullptr) {
                usage_.add(*usage);
            }
            emit(out, {{"role", "assistant"}, {"content", ""}});
        } else if (type == "content_block_start") {
            start_block(data, out);
        } else if (type == "content_block_delta" && delta != nullptr) {
            const std::string kind = string_field(*delta, "type");
            const std::string text = string_field(*delta, "text");
            const std::string thinking = string_field(*delta, "thinking");
            const std::string partial = string_field(*delta, "partial_json");
            if (kind == "text_delta" && !text.empty()) {
                emit(out, {{"content", text}});
            } else if (kind == "thinking_delta" && !thinking.empty()) {
                emit(out, {{"reasoning_content", thinking}});
            } else if (tool_block* tool = tool_at(data);
                       kind == "input_json_delta" && tool != nullptr && !partial.empty()) {
                emit_arguments(out, *tool, partial);
            }
        } else if (type == "content_block_stop") {
            // A tool without parameters streams no JSON; OpenAI clients expect "{}".
            if (tool_block* tool = tool_at(data); tool != nullptr && !tool->has_arguments) {
                emit_arguments(out, *tool, "{}");
            }
        } else if (type == "message_delta") {
            if (const json* usage = field(data, "usage")) {
                usage_.add(*usage);
            }
            const std::string stop = delta != nullptr ? string_field(*delta, "stop_reason") : "";
            if (!stop.empty() && !finish_sent_) {
                finish_sent_ = true;
                emit(out, json::object(), openai_finish(stop));
            }
        } else if (type == "message_stop") {
            finished_ = true;
            if (!finish_sent_) {
                finish_sent_ = true;
                emit(out, json::object(), "stop");
            }
            if (include_usage_) {
                json c = chunk(json::array());
                c["usage"] = openai_chat_usage_json(usage_.tokens());
                out.push_back(dump(c));
            }
        }
        info_ = usage_.known() ? usage_info::from(usage_.tokens()) : usage_info{};
        return true; // ping and unknown events carry nothing for the client
    }

    void start_block(const json& data, std::vector<std::string>& out) {
        const json* block = field(data, "content_block");
        const auto index = uint_field(data, "index");
        if (block == nullptr || !index) {
            return;
        }
        const std::string kind = string_field(*block, "type");
        const std::string text = string_field(*block, "text");
        if (kind == "text" && !text.empty()) {
            emit(out, {{"content", text}});
        } else if (kind == "tool_use") {
            tool_block& tool = tools_[*index];
            tool = tool_block{next_tool_++, false};
            emit(out, {{"tool_calls", json::array({{{"index", tool.index},
                                                    {"id", string_field(*block, "id")},
                                                    {"type", "function"},
                                                    {"function",
                                                     {{"name", string_field(*block, "name")},
                                                      {"arguments", ""}}}}})}});
            const json* input = field(*block, "input");
            if (input != nullptr && input->is_object() && !input->empty()) {
                emit_arguments(out, tool, dump(*input));
            }
        }
    }

    bool finished_ = false;
    bool finish_sent_ = false;
    std::string error_;
    anthropic_usage_tally usage_;
    usage_info info_;
    std::map<std::uint64_t, tool_block> tools_; // by Anthropic content block index
    std::size_t next_tool_ = 0;
    mutable std::string tail_; // a chunk's members after "choices", and its closing brace
};

} // namespace

nlohmann::json to_openai(const nlohmann::json& response, const std::string& model,
                         const std::string& id, std::int64_t created, usage_info& usage) {
    std::string text;
    std::string reasoning;
    bool has_text = false;
    json tool_calls = json::array();
    const json* content = field(response, "content");
    for (std::size_t i = 0; content != nullptr && content->is_array() && i < content->size(); ++i) {
        const json& block = (*content)[i];
        const std::string type = string_field(block, "type");
        if (type == "text") {
            has_text = true;
            text += string_field(block, "text");
        } else if (type == "thinking") {
            reasoning += string_field(block, "thinking");
        } else if (type == "tool_use") {
            tool_calls.push_back(openai_tool_call(block));
        }
    }
    json message = {{"role", "assistant"},
                    {"content", has_text ? json(text) : json(nullptr)},
                    {"refusal", nullptr}};
    if (!tool_calls.empty()) {
        message["tool_calls"] = std::move(tool_calls);
    }
    if (!reasoning.empty()) {
        message["reasoning_content"] = reasoning;
    }
    anthropic_usage_tally u;
    if (const json* reported = field(response, "usage")) {
        u.add(*reported);
    }
    usage = u.known() ? usage_info::from(u.tokens()) : usage_info{};
    return {
        {"id", id},
        {"object", "chat.completion"},
        {"created", created},
        {"model", model},
        {"choices",
         json::array({{{"index", 0},
                       {"message", std::move(message)},
                       {"logprobs", nullptr},
                       {"finish_reason", openai_finish(string_field(response, "stop_reason"))}}})},
        {"usage", openai_chat_usage_json(u.tokens())}};
}

std::unique_ptr<chunk_translator> make_stream(std::string id, std::string model,
                                              std::int64_t created, bool include_usage) {
    return std::make_unique<stream_translator>(std::move(id), std::move(model), created,
                                               include_usage);
}

nlohmann::json error_to_openai(unsigned status, std::string_view body) {
    const json parsed = json_parse::parse_value(body);
    const json* err = field(parsed, "error");
    std::string type = err != nullptr ? string_field(*err, "type") : std::string();
    std::string message = err == nullptr     ? clean_text(body, 1000)
                          : err->is_string() ? err->get<std::string>()
                                             : string_field(*err, "message");
    if (type.empty()) {
        type = error_type_for(status);
    }
    if (message.empty()) {
        message = "upstream error (HTTP " + std::to_string(status) + ")";
    }
    return {{"error", {{"message", message}, {"type", type}, {"code", type}, {"param", nullptr}}}};
}

} // namespace michi::providers::anthropic
