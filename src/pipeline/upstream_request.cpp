#include "upstream_request.hpp"

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

// OpenAI and Azure: the client's body with the model rewritten (Azure names the
// deployment in the path instead); streams ask for usage.
prepared_request openai_style(const candidate& c, const request_context& ctx) {
    prepared_request out;
    nlohmann::json body = ctx.body;
    const auto& p = *c.provider;
    const std::string op = ctx.api == api_kind::chat ? "chat/completions" : "embeddings";
    if (p.type == provider_type::azure) {
        body.erase("model");
        out.req.target(c.ep->base_path + "/openai/deployments/" + c.model.upstream + "/" + op +
                       "?api-version=" + p.api_version);
        if (!p.api_key.empty()) {
            out.req.set("api-key", p.api_key.reveal());
        }
    } else {
        body["model"] = c.model.upstream;
        out.req.target(c.ep->base_path + "/" + op);
        if (!p.api_key.empty()) {
            out.req.set(http::field::authorization, "Bearer " + p.api_key.reveal());
        }
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
