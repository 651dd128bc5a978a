#include "michi/pipeline/api.hpp"

#include "michi/auth/key_store.hpp"
#include "michi/core/offload.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/pipeline/admission.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/pipeline/exchange.hpp"

namespace michi::pipeline {
namespace {

// Another process sharing the key file changed the keys: read them (off this event loop)
// before authenticating.
awaitable<void> refresh_keys(deps& d) {
    if (d.auth.needs_refresh()) {
        auto& registry = d.auth.registry();
        co_await offload(d.blocking, [&registry] { return registry.refresh(); });
    }
}

nlohmann::json model_entry(const std::string& id, const std::string& owner) {
    return {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", owner}};
}

} // namespace

awaitable<void> serve_completion(deps& d, downstream::client_io& io, request_context& ctx) {
    ctx.api_call = true;
    co_await refresh_keys(d);
    auto admitted = admit(ctx, d.auth);
    if (!admitted) {
        co_await reply_error(io, ctx, d.ledger, admitted.error());
        co_return;
    }
    // The ledger: budgets, RPM/TPM and the loop guard, at once in-process, else asked.
    guard::rate_headers headers;
    auto answer = d.ledger.try_admit(admitted->guard_request, headers);
    if (!answer) {
        answer = co_await d.ledger.admit_async(admitted->guard_request, headers);
    }
    if (auto taken = take_admission(ctx, std::move(*answer), headers, d.metrics); !taken) {
        co_await reply_error(io, ctx, d.ledger, taken.error());
        co_return;
    }
    co_await run_exchange(d, io, ctx, admitted->plan);
}

awaitable<void> serve_models(deps& d, downstream::client_io& io, request_context& ctx) {
    co_await refresh_keys(d);
    const auto secret = auth::presented_secret(ctx.req[http::field::authorization],
                                               ctx.req["x-api-key"]);
    std::string revoked_id;
    if (auto who = d.auth.authenticate(secret, ctx.rt->keys, ctx.who, revoked_id); !who) {
        ctx.log.key_id = std::move(revoked_id);
        co_await reply_error(io, ctx, d.ledger, who.error());
        co_return;
    }
    ctx.key = ctx.who.key;
    ctx.log.key_id = ctx.key->id;
    ctx.log.key_class = config::to_string(ctx.key->cls);
    const auto& cfg = *ctx.rt->cfg;
    nlohmann::json data = nlohmann::json::array();
    for (const auto& [name, route] : cfg.routes) {
        if (auth::model_allowed(*ctx.key, name)) {
            data.push_back(model_entry(name, "michi-route"));
        }
    }
    for (const auto& [name, m] : cfg.models) {
        if (!cfg.routes.contains(name) && auth::model_allowed(*ctx.key, name)) {
            data.push_back(model_entry(name, m.provider));
        }
    }
    auto res = downstream::json_response(
        ctx, 200, nlohmann::json{{"object", "list"}, {"data", data}}.dump());
    std::string fields;
    append_guard_fields(fields, ctx);
    co_await downstream::write_reply(io, ctx, res, fields);
}

} // namespace michi::pipeline
