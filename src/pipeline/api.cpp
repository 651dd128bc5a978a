#include "michi/pipeline/api.hpp"

#include "michi/auth/key_store.hpp"
#include "michi/core/offload.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/pipeline/admission.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/pipeline/cache_stage.hpp"
#include "michi/pipeline/exchange.hpp"
#include "michi/pipeline/large_body.hpp"

#include <algorithm>
#include <memory>

namespace michi::pipeline {
namespace {

// Another process sharing the key file changed the keys: read them (off this event loop)
// before authenticating. Awaited only then (`if (d.auth.needs_refresh())`): a coroutine's
// frame per request costs an allocation when Asio's recycled ones do not fit.
awaitable<void> refresh_keys(deps& d) {
    auto& registry = d.auth.registry();
    co_await offload(d.blocking, [&registry] { return registry.refresh(); });
}

nlohmann::json model_entry(const std::string& id, const std::string& owner) {
    return {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", owner}};
}

// POST /v1/messages/count_tokens: counted by the targets that count (Anthropic's, first in
// the plan's order), else the gateway's own estimate. Free: no hold, no rate limit.
awaitable<void> serve_count(deps& d, downstream::client_io& io, request_context& ctx,
                            routing::dispatch_plan plan) {
    std::erase_if(plan.candidates, [&](const routing::candidate& c) {
        return !c.provider->impl->passthrough(*c.provider, ctx.api);
    });
    if (!plan.candidates.empty()) {
        co_await run_exchange(d, io, ctx, plan);
        co_return;
    }
    const std::string body = nlohmann::json{{"input_tokens", ctx.facts.prompt_tokens}}.dump();
    auto [ec, n] =
        co_await write_whole(io, ctx, d.ledger, d.fields, 200, body, "application/json", {});
    if (ec) {
        ctx.keep_alive = false;
    }
}

// A refusal to answer, on the heap: the coroutine's frame stays within what Asio recycles
// (frames over 1020 bytes are allocated and freed on every request).
using refusal_ptr = std::unique_ptr<gateway_error>;

// Takes the ledger's answer: its reservation into ctx, else the refusal to answer.
refusal_ptr take_answer(deps& d, request_context& ctx, guard::admission&& answer,
                        const guard::rate_headers& headers) {
    if (auto taken = take_admission(ctx, std::move(answer), headers, d.metrics); !taken) {
        return std::make_unique<gateway_error>(std::move(taken.error()));
    }
    return nullptr;
}

// The ledger's answer at once, from one kept in this process (a plain function: the answer's
// temporaries stay off the coroutine's frame); false when the ledger must be asked.
bool admit_here(deps& d, request_context& ctx, const guard::admission_request& req,
                refusal_ptr& refused) {
    guard::rate_headers headers;
    auto answer = d.ledger.try_admit(req, headers);
    if (!answer) {
        return false;
    }
    refused = take_answer(d, ctx, std::move(*answer), headers);
    return true;
}

// The ledger's answer from one that must be asked (shared in Redis).
awaitable<refusal_ptr> admit_elsewhere(deps& d, request_context& ctx,
                                       const guard::admission_request& req) {
    guard::rate_headers headers;
    auto answer = co_await d.ledger.admit_async(req, headers);
    co_return take_answer(d, ctx, std::move(answer), headers);
}

// A large body's admission (a coroutine of its own: the answer's temporary stays off
// serve_completion's frame); false when the request ended on the way.
awaitable<bool> admit_large_into(deps& d, downstream::client_io& io, request_context& ctx,
                                 admitted& into, result<void>& out) {
    auto r = co_await admit_large(d, io, ctx, into);
    if (r) {
        out = std::move(*r);
    }
    co_return r.has_value();
}

} // namespace

awaitable<void> serve_completion(deps& d, downstream::client_io& io, request_context& ctx) {
    ctx.api_call = true;
    if (d.auth.needs_refresh()) {
        co_await refresh_keys(d);
    }
    // (A large body's scan and parse run off this event loop; the request may end there.)
    // (What is admitted is written where it lies, on this frame: the plan is not moved.)
    pipeline::admitted admitted;
    result<void> admission;
    if (is_large(ctx)) {
        if (!co_await admit_large_into(d, io, ctx, admitted, admission)) {
            co_return;
        }
    } else {
        admission = admit(ctx, d.auth, admitted);
    }
    if (!admission) {
        co_await reply_error(io, ctx, d.ledger, admission.error());
        co_return;
    }
    if (ctx.api == api_kind::count_tokens) {
        co_await serve_count(d, io, ctx, std::move(admitted.plan));
        co_return;
    }
    // The response cache first: a hit is admitted by the ledger as free (checked and counted as
    // any request, holding nothing: it costs the key nothing).
    cache_lookup look;
    if (look_up_here(d, ctx, admitted.plan, look) == lookup::elsewhere &&
        co_await look_up_elsewhere(d, io, ctx, admitted.plan, look)) {
        co_return;
    }
    // The ledger: budgets, RPM/TPM and the loop guard, at once in-process, else asked.
    admitted.guard_request.free = look.hit != nullptr;
    refusal_ptr refused;
    if (!admit_here(d, ctx, admitted.guard_request, refused)) {
        refused = co_await admit_elsewhere(d, ctx, admitted.guard_request);
    }
    if (refused) {
        co_await reply_error(io, ctx, d.ledger, *refused);
        co_return;
    }
    if (look.hit) {
        co_await answer_from_cache(d, io, ctx, *look.hit);
        co_return;
    }
    note_miss(d, ctx, look);
    co_await run_exchange(d, io, ctx, admitted.plan);
}

awaitable<void> serve_models(deps& d, downstream::client_io& io, request_context& ctx,
                             std::string_view id) {
    if (d.auth.needs_refresh()) {
        co_await refresh_keys(d);
    }
    const auto secret = auth::presented_secret(ctx.req[http::field::authorization],
                                               ctx.req[downstream::request::extra::x_api_key]);
    std::string revoked_id;
    if (auto who = d.auth.authenticate(secret, ctx.rt->keys, ctx.who, revoked_id, ctx.key_memo);
        !who) {
        ctx.log.key_id = std::move(revoked_id);
        co_await reply_error(io, ctx, d.ledger, who.error());
        co_return;
    }
    ctx.key = ctx.who.key;
    ctx.log.key_id = ctx.key->id;
    ctx.log.key_class = config::to_string(ctx.key->cls);
    const auto& cfg = *ctx.rt->cfg;
    // A model of a provider that is off is left out; a route while any target can serve.
    const auto serves = [&](const std::string& model) {
        const auto m = cfg.find_model(model); // (a route's target may come from the table)
        if (!m) {
            return false;
        }
        const auto p = ctx.rt->providers.find(m->provider);
        return p != ctx.rt->providers.end() && p->second.configured;
    };
    nlohmann::json data = nlohmann::json::array();
    for (const auto& [name, route] : cfg.routes) {
        if (auth::model_allowed(*ctx.key, name) &&
            std::any_of(route.targets.begin(), route.targets.end(), serves)) {
            data.push_back(model_entry(name, "michi-route"));
        }
    }
    for (const auto& [name, m] : cfg.models) {
        if (!cfg.routes.contains(name) && auth::model_allowed(*ctx.key, name) && serves(name)) {
            data.push_back(model_entry(name, m.provider));
        }
    }
    std::string body;
    if (id.empty()) {
        body = nlohmann::json{{"object", "list"}, {"data", data}}.dump();
    } else {
        const auto found = std::find_if(data.begin(), data.end(), [&](const nlohmann::json& e) {
            return e["id"].get_ref<const std::string&>() == id;
        });
        if (found == data.end()) {
            co_await reply_error(io, ctx, d.ledger, errors::model_not_found(std::string(id)));
            co_return;
        }
        body = found->dump();
    }
    auto res = downstream::json_response(ctx, 200, std::move(body));
    std::string fields;
    append_guard_fields(fields, ctx);
    co_await downstream::write_reply(io, ctx, res, fields);
}

} // namespace michi::pipeline
