#include "upstream_request.hpp"

#include "michi/core/json_scan.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/gemini.hpp"

namespace michi::pipeline {
namespace {

using config::provider_type;

void set_common_headers(http::request<http::string_body>& req, const candidate& c) {
    const bool default_port = c.ep->port == (c.ep->tls ? "443" : "80");
    req.set(http::field::host, default_port ? c.ep->host : c.ep->host + ":" + c.ep->port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "michi/" MICHI_VERSION);
    for (const auto& [name, value] : c.provider->headers) {
        req.set(name, value);
    }
}

// The client's own bytes with only the model's value replaced, and for a stream that
// does not ask for usage yet, "stream_options":{"include_usage":true} put in first: no
// copy and re-serialisation of the parsed body. nullopt when the body needs the full
// path: an Anthropic-dialect request, a duplicated or escaped key (the upstream might
// read a different "model" than admission did), stream_options set without usage.
std::optional<std::string> splice_openai_body(const request_context& ctx,
                                              const std::string& upstream_model) {
    if (ctx.out != dialect::openai) {
        return std::nullopt;
    }
    const bool add_usage_option = ctx.log.stream && !ctx.wants_usage;
    if (add_usage_option && ctx.facts.has_stream_options) {
        return std::nullopt; // other stream options: merged by the full path
    }
    const std::string_view raw = ctx.req.body();
    std::size_t model_begin = ctx.facts.model_begin;
    std::size_t model_end = ctx.facts.model_end;
    if (model_end == 0) { // the body was parsed, not scanned: find the model's bytes
        const auto model = json_scan::find_unique(raw, "model");
        if (!model) {
            return std::nullopt;
        }
        model_begin = static_cast<std::size_t>(model->data() - raw.data());
        model_end = model_begin + model->size();
    }
    const std::string quoted = nlohmann::json(upstream_model).dump();
    constexpr std::string_view usage_option = R"("stream_options":{"include_usage":true},)";
    std::string out;
    out.reserve(raw.size() + quoted.size() + usage_option.size());
    std::size_t from = 0;
    if (add_usage_option) {
        const std::size_t open = raw.find('{') + 1; // the object has a member: "model"
        out.append(raw.substr(0, open));
        out.append(usage_option);
        from = open;
    }
    out.append(raw.substr(from, model_begin - from));
    out.append(quoted);
    out.append(raw.substr(model_end));
    return out;
}

// OpenAI and Azure: the client's body with the model rewritten (Azure names the
// deployment in the path instead); streams ask for usage.
prepared_request openai_style(const candidate& c, const request_context& ctx) {
    prepared_request out;
    const auto& p = *c.provider;
    const std::string op = ctx.api == api_kind::chat ? "chat/completions" : "embeddings";
    const bool azure = p.type == provider_type::azure;
    if (azure) {
        out.req.target(c.ep->base_path + "/openai/deployments/" + c.model.upstream + "/" + op +
                       "?api-version=" + p.api_version);
        if (!p.api_key.empty()) {
            out.req.set("api-key", p.api_key.reveal());
        }
    } else {
        out.req.target(c.ep->base_path + "/" + op);
        if (!p.api_key.empty()) {
            out.req.set(http::field::authorization, "Bearer " + p.api_key.reveal());
        }
        if (auto spliced = splice_openai_body(ctx, c.model.upstream)) {
            out.req.body() = std::move(*spliced);
            return out;
        }
    }
    nlohmann::json body = ctx.body;
    if (azure) {
        body.erase("model");
    } else {
        body["model"] = c.model.upstream;
    }
    if (ctx.log.stream) {
        // Ask for the usage chunk so streams are charged exactly; the relay drops it again
        // when the client did not ask for it.
        body["stream_options"]["include_usage"] = true;
    }
    out.req.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
        call = providers::anthropic::build_chat(ctx.body, c.model.upstream, key, ctx.log.stream);
    } else if (ctx.api == api_kind::chat) {
        call = providers::gemini::build_chat(ctx.body, c.model.upstream, key, ctx.log.stream);
    } else {
        call = providers::gemini::build_embeddings(ctx.body, c.model.upstream, key);
    }
    if (auto* err = std::get_if<providers::translate_error>(&call)) {
        out.error = *err;
        return out;
    }
    auto& r = std::get<providers::upstream_request>(call);
    out.req.target(c.ep->base_path + r.path);
    for (const auto& [name, value] : r.headers) {
        out.req.set(name, value);
    }
    out.req.body() = std::move(r.body);
    return out;
}

} // namespace

prepared_request prepare_request(const candidate& c, const request_context& ctx) {
    const auto type = c.provider->type;
    prepared_request out = type == provider_type::anthropic || type == provider_type::gemini
                               ? translated_style(c, ctx)
                               : openai_style(c, ctx);
    if (out.error) {
        return out;
    }
    out.req.method(http::verb::post);
    out.req.version(11);
    set_common_headers(out.req, c);
    out.req.keep_alive(true);
    out.req.prepare_payload();
    return out;
}

} // namespace michi::pipeline
