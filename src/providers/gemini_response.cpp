// Google Gemini answers and stream events -> OpenAI Chat Completions.

#include "michi/providers/gemini.hpp"
#include "michi/core/json_parse.hpp"

#include "gemini_detail.hpp"
#include "michi/providers/usage.hpp"

#include <array>
#include <cctype>
#include <map>

namespace michi::providers::gemini {
namespace {

using detail::count_at;
using detail::dump;
using detail::find;
using detail::json;
using detail::lower;
using detail::single;
using detail::string_at;
using translate_util::clean_text;

// ---- Gemini response -> OpenAI response ----

std::string finish_reason(std::string_view reason) {
    if (reason == "MAX_TOKENS") {
        return "length";
    }
    static constexpr std::array<std::string_view, 6> filtered{
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};
    return std::find(filtered.begin(), filtered.end(), reason) != filtered.end() ? "content_filter"
                                                                                 : "stop";
}

// What one candidate said: its visible text (thoughts skipped) and its function calls.
struct candidate_output {
    std::string text;
    bool has_text = false;
    std::vector<const json*> calls;
};

candidate_output read_candidate(const json& candidate) {
    candidate_output out;
    const json* content = find(candidate, "content");
    const json* parts = content != nullptr ? find(*content, "parts") : nullptr;
    if (parts == nullptr || !parts->is_array()) {
        return out;
    }
    for (const json& part : *parts) {
        const json* thought = find(part, "thought");
        if (const json* text = find(part, "text"); text && text->is_string()) {
            if (thought == nullptr || thought->is_null() || *thought == false) {
                out.text += text->get_ref<const std::string&>();
                out.has_text = true;
            }
        } else if (const json* call = find(part, "functionCall"); call && call->is_object()) {
            out.calls.push_back(call);
        }
    }
    return out;
}

json tool_call(std::size_t n, const json& call) {
    const json* args = find(call, "args");
    return {{"id", "call_" + std::to_string(n)},
            {"type", "function"},
            {"function",
             {{"name", string_at(call, "name")},
              {"arguments", args != nullptr && !args->is_null() ? dump(*args) : "{}"}}}};
}

// OpenAI usage from usageMetadata; fills usage.
json openai_usage(const json& meta, usage_info& usage) {
    const token_usage tokens = read_gemini_usage(meta).value_or(token_usage{});
    usage = usage_info::from(tokens);
    return openai_chat_usage_json(tokens);
}

bool prompt_blocked(const json& response) {
    const json* feedback = find(response, "promptFeedback");
    return feedback != nullptr && !string_at(*feedback, "blockReason").empty();
}

json completion(const json& response, const std::string& model, const std::string& id,
                std::int64_t created, usage_info& usage) {
    usage = usage_info{};
    json choices = json::array();
    std::size_t call_n = 0;
    const json* candidates = find(response, "candidates");
    if (candidates != nullptr && candidates->is_array()) {
        for (const json& candidate : *candidates) {
            const candidate_output out = read_candidate(candidate);
            std::string finish = finish_reason(string_at(candidate, "finishReason"));
            json message = {{"role", "assistant"}, {"content", nullptr}};
            if (!out.calls.empty()) {
                json calls = json::array();
                for (const json* call : out.calls) {
                    calls.push_back(tool_call(call_n++, *call));
                }
                message["tool_calls"] = std::move(calls);
                finish = finish == "stop" ? "tool_calls" : finish;
            }
            if (out.has_text || (out.calls.empty() && finish != "content_filter")) {
                message["content"] = out.text;
            }
            choices.push_back({{"index", choices.size()},
                               {"message", std::move(message)},
                               {"logprobs", nullptr},
                               {"finish_reason", finish}});
        }
    }
    if (choices.empty()) {
        const bool blocked = prompt_blocked(response);
        json message = {{"role", "assistant"}, {"content", blocked ? json() : json("")}};
        choices.push_back({{"index", 0},
                           {"message", std::move(message)},
                           {"logprobs", nullptr},
                           {"finish_reason", blocked ? "content_filter" : "stop"}});
    }
    json out = {{"id", id},
                {"object", "chat.completion"},
                {"created", created},
                {"model", model},
                {"choices", std::move(choices)}};
    if (const json* meta = find(response, "usageMetadata"); meta && meta->is_object()) {
        out["usage"] = openai_usage(*meta, usage);
    }
    return out;
}

// ---- Gemini stream -> OpenAI chunks ----

std::string error_text(const json& error) {
    if (error.is_string()) {
        return error.get<std::string>();
    }
    std::string message = string_at(error, "message");
    if (message.empty()) {
        message = clean_text(dump(error), 1000);
    }
    const std::string status = string_at(error, "status");
    return status.empty() ? message : status + ": " + message;
}

class stream_translator final : public translate_util::openai_chunk_stream {
public:
    using openai_chunk_stream::openai_chunk_stream;

    bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) override {
        try {
            return handle(ev, out);
        } catch (const std::exception&) {
            error_ = "the Gemini stream could not be translated";
            return false;
        }
    }

    bool finished() const override {
        bool any = false;
        for (const candidate_state& c : candidates_) {
            if (c.seen && !c.finished) {
                return false;
            }
            any = any || c.seen;
        }
        return any;
    }

    const usage_info& usage() const override { return usage_; }
    std::string error_message() const override { return error_; }

private:
    // Streams with more candidates than this (candidateCount) keep only the first ones.
    static constexpr std::size_t max_candidates = 8;

    struct candidate_state {
        bool seen = false;
        bool role_sent = false;
        bool finished = false;
        std::size_t calls = 0;
    };

    bool handle(const stream::sse_event& ev, std::vector<std::string>& out) {
        if (ev.data.find_first_not_of(" \t\r\n") == std::string::npos || ev.data == "[DONE]") {
            return true; // keep-alives, and the OpenAI-style end some proxies add
        }
        const json event = json_parse::parse_value(ev.data);
        if (!event.is_object()) {
            error_ = "Gemini sent a stream event that is not a JSON object";
            return false;
        }
        if (const json* error = find(event, "error"); error && !error->is_null()) {
            error_ = error_text(*error);
            return false;
        }
        if (const json* meta = find(event, "usageMetadata"); meta && meta->is_object()) {
            usage_json_ = openai_usage(*meta, usage_);
        }
        const json* candidates = find(event, "candidates");
        if (candidates != nullptr && candidates->is_array() && !candidates->empty()) {
            for (const json& candidate : *candidates) {
                on_candidate(candidate, out);
            }
        } else if (prompt_blocked(event)) {
            candidates_[0].seen = true;
            finish(0, "content_filter", out);
        }
        if (include_usage_ && !usage_sent_ && usage_.known && finished()) {
            usage_sent_ = true;
            json chunk = base_chunk();
            chunk["choices"] = json::array();
            chunk["usage"] = usage_json_;
            out.push_back(dump(chunk));
        }
        return true;
    }

    void on_candidate(const json& candidate, std::vector<std::string>& out) {
        const std::uint64_t index = count_at(candidate, "index");
        if (index >= max_candidates) {
            return;
        }
        candidate_state& state = candidates_[index];
        state.seen = true;
        const candidate_output said = read_candidate(candidate);
        json delta = json::object();
        if (!said.text.empty()) {
            delta["content"] = said.text;
        }
        if (!said.calls.empty()) {
            json calls = json::array();
            for (const json* call : said.calls) {
                json c = tool_call(next_call_++, *call);
                c["index"] = state.calls++;
                calls.push_back(std::move(c));
            }
            delta["tool_calls"] = std::move(calls);
        }
        if (!delta.empty()) {
            emit(index, std::move(delta), nullptr, out);
        }
        const std::string reason = string_at(candidate, "finishReason");
        if (!reason.empty() && reason != "FINISH_REASON_UNSPECIFIED") {
            const std::string mapped = finish_reason(reason);
            finish(index, mapped == "stop" && state.calls != 0 ? "tool_calls" : mapped, out);
        }
    }

    void finish(std::size_t index, const std::string& reason, std::vector<std::string>& out) {
        if (!candidates_[index].finished) {
            candidates_[index].finished = true;
            emit(index, json::object(), reason, out);
        }
    }

    void emit(std::size_t index, json delta, json reason, std::vector<std::string>& out) {
        if (!candidates_[index].role_sent) {
            candidates_[index].role_sent = true;
            delta["role"] = "assistant";
        }
        json chunk = base_chunk();
        chunk["choices"] = json::array({{{"index", index},
                                         {"delta", std::move(delta)},
                                         {"logprobs", nullptr},
                                         {"finish_reason", std::move(reason)}}});
        out.push_back(dump(chunk));
    }

    bool usage_sent_ = false;
    std::size_t next_call_ = 0;
    std::array<candidate_state, max_candidates> candidates_{};
    usage_info usage_;
    json usage_json_;
    std::string error_;
};

} // namespace

nlohmann::json to_openai(const nlohmann::json& response, const std::string& model,
                         const std::string& id, std::int64_t created, usage_info& usage) {
    try {
        return completion(response, model, id, created, usage);
    } catch (const std::exception&) {
        return completion(json::object(), model, id, created, usage);
    }
}

std::unique_ptr<chunk_translator> make_stream(std::string id, std::string model,
                                              std::int64_t created, bool include_usage) {
    return std::make_unique<stream_translator>(std::move(id), std::move(model), created,
                                               include_usage);
}

nlohmann::json error_to_openai(unsigned status, std::string_view body) {
    std::string message;
    std::string code;
    try {
        json parsed = json_parse::parse_value(body);
        if (parsed.is_array() && !parsed.empty()) {
            parsed = json(parsed[0]); // the JSON-array framing of a stream
        }
        if (const json* error = find(parsed, "error"); error && !error->is_null()) {
            message = error->is_string() ? error->get<std::string>() : string_at(*error, "message");
            code = lower(string_at(*error, "status"));
        }
        if (message.empty()) {
            message = clean_text(body, 1000);
        }
    } catch (const std::exception&) {
        message.clear();
    }
    if (message.empty()) {
        message = "Gemini returned HTTP " + std::to_string(status);
    }
    const bool client = status >= 400 && status < 500;
    return single("error", {{"message", message},
                            {"type", client ? "invalid_request_error" : "api_error"},
                            {"param", nullptr},
                            {"code", code.empty() ? json() : json(code)}});
}

} // namespace michi::providers::gemini
