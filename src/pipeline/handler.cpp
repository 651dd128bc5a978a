#include "michi/pipeline/handler.hpp"

#include "michi/admin/admin_api.hpp"
#include "michi/app/shared_state.hpp"
#include "michi/auth/key_store.hpp"
#include "michi/core/http_wire.hpp"
#include "michi/core/secret.hpp"
#include "michi/guard/redis_ledger.hpp"
#include "michi/pipeline/body_scan.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/pipeline/exchange.hpp"
#include "michi/providers/token_estimate.hpp"

#include <algorithm>
#include <array>
#include <variant>

namespace michi::pipeline {
namespace {

constexpr std::string_view json_type = "application/json";

// Strips the query and the optional /v1 prefix: "/v1/models?x" -> "/models", into `out`.
void normalize_path(std::string_view target, std::string& out) {
    target = target.substr(0, target.find('?'));
    if (target == "/v1") {
        target = "/";
    } else if (target.starts_with("/v1/")) {
        target.remove_prefix(3);
    }
    out.assign(target);
}

// The presented secret: "Authorization: Bearer X", else "x-api-key: X".
std::string_view presented_secret(const server::request& req) {
    const auto auth = req[http::field::authorization];
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
        return auth.substr(7);
    }
    return req["x-api-key"];
}

// Admission stage 1: the presented secret must name a live key, of the config file or
// made through the admin API.
std::optional<gateway_error> authenticate(request_context& ctx) {
    const auto secret = presented_secret(ctx.req);
    if (secret.empty()) {
        return errors::invalid_api_key("Missing API key: send \"Authorization: Bearer <key>\".");
    }
    if (secret.size() > auth::key_store::max_secret_bytes) {
        return errors::invalid_api_key();
    }
    // Once, for both key sets; into a string of this thread's, whose room is reused (this
    // does not suspend, and the digest is not kept).
    thread_local std::string digest;
    sha256_raw(secret, digest);
    ctx.key = ctx.rt->keys.find_digest(digest);
    // This thread's copy of the admin keys, refreshed when they change (nothing below keeps
    // a pointer into them: an admin key is copied into the context).
    thread_local published<store::key_snapshot>::reader admin_view;
    auto& registry = ctx.state->key_registry();
    if (registry.changed_elsewhere()) {
        // Another process on the same SQLite file (or this one) wrote keys: read them now,
        // so that a key revoked there is refused here from this request on (rare: a few
        // reads of the file per change, on the thread that notices first).
        registry.refresh();
    }
    const auto& admin_keys = admin_view.get(registry.source());
    if (ctx.key == nullptr) {
        // Not in the config file: perhaps a key made through the admin API.
        if (const auto* a = admin_keys->find_digest(digest)) {
            ctx.admin_key = a->as_key_config();
            ctx.key = &*ctx.admin_key;
        }
    }
    if (ctx.key == nullptr) {
        return errors::invalid_api_key();
    }
    if (admin_keys->revoked.contains(ctx.key->id)) {
        ctx.log.key_id = ctx.key->id;
        ctx.key = nullptr;
        return errors::revoked_api_key();
    }
    ctx.log.key_id = ctx.key->id;
    ctx.log.key_class = config::to_string(ctx.key->cls);
    return std::nullopt;
}

bool uses_tools(const nlohmann::json& body) {
    const auto it = body.find("tools");
    return it != body.end() && it->is_array() && !it->empty();
}

bool uses_images(const nlohmann::json& body) {
    const auto messages = body.find("messages");
    if (messages == body.end() || !messages->is_array()) {
        return false;
    }
    for (const auto& m : *messages) {
        if (!m.is_object()) {
            continue;
        }
        const auto content = m.find("content");
        if (content == m.end() || !content->is_array()) {
            continue;
        }
        for (const auto& part : *content) {
            if (part.is_object() && part.value("type", "") == "image_url") {
                return true;
            }
        }
    }
    return false;
}

candidate make_candidate(const runtime& rt, model_ref m) {
    const auto ep = rt.endpoints.find(m->provider);
    const auto* provider = &rt.cfg->providers.at(m->provider);
    return candidate{std::move(m), provider, ep == rt.endpoints.end() ? nullptr : &ep->second};
}

// A configured model by name, pointed at; else one made from the built-in table.
std::optional<model_ref> find_model(const config::config& cfg, const std::string& name) {
    if (const auto it = cfg.models.find(name); it != cfg.models.end()) {
        return model_ref::configured(it->second);
    }
    if (auto made = cfg.find_model(name)) {
        return model_ref::made(std::move(*made));
    }
    return std::nullopt;
}

// Orders candidates by expected cost for this request, dropping those that cannot serve
// it (context window, tools, images), and says why in the route reason.
void apply_cheapest(request_context& ctx, dispatch_plan& plan) {
    const bool tools = ctx.facts.tools;
    const bool images = ctx.facts.images;
    const auto prompt = ctx.facts.prompt_tokens;
    const auto out = ctx.facts.max_output;
    std::string excluded;
    std::erase_if(plan.candidates, [&](const candidate& c) {
        const char* why = nullptr;
        if (tools && !c.model->supports_tools) {
            why = "no tools";
        } else if (images && !c.model->supports_images) {
            why = "no images";
        } else if (c.model->context_window && prompt + out > *c.model->context_window) {
            why = "context window";
        } else if (ctx.api == api_kind::chat && !is_priced(*c.model)) {
            why = "no price";
        }
        if (why != nullptr) {
            excluded += (excluded.empty() ? "" : ", ") + c.model->name + " (" + why + ")";
        }
        return why != nullptr;
    });
    std::stable_sort(plan.candidates.begin(), plan.candidates.end(),
                     [&](const candidate& a, const candidate& b) {
                         return cost_usd(*a.model, prompt, out) < cost_usd(*b.model, prompt, out);
                     });
    if (plan.candidates.empty()) {
        ctx.route_reason = "no eligible target; excluded " + excluded;
        return;
    }
    char cost[32];
    std::snprintf(cost, sizeof cost, "%.6f", cost_usd(*plan.candidates.front().model, prompt, out));
    ctx.route_reason = "cheapest of " + std::to_string(plan.candidates.size()) +
                       " eligible for ~" + std::to_string(prompt) + " prompt + " +
                       std::to_string(out) + " output tokens: " +
                       plan.candidates.front().model->name + " ($" + cost + ")";
    if (!excluded.empty()) {
        ctx.route_reason += "; excluded " + excluded;
    }
}

// Resolves the requested name, in order: a route, `auto`, a configured provider/model.
std::optional<dispatch_plan> resolve(request_context& ctx, const std::string& name) {
    const auto& cfg = *ctx.rt->cfg;
    dispatch_plan plan;
    const auto route = cfg.routes.find(name);
    if (route != cfg.routes.end()) {
        plan.route = name;
        plan.attempt_timeout = route->second.attempt_timeout;
        plan.retries = route->second.retries;
        for (const auto& target : route->second.targets) {
            if (auto m = find_model(cfg, target)) {
                plan.candidates.push_back(make_candidate(*ctx.rt, std::move(*m)));
            }
        }
        if (route->second.strategy == config::route_strategy::cheapest) {
            apply_cheapest(ctx, plan);
        }
        return plan;
    }
    if (name == "auto") {
        // No route named auto: the cheapest of every configured model that fits.
        plan.route = name;
        for (const auto& [model_name, m] : cfg.models) {
            if (cfg.providers.at(m.provider).type != config::provider_type::echo) {
                plan.candidates.push_back(make_candidate(*ctx.rt, model_ref::configured(m)));
            }
        }
        apply_cheapest(ctx, plan);
        return plan;
    }
    if (auto m = find_model(cfg, name)) {
        plan.candidates.push_back(make_candidate(*ctx.rt, std::move(*m)));
        return plan;
    }
    return std::nullopt;
}

// The OpenAI-shaped refusal for a guard, with its retry-after.
gateway_error guard_error(request_context& ctx, const guard::refusal& r) {
    ctx.retry_after = std::max(r.retry_after, std::chrono::seconds(1));
    switch (r.kind) {
    case guard::refusal_kind::budget_daily:
    case guard::refusal_kind::budget_monthly:
        return {403, "insufficient_quota", "budget_exceeded", r.message, {}};
    case guard::refusal_kind::loop:
        return {429, "rate_limit_error", "loop_detected", r.message, {}};
    case guard::refusal_kind::rpm:
    case guard::refusal_kind::tpm:
    case guard::refusal_kind::revoked: // (refusal_error answers it)
        break;
    }
    return {429, "rate_limit_error", "rate_limit_exceeded", r.message, {}};
}

// A guard's refusal, counted (a key revoked on another replica, found by the shared ledger,
// is answered as authentication answers a revoked key, and is no guard's).
gateway_error refusal_error(request_context& ctx, const guard::refusal& refused) {
    if (refused.kind == guard::refusal_kind::revoked) {
        return errors::revoked_api_key();
    }
    static constexpr const char* labels[] = {"budget", "budget", "rpm", "tpm", "loop"};
    ctx.state->metrics().on_rate_limited(labels[static_cast<int>(refused.kind)]);
    return guard_error(ctx, refused);
}

// Admission, guard stage: a key with a USD budget may only use priced models; then the
// ledger checks budgets, RPM, TPM and the loop guard and reserves the estimates.
std::optional<gateway_error> admit_guards(request_context& ctx, dispatch_plan& plan) {
    const auto limits = ctx.rt->cfg->effective_limits(*ctx.key);
    const bool has_budget = limits.daily_usd.has_value() || limits.monthly_usd.has_value();
    if (has_budget) {
        const std::string first = plan.candidates.front().model->name;
        std::erase_if(plan.candidates, [](const candidate& c) { return !is_priced(*c.model); });
        if (plan.candidates.empty()) {
            return errors::model_not_priced(first);
        }
    }
    const auto out = ctx.api == api_kind::chat ? ctx.facts.max_output : 0;
    guard::admission_request req;
    req.key_id = ctx.key->id;
    req.limits = limits;
    req.est_tokens = ctx.facts.prompt_tokens + out;
    req.est_cost_usd = cost_usd(*plan.candidates.front().model, ctx.facts.prompt_tokens, out);
    if (ctx.key->cls == config::key_class::agent && limits.loop_max) {
        // A 64-bit hash is fingerprint enough: it is only compared with the same key's
        // own recent bodies (a collision could refuse nothing but the sender's own
        // request), at a fraction of a SHA-256's cost.
        req.loop_fingerprint = std::hash<std::string_view>{}(ctx.req.body());
    }
    if (ctx.shared_ledger != nullptr) { // asked of Redis by admit_shared, awaited
        ctx.shared_admission = std::move(req);
        return std::nullopt;
    }
    guard::rate_headers headers;
    auto result = ctx.ledger->admit(req, headers);
    ctx.rate = headers;
    if (auto* refused = std::get_if<guard::refusal>(&result)) {
        return refusal_error(ctx, *refused);
    }
    ctx.reservation = std::move(std::get<guard::reservation>(result));
    return std::nullopt;
}

// The guard stage through the ledger shared in Redis, then the exchange (a coroutine of its
// own: the in-process path's frame does not carry this one's state).
awaitable<void> admit_shared_and_run(worker& w, server::client_io& io, request_context& ctx,
                                     dispatch_plan& plan) {
    guard::rate_headers headers;
    auto result = co_await ctx.shared_ledger->admit(*ctx.shared_admission, headers);
    ctx.shared_admission.reset();
    std::optional<gateway_error> err;
    if (auto* down = std::get_if<guard::ledger_unavailable>(&result)) {
        err = errors::ledger_unavailable(down->message);
    } else {
        ctx.rate = headers;
        if (auto* refused = std::get_if<guard::refusal>(&result)) {
            err = refusal_error(ctx, *refused);
        } else {
            ctx.reservation = std::move(std::get<guard::reservation>(result));
        }
    }
    if (err) {
        co_await reply_error(io, ctx, *err);
        co_return;
    }
    co_await run_exchange(w, io, ctx, plan);
}

// Checks the body of a chat or embeddings request (in OpenAI form).
std::optional<gateway_error> validate_body(request_context& ctx) {
    const auto& body = ctx.body;
    if (ctx.api == api_kind::chat) {
        const auto messages = body.find("messages");
        if (messages == body.end() || !messages->is_array() || messages->empty()) {
            return errors::invalid_request("'messages' must be a non-empty array.", "messages");
        }
        for (std::size_t i = 0; i < messages->size(); ++i) {
            const auto& m = (*messages)[i];
            if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
                return errors::invalid_request("messages[" + std::to_string(i) +
                                                   "] must be an object with a string 'role'.",
                                               "messages");
            }
        }
    } else {
        const auto input = body.find("input");
        const bool ok = input != body.end() &&
                        ((input->is_string() && !input->get_ref<const std::string&>().empty()) ||
                         (input->is_array() && !input->empty()));
        if (!ok) {
            return errors::invalid_request("'input' must be a non-empty string or array.",
                                           "input");
        }
    }
    const auto stream = body.find("stream");
    if (stream != body.end() && !stream->is_boolean() && !stream->is_null()) {
        return errors::invalid_request("'stream' must be a boolean.", "stream");
    }
    if (const auto opts = body.find("stream_options"); opts != body.end() && !opts->is_null()) {
        const auto usage = opts->is_object() ? opts->find("include_usage") : opts->end();
        if (!opts->is_object() ||
            (usage != opts->end() && !usage->is_boolean() && !usage->is_null())) {
            return errors::invalid_request(
                "'stream_options' must be an object whose 'include_usage' is a boolean.",
                "stream_options");
        }
        ctx.wants_usage = usage != opts->end() && *usage == true;
    }
    ctx.log.stream = ctx.api == api_kind::chat && stream != body.end() &&
                     stream->is_boolean() && stream->get<bool>();
    return std::nullopt;
}

// The body parsed into ctx.body (OpenAI form: /v1/messages is translated), checked, and
// its facts read from the parse: the full path.
std::optional<gateway_error> parse_body(request_context& ctx) {
    if (ctx.out == dialect::openai) {
        ctx.body = nlohmann::json::parse(ctx.req.body(), nullptr, false);
        if (ctx.body.is_discarded() || !ctx.body.is_object()) {
            return errors::invalid_request("The request body is not a JSON object.");
        }
    } else {
        // /v1/messages: the Anthropic request becomes the OpenAI one the pipeline speaks.
        const auto in = nlohmann::json::parse(ctx.req.body(), nullptr, false);
        if (in.is_discarded() || !in.is_object()) {
            return errors::invalid_request("The request body is not a JSON object.");
        }
        auto converted = providers::anthropic::request_from_messages(in);
        if (auto* err = std::get_if<providers::translate_error>(&converted)) {
            return errors::invalid_request(err->message, err->param);
        }
        ctx.body = std::move(std::get<nlohmann::json>(converted));
    }
    ctx.body_parsed = true;
    const auto model = ctx.body.find("model");
    if (model == ctx.body.end() || !model->is_string() ||
        model->get_ref<const std::string&>().empty()) {
        return errors::invalid_request("Missing required parameter: 'model'.", "model");
    }
    if (auto err = validate_body(ctx)) {
        return *err;
    }
    ctx.client_model = model->get<std::string>();
    // Estimated once: routing (cheapest) and the guards' reservation both use it.
    ctx.facts.model = ctx.client_model;
    ctx.facts.stream = ctx.log.stream;
    ctx.facts.wants_usage = ctx.wants_usage;
    ctx.facts.prompt_tokens = providers::estimate_prompt_tokens(ctx.body);
    ctx.facts.max_output = expected_output_tokens(ctx.body);
    ctx.facts.tools = uses_tools(ctx.body);
    ctx.facts.images = uses_images(ctx.body);
    ctx.facts.has_stream_options = ctx.body.contains("stream_options");
    return std::nullopt;
}

// Reads a plain chat request's facts from its bytes (body_scan); false when the full
// parse has to decide.
bool scan_body(request_context& ctx) {
    if (ctx.out != dialect::openai || ctx.api != api_kind::chat) {
        return false;
    }
    auto facts = scan_chat_body(ctx.req.body());
    if (!facts) {
        return false;
    }
    ctx.client_model = facts->model;
    ctx.log.stream = facts->stream;
    ctx.wants_usage = facts->wants_usage;
    ctx.facts = std::move(*facts);
    return true;
}

// Whether a target of the plan reads the parsed body: every provider but the OpenAI type
// (translated, Azure's rewrite, echo), and a stream whose stream_options must be merged.
bool needs_parsed_body(const request_context& ctx, const dispatch_plan& plan) {
    if (ctx.log.stream && !ctx.wants_usage && ctx.facts.has_stream_options) {
        return true;
    }
    return std::any_of(plan.candidates.begin(), plan.candidates.end(), [](const candidate& c) {
        return c.provider->type != config::provider_type::openai;
    });
}

// Admission: synchronous, in memory, a fixed list of checks each of which passes or
// refuses — key, body, model/route, allow-list, guards. A dispatch plan or an error.
std::variant<dispatch_plan, gateway_error> admit(request_context& ctx) {
    if (auto err = authenticate(ctx)) {
        return *err;
    }
    if (!scan_body(ctx)) {
        if (auto err = parse_body(ctx)) {
            return *err;
        }
    }
    const std::string name = ctx.client_model;
    ctx.log.route = name;
    auto plan = resolve(ctx, name);
    if (!plan) {
        return errors::model_not_found(name);
    }
    if (!auth::model_allowed(*ctx.key, name)) {
        return errors::model_not_allowed(name);
    }
    if (plan->candidates.empty()) {
        return errors::invalid_request("No target of route \"" + name +
                                           "\" can serve this request: " + ctx.route_reason +
                                           ".",
                                       "model");
    }
    if (!ctx.body_parsed && needs_parsed_body(ctx, *plan)) {
        if (auto err = parse_body(ctx)) {
            return *err;
        }
    }
    if (auto err = admit_guards(ctx, *plan)) {
        return *err;
    }
    return std::move(*plan);
}

nlohmann::json model_entry(const std::string& id, const std::string& owner) {
    return {{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", owner}};
}

awaitable<void> list_models(server::client_io& io, request_context& ctx) {
    if (const auto err = authenticate(ctx)) {
        co_await reply_error(io, ctx, *err);
        co_return;
    }
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
    auto res = json_response(ctx, 200, nlohmann::json{{"object", "list"}, {"data", data}}.dump());
    ctx.log.status = 200;
    co_await write_reply(io, ctx, res);
}

struct endpoint_entry {
    std::string_view path;
    http::verb method;
};

constexpr std::array<endpoint_entry, 6> endpoints{{
    {"/chat/completions", http::verb::post},
    {"/embeddings", http::verb::post},
    {"/messages", http::verb::post},
    {"/models", http::verb::get},
    {"/healthz", http::verb::get},
    {"/readyz", http::verb::get},
}};

} // namespace

void settle(request_context& ctx) {
    if (!ctx.reservation || ctx.reservation->settled) {
        return;
    }
    const std::uint64_t tokens = ctx.log.tokens_in + ctx.log.tokens_out;
    if (!ctx.reservation->id.empty() && ctx.shared_ledger != nullptr) {
        ctx.shared_ledger->settle(*ctx.reservation, ctx.log.cost_usd, tokens);
    } else if (ctx.ledger != nullptr) {
        ctx.ledger->settle(*ctx.reservation, ctx.log.cost_usd, tokens);
    }
}

void append_guard_fields(std::string& out, const request_context& ctx) {
    wire::append_field(out, "x-request-id", ctx.request_id);
    const auto secs = [](std::chrono::seconds s) {
        return static_cast<std::uint64_t>(std::max<std::int64_t>(s.count(), 0));
    };
    if (ctx.rate) {
        const auto& r = *ctx.rate;
        if (r.has_requests) {
            wire::append_field(out, "x-ratelimit-limit-requests", r.limit_requests);
            wire::append_field(out, "x-ratelimit-remaining-requests", r.remaining_requests);
            wire::append_field(out, "x-ratelimit-reset-requests", secs(r.reset_requests), "s");
        }
        if (r.has_tokens) {
            wire::append_field(out, "x-ratelimit-limit-tokens", r.limit_tokens);
            wire::append_field(out, "x-ratelimit-remaining-tokens", r.remaining_tokens);
            wire::append_field(out, "x-ratelimit-reset-tokens", secs(r.reset_tokens), "s");
        }
    }
    if (ctx.retry_after) {
        wire::append_field(out, "retry-after", secs(*ctx.retry_after));
    }
}

http::response<http::string_body> json_response(const request_context& ctx, unsigned status,
                                                std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, json_type);
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(ctx.keep_alive);
    return res;
}

awaitable<error_code> write_reply(server::client_io& io, const request_context& ctx,
                                  http::response<http::string_body>& res) {
    std::string fields;
    fields.reserve(320);
    append_guard_fields(fields, ctx);
    auto [ec, n] = co_await io.write_response(res, fields);
    co_return ec;
}

awaitable<void> reply_error(server::client_io& io, request_context& ctx,
                            const gateway_error& err) {
    const bool anthropic = ctx.out == dialect::anthropic;
    auto res = json_response(ctx, err.status,
                             (anthropic ? err.anthropic_body() : err.openai_body()).dump());
    ctx.log.status = err.status;
    ctx.log.error_code = err.code;
    settle(ctx);
    co_await write_reply(io, ctx, res);
}

awaitable<void> handle(worker& w, server::client_io& io, request_context& ctx) {
    normalize_path(ctx.req.target(), ctx.path);
    ctx.log.method = std::string(ctx.req.method_string());
    ctx.log.path = ctx.path;
    if (admin::owns(ctx.path)) {
        co_await admin::handle(w, io, ctx);
        co_return;
    }
    const auto it = std::find_if(endpoints.begin(), endpoints.end(),
                                 [&](const endpoint_entry& e) { return e.path == ctx.path; });
    if (it == endpoints.end()) {
        const auto err = errors::not_found(std::string(ctx.req.target()));
        co_await reply_error(io, ctx, err);
        co_return;
    }
    if (ctx.req.method() != it->method) {
        ctx.log.status = 405;
        auto res = json_response(
            ctx, 405,
            errors::method_not_allowed(ctx.log.method, ctx.path).openai_body().dump());
        res.set(http::field::allow, http::to_string(it->method));
        ctx.log.error_code = "method_not_allowed";
        co_await write_reply(io, ctx, res);
        co_return;
    }
    if (ctx.path == "/chat/completions" || ctx.path == "/embeddings" || ctx.path == "/messages") {
        ctx.api = ctx.path == "/embeddings" ? api_kind::embeddings : api_kind::chat;
        ctx.out = ctx.path == "/messages" ? dialect::anthropic : dialect::openai;
        // (In this frame rather than a coroutine of its own: one frame fewer per request.)
        auto admitted = admit(ctx);
        if (auto* err = std::get_if<gateway_error>(&admitted)) {
            co_await reply_error(io, ctx, *err);
            co_return;
        }
        if (ctx.shared_admission) {
            co_await admit_shared_and_run(w, io, ctx, std::get<dispatch_plan>(admitted));
            co_return;
        }
        co_await run_exchange(w, io, ctx, std::get<dispatch_plan>(admitted));
    } else if (ctx.path == "/models") {
        co_await list_models(io, ctx);
    } else if (ctx.path == "/healthz") {
        ctx.log.status = 200;
        auto res = json_response(ctx, 200, R"({"status":"ok"})");
        co_await write_reply(io, ctx, res);
    } else if (ctx.path == "/readyz") {
        const bool ready = w.state().ready && !w.state().draining;
        ctx.log.status = ready ? 200 : 503;
        auto res = json_response(ctx, ctx.log.status,
                                 ready ? R"({"status":"ready"})" : R"({"status":"not ready"})");
        co_await write_reply(io, ctx, res);
    }
}

} // namespace michi::pipeline
