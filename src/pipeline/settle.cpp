#include "michi/pipeline/settle.hpp"

#include "michi/routing/pricing.hpp"

namespace michi::pipeline {

void account(request_context& ctx, const config::model_config& model,
             const providers::usage_info& u, std::size_t content_chars) {
    if (u.known) {
        ctx.log.tokens_in = u.prompt_tokens;
        ctx.log.tokens_out = u.completion_tokens;
    } else {
        ctx.log.tokens_in = ctx.facts.prompt_tokens;
        ctx.log.tokens_out = (content_chars + 3) / 4;
    }
    ctx.log.cost_usd = routing::cost_usd(model, ctx.log.tokens_in, ctx.log.tokens_out);
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
