#include "michi/server/router.hpp"

#include "michi/core/url_text.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/pipeline/api.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/surface/surface.hpp"

#include <algorithm>
#include <array>

namespace michi::server {
namespace {

enum class target {
    chat,
    embeddings,
    messages,
    responses,
    count_tokens,
    models,
    model,
    healthz,
    readyz
};

struct endpoint_entry {
    std::string_view path;
    http::verb method;
    target to;
};

constexpr std::array<endpoint_entry, 9> endpoints{{
    {"/chat/completions", http::verb::post, target::chat},
    {"/embeddings", http::verb::post, target::embeddings},
    {"/messages", http::verb::post, target::messages},
    {"/messages/count_tokens", http::verb::post, target::count_tokens},
    {"/responses", http::verb::post, target::responses},
    {"/models", http::verb::get, target::models},
    {"/models/", http::verb::get, target::model}, // "/models/{id}": a prefix
    {"/healthz", http::verb::get, target::healthz},
    {"/readyz", http::verb::get, target::readyz},
}};

bool matches(const endpoint_entry& e, std::string_view path) {
    return e.path.ends_with('/') ? path.size() > e.path.size() && path.starts_with(e.path)
                                 : path == e.path;
}

api_kind api_of(target t) {
    switch (t) {
    case target::embeddings: return api_kind::embeddings;
    case target::messages: return api_kind::messages;
    case target::count_tokens: return api_kind::count_tokens;
    case target::responses: return api_kind::responses;
    default: return api_kind::chat;
    }
}

awaitable<void> probe(downstream::client_io& io, pipeline::request_context& ctx, bool ok,
                      std::string_view ok_body, std::string_view down_body) {
    auto res =
        downstream::json_response(ctx, ok ? 200 : 503, std::string(ok ? ok_body : down_body));
    std::string fields;
    pipeline::append_guard_fields(fields, ctx);
    co_await downstream::write_reply(io, ctx, res, fields);
}

// A path no endpoint serves (404), or one that does with another method (405). (Its own
// coroutine: its locals stay out of dispatch's frame, which lasts as long as a stream.)
awaitable<void> refuse(deps& d, downstream::client_io& io, pipeline::request_context& ctx,
                       const endpoint_entry* it) {
    if (it == nullptr) {
        // Anthropic's paths answer in Anthropic's shape, 404s too.
        ctx.api = ctx.path.starts_with("/messages") ? api_kind::messages : api_kind::chat;
        const auto err = errors::not_found(std::string(ctx.req.target()));
        co_await pipeline::reply_error(io, ctx, d.api.ledger, err);
        co_return;
    }
    ctx.api = api_of(it->to);
    auto err = errors::method_not_allowed(ctx.log.method, ctx.path);
    auto res = downstream::json_response(ctx, 405, surface::error_body(ctx.api, err));
    res.set(http::field::allow, http::to_string(it->method));
    ctx.log.error_code = err.code;
    std::string fields;
    pipeline::append_guard_fields(fields, ctx);
    co_await downstream::write_reply(io, ctx, res, fields);
}

} // namespace

void normalize_path(std::string_view target, std::string& out) {
    target = target.substr(0, target.find('?'));
    if (target == "/v1") {
        target = "/";
    } else if (target.starts_with("/v1/")) {
        target.remove_prefix(3);
    }
    out.assign(target);
}

awaitable<void> dispatch(deps& d, downstream::client_io& io, pipeline::request_context& ctx) {
    normalize_path(ctx.req.target(), ctx.path);
    ctx.log.method.assign(ctx.req.method_string());
    ctx.log.path = ctx.path;
    // HEAD on every GET path: the GET's status and headers, never a body.
    ctx.req.serve_head_as_get();
    io.set_head_only(ctx.req.is_head());
    if (admin::owns(ctx.path)) {
        co_await admin::handle(d.admin, io, ctx, *ctx.rt->cfg);
        co_return;
    }
    const auto it = std::find_if(endpoints.begin(), endpoints.end(),
                                 [&](const endpoint_entry& e) { return matches(e, ctx.path); });
    if (it == endpoints.end() || ctx.req.method() != it->method) {
        co_await refuse(d, io, ctx, it == endpoints.end() ? nullptr : &*it);
        co_return;
    }
    switch (it->to) {
    case target::chat:
    case target::embeddings:
    case target::messages:
    case target::count_tokens:
    case target::responses:
        ctx.api = api_of(it->to);
        co_await pipeline::serve_completion(d.api, io, ctx);
        break;
    case target::models: co_await pipeline::serve_models(d.api, io, ctx, {}); break;
    case target::model: {
        const auto id = wire::percent_decode(ctx.path.substr(it->path.size()), false);
        co_await pipeline::serve_models(d.api, io, ctx, id);
        break;
    }
    case target::healthz: co_await probe(io, ctx, true, R"({"status":"ok"})", ""); break;
    case target::readyz:
        co_await probe(io, ctx, d.ready && !d.draining, R"({"status":"ready"})",
                       R"({"status":"not ready"})");
        break;
    }
}

} // namespace michi::server
