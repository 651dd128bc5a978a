#include "michi/pipeline/settle.hpp"

#include "michi/routing/pricing.hpp"

namespace michi::pipeline {

void account(request_context& ctx, const config::model_config& model,
             const providers::usage_info& u, std::size_t content_chars) {
    auto& t = ctx.usage;
    if (ctx.api == api_kind::count_tokens) {
        t = token_usage{}; // a count is free
    } else if (u.known) {
        t = u.tokens();
    } else {
        t = token_usage{};
        t.input = ctx.facts.prompt_tokens;
        t.output = (content_chars + 3) / 4;
    }
    auto& log = ctx.log;
    log.tokens_in = t.total_input();
    log.tokens_out = t.output;
    log.tokens_cache_read = t.cache_read;
    log.tokens_cache_write = t.cache_write();
    log.tokens_reasoning = t.reasoning;
    const auto priced = routing::price(model, t);
    ctx.cost_nano = priced.cost_nano;
    log.cost_usd = static_cast<double>(ctx.cost_nano) / 1e9;
    log.cache_saved_usd = priced.saved_usd;
}

void settle(request_context& ctx, guard::ledger& ledger) {
    if (!ctx.reservation || ctx.reservation->settled) {
        return;
    }
    ledger.settle(*ctx.reservation, ctx.log.cost_usd, ctx.log.tokens_in + ctx.log.tokens_out);
}

void record(const request_context& ctx, store::request_log& log, obs::fallback_log& fallbacks) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    log.add(ctx.log, now_ms, ctx.fallbacks);
    for (const auto& [target, why] : ctx.failed) {
        fallbacks.add({now_ms, ctx.request_id, ctx.log.route, target,
                       ctx.log.status < 400 ? ctx.log.model : "", why});
    }
}

} // namespace michi::pipeline
