#include "michi/pipeline/answer.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/pipeline/settle.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/surface/surface.hpp"

namespace michi::pipeline {
namespace {

// 1xx, 204 and 304 answers have no body, and no Content-Length either.
bool no_body_status(unsigned status) { return status / 100 == 1 || status == 204 || status == 304; }

std::uint64_t seconds(std::chrono::seconds s) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(s.count(), 0));
}

} // namespace

void append_guard_fields(std::string& out, const request_context& ctx) {
    wire::append_field(out, "x-request-id", ctx.request_id);
    if (ctx.rate) {
        const auto& r = *ctx.rate;
        if (r.has_requests) {
            wire::append_field(out, "x-ratelimit-limit-requests", r.limit_requests);
            wire::append_field(out, "x-ratelimit-remaining-requests", r.remaining_requests);
            wire::append_field(out, "x-ratelimit-reset-requests", seconds(r.reset_requests), "s");
        }
        if (r.has_tokens) {
            wire::append_field(out, "x-ratelimit-limit-tokens", r.limit_tokens);
            wire::append_field(out, "x-ratelimit-remaining-tokens", r.remaining_tokens);
            wire::append_field(out, "x-ratelimit-reset-tokens", seconds(r.reset_tokens), "s");
        }
    }
    if (ctx.retry_after) {
        wire::append_field(out, "retry-after", seconds(*ctx.retry_after));
    }
}

void append_michi_fields(std::string& out, const request_context& ctx) {
    append_guard_fields(out, ctx);
    wire::append_field(out, "x-michi-model", ctx.log.model);
    wire::append_field(out, "x-michi-attempts", std::uint64_t{ctx.log.attempts});
    if (const std::string_view why =
            ctx.route_reason_kept.empty() ? ctx.route_reason : ctx.route_reason_kept;
        !why.empty()) {
        wire::append_field(out, "x-michi-route-reason", why);
    }
    if (!ctx.log.response_cache.empty()) {
        wire::append_field(out, "x-michi-cache", ctx.log.response_cache);
    }
}

awaitable<void> reply_error(downstream::client_io& io, request_context& ctx, guard::ledger& ledger,
                            const gateway_error& err) {
    settle(ctx, ledger);
    std::string fields;
    fields.reserve(320);
    append_guard_fields(fields, ctx);
    auto res = downstream::json_response(ctx, err.status, surface::error_body(ctx.api, err));
    ctx.log.error_code = err.code;
    ctx.committed = true;
    co_await downstream::write_reply(io, ctx, res, fields);
}

std::string_view prepare_whole(request_context& ctx, guard::ledger& ledger, std::string& fields,
                               unsigned status, std::string_view body,
                               std::string_view content_type, std::string_view retry_after) {
    fields.clear();
    fields.reserve(768);
    wire::append_field(fields, "Content-Type", content_type);
    if (!retry_after.empty() && !ctx.retry_after) {
        wire::append_field(fields, "Retry-After", retry_after);
    }
    if (!no_body_status(status)) {
        wire::append_field(fields, "Content-Length", std::uint64_t{body.size()});
    } else {
        body = {}; // a status that has no body, and no Content-Length either
    }
    if (!ctx.keep_alive) {
        fields.append("Connection: close\r\n");
    }
    append_michi_fields(fields, ctx);
    wire::append_field(fields, "x-michi-cost-usd", routing::usd_text(ctx.cost_nano));
    ctx.log.status = status;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    settle(ctx, ledger);
    ctx.committed = true;
    if (ctx.cache_fill) { // a miss of the response cache: a good answer is kept
        ctx.cache_fill->whole(status, content_type, body, ctx.log.model, ctx.cost_nano);
    }
    return body;
}

} // namespace michi::pipeline
