#include "michi/pipeline/cache_stage.hpp"

#include "michi/cache/request_key.hpp"
#include "michi/core/http_wire.hpp"
#include "michi/core/json_scan.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/pipeline/large_body.hpp"
#include "michi/pipeline/settle.hpp"
#include "michi/pipeline/stream_head.hpp"

#include <boost/algorithm/string/predicate.hpp>

namespace michi::pipeline {
namespace {

// The client's cache-control directives (case does not matter).
struct directives {
    bool no_cache = false;
    bool no_store = false;
};

directives directives_of(std::string_view value) {
    directives d;
    while (!value.empty()) {
        const auto comma = value.find(',');
        auto token = value.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
            token.remove_prefix(1);
        }
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
            token.remove_suffix(1);
        }
        d.no_cache = d.no_cache || boost::algorithm::iequals(token, "no-cache");
        d.no_store = d.no_store || boost::algorithm::iequals(token, "no-store");
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    return d;
}

// The route's cache policy, else the key's; null when neither keeps one.
const config::cache_policy* policy_of(const request_context& ctx,
                                      const routing::dispatch_plan& plan) {
    if (plan.prepared != nullptr) { // (the route as the snapshot resolved it: no lookup by name)
        if (const auto& c = plan.prepared->config->cache) {
            return &*c;
        }
        return ctx.key->cache ? &*ctx.key->cache : nullptr;
    }
    const auto& routes = ctx.rt->cfg->routes;
    if (const auto it = routes.find(plan.route); it != routes.end() && it->second.cache) {
        return &*it->second.cache;
    }
    return ctx.key->cache ? &*ctx.key->cache : nullptr;
}

// The model as resolved: the route's name, or the one model asked for.
const std::string& resolved_model(const routing::dispatch_plan& plan) {
    return plan.route.empty() ? plan.candidates.front().model->name : plan.route;
}

// What the request log says of a hit; charged nothing.
void note_hit(request_context& ctx, const cache::cached_answer& a) {
    ctx.log.model = a.model;
    ctx.log.response_cache = "hit";
    ctx.log.response_cache_saved_usd = static_cast<double>(a.cost_nano) / 1e9;
    ctx.cost_nano = 0; // (the usage stays zero: nothing was used upstream)
}

// Writes a kept stream as the first one went out (a whole answer is written where it is
// found, without a coroutine of its own).
awaitable<void> replay_stream(deps& d, downstream::client_io& io, request_context& ctx,
                              const cache::cached_answer& a) {
    note_hit(ctx, a);
    ctx.log.status = a.status;
    ctx.log.stream = true;
    settle(ctx, d.ledger);
    std::string& head = io.stream_head_room();
    stream_head_text(head, ctx, a.status);
    ctx.committed = true;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    if (co_await io.write_stream(head, a.body, true)) {
        ctx.keep_alive = false;
    }
}

// A stream filter that passes everything on and records what reaches the client.
class recording_filter final : public surface::stream_filter {
public:
    recording_filter(std::unique_ptr<surface::stream_filter> inner, cache::pending_fill& fill)
        : inner_(std::move(inner)), fill_(fill) {}

    std::string_view feed(std::string_view in) override {
        const auto out = inner_->feed(in);
        fill_.record(out);
        return out;
    }
    std::uint64_t events() const noexcept override { return inner_->events(); }
    bool finished() const noexcept override { return inner_->finished(); }
    bool needs_end_event() const noexcept override { return inner_->needs_end_event(); }
    std::optional<std::string> failure() const override { return inner_->failure(); }
    std::string_view finish() override {
        const auto out = inner_->finish();
        fill_.record(out);
        return out;
    }
    std::string broken(std::string_view message) const override { return inner_->broken(message); }
    const providers::usage_info& usage() const noexcept override { return inner_->usage(); }
    std::size_t content_chars() const noexcept override { return inner_->content_chars(); }

private:
    std::unique_ptr<surface::stream_filter> inner_;
    cache::pending_fill& fill_;
};

// The key of a large body, as answer_from_cache finds a key (without the keys remembered).
std::optional<cache::request_key> large_key(api_kind api, const std::string& model,
                                            const lent_body& b, const std::string& scope,
                                            const std::string& headers, bool as_sent, bool parsed) {
    if (parsed && !as_sent) {
        return cache::raw_key_of(api, model, b.bytes, scope, headers,
                                 cache::sets_temperature(b.parsed));
    }
    if (!parsed) {
        return cache::key_of(api, model, b.bytes, scope, headers);
    }
    if (json_scan::nesting_depth(b.bytes, cache::max_key_depth) <= cache::max_key_depth) {
        return cache::parsed_key_of(api, model, b.parsed, scope, headers);
    }
    return std::nullopt;
}

// What write_whole writes for a hit on a whole answer with a body (the same head, line for
// line), the entry's own lines made once when it was kept (cached_answer::lead, model_field).
auto write_hit(downstream::client_io& io, request_context& ctx, guard::ledger& ledger,
               std::string& fields, const cache::cached_answer& a) {
    fields.clear();
    fields.reserve(768);
    fields.append(a.lead);
    if (!ctx.keep_alive) {
        fields.append("Connection: close\r\n");
    }
    append_guard_fields(fields, ctx);
    fields.append(a.model_field);
    if (ctx.log.attempts == 0) {
        fields.append("x-michi-attempts: 0\r\n");
    } else {
        wire::append_field(fields, "x-michi-attempts", std::uint64_t{ctx.log.attempts});
    }
    if (const std::string_view why =
            ctx.route_reason_kept.empty() ? ctx.route_reason : ctx.route_reason_kept;
        !why.empty()) {
        wire::append_field(fields, "x-michi-route-reason", why);
    }
    fields.append("x-michi-cache: hit\r\nx-michi-cost-usd: 0\r\n"); // (note_hit: cost 0)
    ctx.log.status = a.status;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    settle(ctx, ledger);
    ctx.committed = true;
    http::response_header<> head;
    head.version(11);
    head.result(a.status);
    return io.write_response(head, a.body, fields);
}

// Whether the body is the client's as sent (chat, embeddings): admission's parse serves for
// the key; another API's form (translated) is keyed on the body's exact bytes.
bool as_sent(const request_context& ctx) {
    return ctx.api == api_kind::chat || ctx.api == api_kind::embeddings;
}

// The lookup in memory under the key (none: the request is not cached); elsewhere when Redis
// is to be asked.
lookup look_up_key(deps& d, cache_lookup& look, const cache::request_key* key) {
    if (key == nullptr || (key->sampled && !look.policy->nondeterministic)) {
        look.policy = nullptr;
        return lookup::done;
    }
    if (!look.no_cache) {
        // Memory first, without a suspension; Redis after, when the cache is shared.
        look.hit = d.cache.find_here(key->digest);
        if (!look.hit && d.cache.shared()) {
            look.digest = key->digest;
            return lookup::elsewhere;
        }
    }
    if (!look.hit) {
        look.digest = key->digest; // (kept by the fill on a miss)
    }
    return lookup::done;
}

} // namespace

lookup look_up_here(deps& d, request_context& ctx, const routing::dispatch_plan& plan,
                    cache_lookup& look) {
    const auto* policy = policy_of(ctx, plan);
    if (policy == nullptr) {
        return lookup::done;
    }
    const auto asked = directives_of(ctx.req[http::field::cache_control]);
    if (asked.no_store) {
        return lookup::done;
    }
    look.policy = policy;
    look.no_cache = asked.no_cache;
    if (ctx.api == api_kind::messages) {
        look.headers.append(ctx.req["anthropic-version"]).append("\n");
        look.headers.append(ctx.req["anthropic-beta"]);
    }
    if (is_large(ctx)) {
        return lookup::elsewhere; // (the key of a large body is made off this event loop)
    }
    const std::string_view scope = policy->per_key ? std::string_view(ctx.key->id) : "";
    const std::string_view body = ctx.req.body();
    const auto& model = resolved_model(plan);
    const std::string& headers = look.headers;
    std::optional<cache::request_key> made;
    const cache::request_key* key = nullptr; // made's, or one remembered (not copied)
    if (ctx.body_parsed && !as_sent(ctx)) {
        made = cache::raw_key_of(ctx.api, model, body, scope, headers,
                                 cache::sets_temperature(ctx.body));
    } else {
        // A body this worker saw before, byte for byte, is not normalised again (one short
        // enough to be remembered: the text's room stays within max_known_text).
        thread_local std::string exact; // (this worker's; its room kept)
        const bool short_text = body.size() + model.size() + scope.size() + headers.size() + 64 <=
                                cache::max_known_text;
        exact.clear();
        if (short_text) {
            cache::exact_text(ctx.api, model, body, scope, headers, exact);
        }
        if (const auto* known = short_text ? d.cache.known_key(exact) : nullptr) {
            key = known; // (this worker's: stays put while the request runs on it)
        } else {
            if (!ctx.body_parsed) {
                made = cache::key_of(ctx.api, model, body, scope, headers);
            } else if (json_scan::nesting_depth(body, cache::max_key_depth) <=
                       cache::max_key_depth) {
                made = cache::parsed_key_of(ctx.api, model, ctx.body, scope, headers);
            }
            if (made && short_text) {
                d.cache.remember_key(exact, *made);
            }
        }
    }
    if (made) {
        key = &*made;
    }
    return look_up_key(d, look, key);
}

awaitable<bool> look_up_elsewhere(deps& d, downstream::client_io& io, request_context& ctx,
                                  const routing::dispatch_plan& plan, cache_lookup& look) {
    std::optional<cache::request_key> made;
    if (is_large(ctx)) {
        // (Off this event loop: the key of a large body, never one remembered.)
        const std::string_view scope = look.policy->per_key ? std::string_view(ctx.key->id) : "";
        auto job = [api = ctx.api, model = resolved_model(plan), scope = std::string(scope),
                    headers = std::move(look.headers), as_sent = as_sent(ctx),
                    parsed = ctx.body_parsed](const lent_body& b) {
            return large_key(api, model, b, scope, headers, as_sent, parsed);
        };
        auto done = co_await on_pool(d, io, ctx, job_stage::later, std::move(job));
        if (!done) {
            co_return true; // (the request ended there)
        }
        made = std::move(*done);
        if (look_up_key(d, look, made ? &*made : nullptr) != lookup::elsewhere) {
            co_return false;
        }
    }
    // Not in memory: Redis, when the cache is shared.
    look.hit = co_await d.cache.find(look.digest);
    co_return false;
}

void note_miss(deps& d, request_context& ctx, cache_lookup& look) {
    if (look.policy == nullptr) {
        return;
    }
    ctx.log.response_cache = "miss";
    d.cache.memory().count(false, 0);
    ctx.cache_fill =
        std::make_unique<cache::pending_fill>(d.cache, std::move(look.digest), look.policy->ttl);
}

awaitable<void> answer_from_cache(deps& d, downstream::client_io& io, request_context& ctx,
                                  const cache::cached_answer& hit) {
    d.cache.memory().count(true, hit.cost_nano);
    if (hit.stream) {
        co_await replay_stream(d, io, ctx, hit);
        co_return;
    }
    // The stored answer's bytes are written as they are (the caller's `hit` holds them).
    note_hit(ctx, hit);
    auto [ec, n] = hit.lead.empty() ? co_await write_whole(io, ctx, d.ledger, d.fields, hit.status,
                                                           hit.body, hit.content_type, {})
                                    : co_await write_hit(io, ctx, d.ledger, d.fields, hit);
    if (ec) {
        ctx.keep_alive = false;
    }
}

std::unique_ptr<surface::stream_filter> recorded(request_context& ctx,
                                                 std::unique_ptr<surface::stream_filter> f) {
    if (!ctx.cache_fill) {
        return f;
    }
    ctx.cache_fill->restart();
    return std::make_unique<recording_filter>(std::move(f), *ctx.cache_fill);
}

void stream_ended(request_context& ctx, bool clean) {
    if (ctx.cache_fill) {
        ctx.cache_fill->stream_ended(clean, ctx.log.model, ctx.cost_nano);
    }
}

} // namespace michi::pipeline
