#include "upstream_request.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/core/json_scan.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/gemini.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace michi::pipeline {
namespace {

using config::provider_type;

// Upstream heads and bodies of finished requests, kept by the thread that built them (a
// worker's) for the next ones: the two strings of a request then need no allocation. A few
// are kept, none larger than a usual body.
constexpr std::size_t spare_count = 32;
constexpr std::size_t spare_room = 64 * 1024;
thread_local std::vector<std::string> spare_strings;

std::string spare_string() {
    if (spare_strings.empty()) {
        return {};
    }
    std::string s = std::move(spare_strings.back());
    spare_strings.pop_back();
    return s;
}

// The fields of one upstream request, set by name as Beast's fields would (a later set of
// the same name, in any case, replaces the earlier), without building a Beast field set:
// the head is written out once, straight from here. Host comes first, the endpoint's.
class field_list {
public:
    explicit field_list(const endpoint& ep) {
        fields_.reserve(6);
        const bool default_port = ep.port == (ep.tls ? "443" : "80");
        set("Host", default_port ? ep.host : ep.host + ":" + ep.port);
    }
    void set(std::string_view name, std::string value) {
        for (auto& [n, v] : fields_) {
            if (beast::iequals(n, name)) {
                v = std::move(value);
                return;
            }
        }
        fields_.emplace_back(std::string(name), std::move(value));
    }
    const auto& fields() const { return fields_; }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

// "POST target HTTP/1.1", Host and the request's own fields, Content-Type and User-Agent,
// the provider's configured headers (which override any of these but the framing): the
// head up to its Content-Length (see finish_head).
std::string head_prefix(const config::provider_config& p, std::string_view target,
                        field_list&& own) {
    own.set("Content-Type", "application/json");
    own.set("User-Agent", "michi/" MICHI_VERSION);
    for (const auto& [name, value] : p.headers) {
        // The body's framing is Michi's own: a configured one would contradict it.
        if (!beast::iequals(name, "content-length") &&
            !beast::iequals(name, "transfer-encoding")) {
            own.set(name, value);
        }
    }
    std::string out;
    out.reserve(160 + target.size());
    out.append("POST ");
    out.append(target);
    out.append(" HTTP/1.1\r\n");
    for (const auto& [name, value] : own.fields()) {
        wire::append_field(out, name, value);
    }
    return out;
}

// Ends a head: Content-Length and the blank line.
void finish_head(std::string& head, std::size_t body_size) {
    wire::append_field(head, "Content-Length", std::uint64_t{body_size});
    head.append(wire::crlf);
}

std::string request_head(const candidate& c, std::string_view target, field_list&& own,
                         std::size_t body_size) {
    auto head = head_prefix(*c.provider, target, std::move(own));
    finish_head(head, body_size);
    return head;
}

// Appends the JSON string literal of s: a model name needs no escapes as a rule, and is
// then only quoted; anything else is escaped by the JSON library.
void append_json_string(std::string& out, std::string_view s) {
    const bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        return static_cast<unsigned char>(ch) >= 0x20 && ch != '"' && ch != '\\';
    });
    if (!plain) {
        out.append(
            nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        return;
    }
    out.push_back('"');
    out.append(s);
    out.push_back('"');
}

// Into out (emptied first): the client's own bytes with only the model's value replaced,
// and for a stream that does not ask for usage yet, "stream_options":{"include_usage":true}
// put in first: no copy and re-serialisation of the parsed body. False, out left empty, when
// the body needs the full path: an Anthropic-dialect request, a duplicated or escaped key
// (the upstream might read a different "model" than admission did), stream_options set
// without usage.
bool splice_openai_body(const request_context& ctx, const std::string& upstream_model,
                        std::string& out) {
    out.clear();
    if (ctx.out != dialect::openai) {
        return false;
    }
    const bool add_usage_option = ctx.log.stream && !ctx.wants_usage;
    if (add_usage_option && ctx.facts.has_stream_options) {
        return false; // other stream options: merged by the full path
    }
    const std::string_view raw = ctx.req.body();
    std::size_t model_begin = ctx.facts.model_begin;
    std::size_t model_end = ctx.facts.model_end;
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

// OpenAI and Azure: the client's body with the model rewritten (Azure names the
// deployment in the path instead); streams ask for usage.
prepared_request openai_style(const candidate& c, const request_context& ctx) {
    prepared_request out;
    const auto& p = *c.provider;
    const std::string_view op = ctx.api == api_kind::chat ? "chat/completions" : "embeddings";
    const bool azure = p.type == provider_type::azure;
    // The head up to Content-Length. Azure: the deployment and API version in the target,
    // its own key field. Others: ready with the runtime snapshot.
    std::string head = spare_string();
    if (azure) {
        field_list fields(*c.ep);
        if (!p.api_key.empty()) {
            fields.set("api-key", p.api_key.reveal());
        }
        const auto target = c.ep->base_path + "/openai/deployments/" + c.model->upstream + "/" +
                            std::string(op) + "?api-version=" + p.api_version;
        head = head_prefix(p, target, std::move(fields));
    } else {
        const std::string& prefix =
            ctx.api == api_kind::chat ? c.ep->chat_head : c.ep->embeddings_head;
        // Room for the Content-Length line and the blank line too: one allocation, not a
        // copy of the prefix and a larger one when finish_head outgrows it.
        head.reserve(prefix.size() + 40);
        head.append(prefix);
        out.body = spare_string();
        if (splice_openai_body(ctx, c.model->upstream, out.body)) {
            finish_head(head, out.body.size());
            out.head = std::move(head);
            return out;
        }
    }
    nlohmann::json body = ctx.body;
    if (azure) {
        body.erase("model");
    } else {
        body["model"] = c.model->upstream;
    }
    if (ctx.log.stream) {
        // Ask for the usage chunk so streams are charged exactly; the relay drops it again
        // when the client did not ask for it.
        body["stream_options"]["include_usage"] = true;
    }
    out.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    finish_head(head, out.body.size());
    out.head = std::move(head);
    return out;
}

prepared_request translated_style(const candidate& c, const request_context& ctx) {
    prepared_request out;
    out.translated = true;
    const auto& key = c.provider->api_key.reveal();
    providers::translated<providers::upstream_request> call;
    if (c.provider->type == provider_type::anthropic) {
        if (ctx.api != api_kind::chat) {
            out.error = providers::translate_error{"Anthropic has no embeddings API.", "model"};
            return out;
        }
        call = providers::anthropic::build_chat(ctx.body, c.model->upstream, key, ctx.log.stream);
    } else if (ctx.api == api_kind::chat) {
        call = providers::gemini::build_chat(ctx.body, c.model->upstream, key, ctx.log.stream);
    } else {
        call = providers::gemini::build_embeddings(ctx.body, c.model->upstream, key);
    }
    if (auto* err = std::get_if<providers::translate_error>(&call)) {
        out.error = *err;
        return out;
    }
    auto& r = std::get<providers::upstream_request>(call);
    field_list fields(*c.ep);
    for (auto& [name, value] : r.headers) {
        fields.set(name, std::move(value));
    }
    out.body = std::move(r.body);
    out.head = request_head(c, c.ep->base_path + r.path, std::move(fields), out.body.size());
    return out;
}

} // namespace

void prepared_request::recycle() {
    for (auto* s : {&head, &body}) {
        if (s->capacity() > 15 && s->capacity() <= spare_room &&
            spare_strings.size() < spare_count) {
            s->clear();
            spare_strings.push_back(std::move(*s));
        }
        std::string().swap(*s);
    }
}

std::string openai_head_prefix(const config::provider_config& p, const endpoint& ep,
                               std::string_view op) {
    std::string target;
    target.reserve(ep.base_path.size() + 1 + op.size());
    target.append(ep.base_path).append("/").append(op);
    field_list fields(ep);
    if (!p.api_key.empty()) {
        fields.set("Authorization", "Bearer " + p.api_key.reveal());
    }
    return head_prefix(p, target, std::move(fields));
}

prepared_request prepare_request(const candidate& c, const request_context& ctx) {
    const auto type = c.provider->type;
    return type == provider_type::anthropic || type == provider_type::gemini
               ? translated_style(c, ctx)
               : openai_style(c, ctx);
}

} // namespace michi::pipeline
