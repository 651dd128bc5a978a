// The Responses API's streams: pivot chat.completion.chunk payloads -> OpenAI's stream events.
//
// One output item is open at a time, in the order the answer gives them (reasoning, text,
// each tool call); the next one closes it, as OpenAI's own streams do: a tool call's fragments
// that come after another item started (no known provider interleaves them) still reach the
// response in response.completed. Every event carries its sequence_number; item ids derive
// from the response id (msg_/fc_/rs_<id>_<output index>), call ids are the provider's (made
// unique when it repeats or leaves them out).

#include "michi/surface/responses.hpp"

#include "michi/providers/request_head.hpp"
#include "michi/providers/usage.hpp"
#include "michi/stream/sse.hpp"
#include "responses_detail.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

namespace michi::surface::responses {
namespace {

using namespace detail;

enum class kind { reasoning, message, function };

// One part of a message item: output text or a refusal.
struct part {
    bool refusal = false;
    std::string text;
};

// One output item as streamed so far.
struct item {
    kind k = kind::message;
    std::string id;
    std::string text;        // reasoning: the summary text
    std::vector<part> parts; // message
    bool part_open = false;  // message: its last part still takes deltas
    std::string call_id;     // function call
    std::string name;
    std::string arguments;
    std::string status = "in_progress";
};

json part_json(const part& p) {
    if (p.refusal) {
        return {{"type", "refusal"}, {"refusal", p.text}};
    }
    return {{"type", "output_text"},
            {"text", p.text},
            {"annotations", json::array()},
            {"logprobs", json::array()}};
}

json item_json(const item& it, const namespace_map& namespaces) {
    switch (it.k) {
    case kind::reasoning: {
        json summary = json::array();
        if (!it.text.empty()) {
            summary.push_back({{"type", "summary_text"}, {"text", it.text}});
        }
        return {{"id", it.id}, {"type", "reasoning"}, {"summary", std::move(summary)}};
    }
    case kind::message: {
        json content = json::array();
        for (const part& p : it.parts) {
            content.push_back(part_json(p));
        }
        return {{"id", it.id},
                {"type", "message"},
                {"status", it.status},
                {"role", "assistant"},
                {"content", std::move(content)}};
    }
    case kind::function: break;
    }
    return function_call_item(it.id, it.call_id, it.name, it.arguments, it.status, namespaces);
}

// Appends one event, numbered from `seq`, of its JSON members `fields` ("a":1,"b":2, or
// empty): type and sequence_number first, as OpenAI's are.
void emit_fields(std::string& out, std::uint64_t& seq, std::string_view type,
                 std::string_view fields) {
    std::string event = "{\"type\":\"";
    event.append(type).append("\",\"sequence_number\":").append(std::to_string(seq++));
    if (!fields.empty()) {
        event.append(",").append(fields);
    }
    event.append("}");
    out += stream::format_sse(event, type);
}

void emit(std::string& out, std::uint64_t& seq, std::string_view type, const json& data) {
    const std::string fields = dump(data); // "{...}", an object
    emit_fields(out, seq, type,
                std::string_view(fields).substr(1, fields.size() >= 2 ? fields.size() - 2 : 0));
}

// A delta event, the most frequent kind (one per upstream delta), written without a JSON
// value of its own: its members in the order the other events' are (sorted).
void emit_delta(std::string& out, std::uint64_t& seq, std::string_view type,
                std::optional<std::size_t> content_index, std::string_view delta,
                std::string_view item_id, bool logprobs, std::size_t output_index,
                std::optional<std::size_t> summary_index = std::nullopt) {
    std::string fields;
    fields.reserve(delta.size() + item_id.size() + 96);
    if (content_index) {
        fields.append("\"content_index\":").append(std::to_string(*content_index)).append(",");
    }
    fields.append("\"delta\":");
    providers::append_json_string(fields, delta);
    fields.append(",\"item_id\":");
    providers::append_json_string(fields, item_id);
    if (logprobs) {
        fields.append(",\"logprobs\":[]");
    }
    fields.append(",\"output_index\":").append(std::to_string(output_index));
    if (summary_index) {
        fields.append(",\"summary_index\":").append(std::to_string(*summary_index));
    }
    emit_fields(out, seq, type, fields);
}

} // namespace

struct stream_writer::state {
    std::string id;
    std::string suffix;
    // The response's members but those a lifecycle event sets (error, incomplete_details,
    // output, status, usage), each written once as `"key":value` in the order a whole
    // response's dump has them (sorted), and where each of the five goes: a lifecycle event
    // joins them without copying or writing again what the request echoes (its tools).
    std::vector<std::pair<std::string, std::string>> members;
    namespace_map namespaces;
    std::vector<item> items;
    std::optional<std::size_t> open;            // the item taking deltas
    std::map<std::uint64_t, std::size_t> calls; // chat tool_calls index -> item
    std::set<std::string, std::less<>> call_ids;
    std::uint64_t seq = 0;
    bool started = false;
    bool finished = false;
    std::string finish_reason;
    std::optional<token_usage> usage;

    void set_envelope(const json& envelope) {
        members.reserve(envelope.size());
        for (const auto& [key, value] : envelope.items()) {
            members.emplace_back(key, dump(value));
        }
    }

    json output() const {
        json out = json::array();
        for (const item& it : items) {
            out.push_back(item_json(it, namespaces));
        }
        return out;
    }

    // A lifecycle event's response: the envelope with its status, and (with_output) the
    // output and usage so far; error and incomplete_details when given.
    std::string response(std::string_view status, bool with_output, const json& error = nullptr,
                         const json& incomplete = nullptr) const {
        std::string r = "{";
        for (const auto& [key, text] : members) {
            if (r.size() > 1) {
                r.push_back(',');
            }
            r.append("\"").append(key).append("\":");
            if (key == "status") {
                providers::append_json_string(r, status);
            } else if (key == "output") {
                r.append(with_output ? dump(output()) : "[]");
            } else if (key == "usage") {
                r.append(with_output && usage ? dump(usage_json(*usage)) : "null");
            } else if (key == "error") {
                r.append(dump(error));
            } else if (key == "incomplete_details") {
                r.append(dump(incomplete));
            } else {
                r.append(text);
            }
        }
        r.append("}");
        return r;
    }

    void start(std::string& out) {
        if (started) {
            return;
        }
        started = true;
        // The same response in both events: written once.
        const std::string fields = "\"response\":" + response("in_progress", false);
        emit_fields(out, seq, "response.created", fields);
        emit_fields(out, seq, "response.in_progress", fields);
    }

    // Adds an item and announces it.
    item& add(std::string& out, kind k, const char* prefix) {
        close(out, "completed");
        const std::size_t index = items.size();
        items.push_back({});
        item& it = items.back();
        it.k = k;
        it.id = item_id(prefix, suffix, index);
        open = index;
        return it;
    }

    void announce(std::string& out, std::size_t index) {
        emit(out, seq, "response.output_item.added",
             {{"output_index", index}, {"item", item_json(items[index], namespaces)}});
    }

    json at_item(std::size_t index) const {
        return {{"item_id", items[index].id}, {"output_index", index}};
    }

    void close_part(std::string& out, std::size_t index) {
        item& it = items[index];
        if (!it.part_open) {
            return;
        }
        it.part_open = false;
        const std::size_t content_index = it.parts.size() - 1;
        const part& p = it.parts.back();
        json done = at_item(index);
        done["content_index"] = content_index;
        if (p.refusal) {
            done["refusal"] = p.text;
            emit(out, seq, "response.refusal.done", done);
        } else {
            done["text"] = p.text;
            done["logprobs"] = json::array();
            emit(out, seq, "response.output_text.done", done);
        }
        json part_done = at_item(index);
        part_done["content_index"] = content_index;
        part_done["part"] = part_json(p);
        emit(out, seq, "response.content_part.done", std::move(part_done));
    }

    // Closes the open item with `status`.
    void close(std::string& out, std::string_view status) {
        if (!open) {
            return;
        }
        const std::size_t index = *open;
        open.reset();
        item& it = items[index];
        it.status = status;
        if (it.k == kind::reasoning) {
            json done = at_item(index);
            done["summary_index"] = 0;
            done["text"] = it.text;
            emit(out, seq, "response.reasoning_summary_text.done", done);
            done.erase("text");
            done["part"] = {{"type", "summary_text"}, {"text", it.text}};
            emit(out, seq, "response.reasoning_summary_part.done", std::move(done));
        } else if (it.k == kind::message) {
            close_part(out, index);
        } else {
            json done = at_item(index);
            done["arguments"] = it.arguments;
            emit(out, seq, "response.function_call_arguments.done", std::move(done));
        }
        emit(out, seq, "response.output_item.done",
             {{"output_index", index}, {"item", item_json(it, namespaces)}});
    }

    void on_reasoning(std::string& out, const std::string& delta) {
        if (!open || items[*open].k != kind::reasoning) {
            add(out, kind::reasoning, "rs");
            announce(out, *open);
            json added = at_item(*open);
            added["summary_index"] = 0;
            added["part"] = {{"type", "summary_text"}, {"text", ""}};
            emit(out, seq, "response.reasoning_summary_part.added", std::move(added));
        }
        items[*open].text += delta;
        emit_delta(out, seq, "response.reasoning_summary_text.delta", std::nullopt, delta,
                   items[*open].id, false, *open, 0);
    }

    void on_text(std::string& out, const std::string& delta, bool refusal) {
        if (!open || items[*open].k != kind::message) {
            add(out, kind::message, "msg");
            announce(out, *open);
        }
        const std::size_t index = *open;
        item& it = items[index];
        if (!it.part_open || it.parts.back().refusal != refusal) {
            close_part(out, index);
            it.parts.push_back({refusal, ""});
            it.part_open = true;
            json added = at_item(index);
            added["content_index"] = it.parts.size() - 1;
            added["part"] = part_json(it.parts.back());
            emit(out, seq, "response.content_part.added", std::move(added));
        }
        if (delta.empty()) {
            return;
        }
        it.parts.back().text += delta;
        emit_delta(out, seq, refusal ? "response.refusal.delta" : "response.output_text.delta",
                   it.parts.size() - 1, delta, it.id, !refusal, index);
    }

    void on_tool_call(std::string& out, const json& call, std::size_t position) {
        const std::uint64_t key = uint_field(call, "index").value_or(position);
        const json* fn = field(call, "function");
        const std::string name = fn != nullptr ? string_field(*fn, "name") : "";
        const std::string args = fn != nullptr ? string_field(*fn, "arguments") : "";
        auto found = calls.find(key);
        if (found == calls.end()) {
            item& it = add(out, kind::function, "fc");
            it.call_id = string_field(call, "id");
            if (it.call_id.empty() || call_ids.count(it.call_id) != 0) {
                it.call_id = item_id("call", suffix, *open);
            }
            call_ids.insert(it.call_id);
            it.name = name;
            found = calls.emplace(key, *open).first;
            announce(out, *open);
        }
        item& it = items[found->second];
        if (it.name.empty()) {
            it.name = name;
        }
        if (args.empty()) {
            return;
        }
        it.arguments += args;
        if (open == found->second) {
            emit_delta(out, seq, "response.function_call_arguments.delta", std::nullopt, args,
                       it.id, false, found->second);
        }
    }

    void on_chunk(const json& chunk, std::string& out) {
        start(out);
        if (const json* u = field(chunk, "usage")) {
            if (const auto tokens = providers::read_openai_chat_usage(*u)) {
                usage = *tokens;
            }
        }
        const json* choices = field(chunk, "choices");
        for (std::size_t i = 0; choices != nullptr && choices->is_array() && i < choices->size();
             ++i) {
            const json& choice = (*choices)[i];
            if (uint_field(choice, "index").value_or(0) != 0) {
                continue; // the Responses API answers once: the first choice only
            }
            const json* d = field(choice, "delta");
            if (d != nullptr) {
                if (const std::string r = reasoning_text(*d); !r.empty()) {
                    on_reasoning(out, r);
                }
                if (const std::string t = string_field(*d, "content"); !t.empty()) {
                    on_text(out, t, false);
                }
                if (const std::string t = string_field(*d, "refusal"); !t.empty()) {
                    on_text(out, t, true);
                }
                const json* calls_delta = field(*d, "tool_calls");
                for (std::size_t j = 0;
                     calls_delta != nullptr && calls_delta->is_array() && j < calls_delta->size();
                     ++j) {
                    on_tool_call(out, (*calls_delta)[j], j);
                }
            }
            if (std::string f = string_field(choice, "finish_reason"); !f.empty()) {
                finish_reason = std::move(f);
            }
        }
    }

    void finish(std::string& out) {
        if (finished) {
            return;
        }
        start(out);
        const std::string_view status = status_of(finish_reason);
        const bool answered = std::any_of(items.begin(), items.end(),
                                          [](const item& it) { return it.k != kind::reasoning; });
        if (!answered) {
            // An answer without text or calls is an empty message, as in a whole answer.
            on_text(out, "", false);
        }
        close(out, status);
        finished = true;
        emit_fields(out, seq, status == "completed" ? "response.completed" : "response.incomplete",
                    "\"response\":" +
                        response(status, true, nullptr, incomplete_details(finish_reason)));
    }
};

stream_writer::stream_writer(std::string response_id, std::string model,
                             const nlohmann::json& request, std::int64_t created)
    : s_(std::make_unique<state>()) {
    s_->suffix = id_suffix(response_id);
    s_->set_envelope(envelope(request, model, response_id, created));
    s_->namespaces = namespaces_of(request);
    s_->id = std::move(response_id);
}

stream_writer::~stream_writer() = default;
stream_writer::stream_writer(stream_writer&&) noexcept = default;
stream_writer& stream_writer::operator=(stream_writer&&) noexcept = default;

void stream_writer::on_chunk(const nlohmann::json& pivot_chunk, std::string& out) {
    if (!s_->finished) {
        s_->on_chunk(pivot_chunk, out);
    }
}

void stream_writer::finish(std::string& out) { s_->finish(out); }

std::string stream_writer::failed_event(std::string_view message) const {
    std::string out;
    std::uint64_t seq = s_->seq;
    if (!s_->started) {
        const std::string fields = "\"response\":" + s_->response("in_progress", false);
        emit_fields(out, seq, "response.created", fields);
        emit_fields(out, seq, "response.in_progress", fields);
    }
    const json error = {{"code", "server_error"}, {"message", std::string(message)}};
    emit_fields(out, seq, "response.failed", "\"response\":" + s_->response("failed", true, error));
    return out;
}

std::string stream_writer::error_event(std::string_view message, std::uint64_t sequence_number) {
    std::string out;
    emit(out, sequence_number, "error",
         {{"code", "server_error"}, {"message", std::string(message)}, {"param", nullptr}});
    return out;
}

} // namespace michi::surface::responses
