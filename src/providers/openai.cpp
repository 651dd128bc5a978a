#include "michi/providers/openai.hpp"

#include "michi/core/json_scan.hpp"
#include "michi/providers/request_head.hpp"
#include "michi/providers/usage.hpp"
#include "openai_detail.hpp"


namespace michi::providers::openai {
namespace detail {
namespace {

// Index of an API's prepared head in binding::heads.
std::size_t head_index(api_kind api) noexcept {
    return api == api_kind::embeddings ? 1 : 0;
}

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Into out: the client's own bytes with only the model's value replaced and, for a stream
// that does not ask for usage yet, "stream_options":{"include_usage":true} put in first: no
// copy and re-serialisation of the parsed body. False, out left empty, when the body needs
// the full path: a duplicated or escaped key (the upstream might read a different "model"
// than admission did), stream_options set without usage.
bool splice_body(const request_view& r, const std::string& upstream_model, std::string& out) {
    out.clear();
    const bool add_usage_option = r.stream && !r.wants_usage;
    if (add_usage_option && r.has_stream_options) {
        return false; // other stream options: merged by the full path
    }
    const std::string_view raw = r.raw_body;
    std::size_t model_begin = r.model_begin;
    std::size_t model_end = r.model_end;
    if (model_end == 0) { // the body was parsed, not scanned: find the model's bytes
        const auto model = json_scan::find_unique(raw, "model");
        if (!model) {
            return false;
        }
        model_begin = static_cast<std::size_t>(model->data() - raw.data());
        model_end = model_begin + model->size();
    }
    constexpr std::string_view usage_option = R"("stream_options":{"include_usage":true},)";
    out.reserve(raw.size() + upstream_model.size() + 2 + usage_option.size());
    std::size_t from = 0;
    if (add_usage_option) {
        const std::size_t open = raw.find('{') + 1; // the object has a member: "model"
        out.append(raw.substr(0, open));
        out.append(usage_option);
        from = open;
    }
    out.append(raw.substr(from, model_begin - from));
    append_json_string(out, upstream_model);
    out.append(raw.substr(model_end));
    return true;
}

bool is_usage_only_chunk(std::string_view data) {
    return json_scan::find_text(data, "\"usage\":{") != std::string_view::npos &&
           json_scan::find_text(data, "\"choices\":[]") != std::string_view::npos;
}

// OpenAI-type upstream events as the pivot form: passes chunks on, ends at [DONE], notes
// usage.
class pivot_stream final : public chunk_translator {
public:
    explicit pivot_stream(bool keep_usage_chunk) : keep_usage_(keep_usage_chunk) {}

    bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) override {
        if (ev.data == "[DONE]") {
            finished_ = true;
            return true;
        }
        if (json_scan::find_text(ev.data, "\"usage\"") != std::string::npos) {
            const auto j = nlohmann::json::parse(ev.data, nullptr, false);
            const auto usage = j.is_object() ? j.find("usage") : j.end();
            if (j.is_object() && usage != j.end()) {
                if (const auto u = read_openai_chat_usage(*usage)) {
                    usage_ = usage_info::from(*u);
                    if (!keep_usage_ && is_usage_only_chunk(ev.data)) {
                        return true;
                    }
                }
            }
        }
        if (ev.data.find("\"error\"") != std::string::npos) {
            const auto j = nlohmann::json::parse(ev.data, nullptr, false);
            if (j.is_object() && j.contains("error")) {
                error_ = dump(j["error"]);
                return false;
            }
        }
        out.push_back(ev.data);
        return true;
    }
    bool finished() const override { return finished_; }
    const usage_info& usage() const override { return usage_; }
    std::string error_message() const override { return error_; }

private:
    bool keep_usage_;
    bool finished_ = false;
    usage_info usage_;
    std::string error_;
};

const openai_type openai_instance;

} // namespace

std::string_view operation(api_kind api) noexcept {
    return api == api_kind::embeddings ? "embeddings" : "chat/completions";
}

bool openai_type::needs_parsed_body(const request_view& r) const {
    // Another API's request goes in pivot form; stream options the client set are merged.
    return !passthrough(r.api) || (r.stream && !r.wants_usage && r.has_stream_options);
}

void openai_type::prepare(binding& b) const {
    // "POST <base>/<op>", Host, Authorization, Content-Type, User-Agent and the configured
    // headers: the same for every request to that operation, built once per snapshot.
    const auto& p = *b.config;
    for (const api_kind api : {api_kind::chat, api_kind::embeddings}) {
        std::string target = b.endpoint->base_path;
        target.append("/").append(operation(api));
        field_list fields(*b.endpoint);
        if (!p.api_key.empty()) {
            fields.set("Authorization", "Bearer " + p.api_key.reveal());
        }
        auto& head = b.heads[head_index(api)];
        head.clear();
        head_prefix(head, p, target, std::move(fields));
    }
}

void openai_type::rewrite_body(const request_view& r, const std::string* upstream_model,
                               outgoing_request& out) {
    nlohmann::json body = r.parsed != nullptr ? *r.parsed : nlohmann::json::object();
    if (upstream_model != nullptr) {
        body["model"] = *upstream_model;
    } else {
        body.erase("model");
    }
    if (r.stream) {
        // Ask for the usage chunk so streams are charged exactly; the relay drops it again
        // when the client did not ask for it.
        body["stream_options"]["include_usage"] = true;
    }
    out.body = dump(body);
}

result<void> openai_type::build(const binding& b, const config::model_config& model,
                                const request_view& r, outgoing_request& out) const {
    const std::string& prefix = b.heads[head_index(r.api == api_kind::embeddings
                                                       ? api_kind::embeddings
                                                       : api_kind::chat)];
    // Room for the Content-Length line and the blank line too: one allocation.
    out.head.reserve(prefix.size() + 40);
    out.head.append(prefix);
    if (!passthrough(r.api) || !splice_body(r, model.upstream, out.body)) {
        rewrite_body(r, &model.upstream, out);
    }
    finish_head(out.head, out.body.size());
    return ok();
}

bool openai_type::usage_of_body(std::string_view body, usage_info& u) const {
    const auto usage = json_scan::find_unique(body, "usage");
    return usage && read_usage(*usage, u);
}

bool openai_type::inspect_event(std::string_view data, usage_info& u) const {
    if (json_scan::find_text(data, "\"usage\"") == std::string_view::npos) {
        return false;
    }
    const auto usage = json_scan::find_unique(data, "usage");
    return usage && read_usage(*usage, u) && is_usage_only_chunk(data);
}

std::optional<nlohmann::json> openai_type::to_pivot(api_kind, const nlohmann::json& body,
                                                    const std::string&, const std::string&,
                                                    usage_info& u) const {
    if (!body.is_object()) {
        return std::nullopt;
    }
    if (const auto it = body.find("usage"); it != body.end()) {
        if (const auto read = read_openai_chat_usage(*it)) {
            u = usage_info::from(*read);
        }
    }
    return body;
}

nlohmann::json openai_type::error_to_pivot(unsigned, std::string_view body) const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        return j;
    }
    return {{"error", {{"message", std::string(body)}, {"type", "api_error"}}}};
}

std::unique_ptr<chunk_translator> openai_type::stream_to_pivot(std::string, std::string,
                                                               bool include_usage) const {
    return make_pivot_stream(include_usage);
}

} // namespace detail

std::size_t content_chars(std::string_view text) noexcept {
    constexpr std::string_view key = "\"content\":\"";
    std::size_t chars = 0;
    std::size_t pos = 0;
    while ((pos = json_scan::find_text(text, key, pos)) != std::string_view::npos) {
        pos += key.size();
        while (pos < text.size() && text[pos] != '"') {
            if (text[pos] == '\\') {
                ++pos; // an escape counts as one character
            }
            // Count UTF-8 lead bytes only, so a multi-byte character counts once.
            if (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) {
                ++chars;
            }
            ++pos;
        }
    }
    return chars;
}

bool read_usage(std::string_view usage, usage_info& u) noexcept {
    const auto read = read_openai_chat_usage(usage);
    if (read) {
        u = usage_info::from(*read);
    }
    return read.has_value();
}

std::unique_ptr<chunk_translator> make_pivot_stream(bool include_usage) {
    return std::make_unique<detail::pivot_stream>(include_usage);
}

const adapter& openai_adapter() noexcept { return detail::openai_instance; }

} // namespace michi::providers::openai
