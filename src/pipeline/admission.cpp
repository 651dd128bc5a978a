#include "michi/pipeline/admission.hpp"

#include "michi/core/json_parse.hpp"
#include "michi/pipeline/body_scan.hpp"
#include "michi/pipeline/passthrough_scan.hpp"
#include "michi/surface/surface.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/token_estimate.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/routing/router.hpp"

#include <algorithm>

namespace michi::pipeline {
namespace {

// An embeddings request's inputs at most (OpenAI's own limit).
constexpr std::size_t max_embedding_inputs = 2048;

bool uses_tools(const nlohmann::json& body) {
    const auto it = body.find("tools");
    return it != body.end() && it->is_array() && !it->empty();
}

bool is_image_part(const nlohmann::json& part) {
    if (!part.is_object()) {
        return false;
    }
    const auto type = part.find("type");
    return type != part.end() && type->is_string() &&
           type->get_ref<const std::string&>() == "image_url";
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
        if (content != m.end() && content->is_array() &&
            std::any_of(content->begin(), content->end(), is_image_part)) {
            return true;
        }
    }
    return false;
}

// Checks the body of a chat or embeddings request (in OpenAI form).
result<void> validate_body(api_kind api, const nlohmann::json& body, body_facts& facts) {
    if (api == api_kind::count_tokens) {
        return ok(); // (counted, never sent to a model: any shape the count can read)
    }
    if (api != api_kind::embeddings) {
        const auto messages = body.find("messages");
        if (messages == body.end() || !messages->is_array() || messages->empty()) {
            return errors::invalid_request("'messages' must be a non-empty array.", "messages");
        }
        for (std::size_t i = 0; i < messages->size(); ++i) {
            const auto& m = (*messages)[i];
            const auto role = m.is_object() ? m.find("role") : m.end();
            if (!m.is_object() || role == m.end() || !role->is_string()) {
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
            return errors::invalid_request("'input' must be a non-empty string or array.", "input");
        }
        if (input->is_array() && input->size() > max_embedding_inputs) {
            return errors::invalid_request("'input' may hold at most " +
                                               std::to_string(max_embedding_inputs) + " items.",
                                           "input");
        }
    }
    const auto stream = body.find("stream");
    if (stream != body.end() && !stream->is_boolean() && !stream->is_null()) {
        return errors::invalid_request("'stream' must be a boolean.", "stream");
    }
    bool wants_usage = false;
    if (const auto opts = body.find("stream_options"); opts != body.end() && !opts->is_null()) {
        const auto usage = opts->is_object() ? opts->find("include_usage") : opts->end();
        if (!opts->is_object() ||
            (usage != opts->end() && !usage->is_boolean() && !usage->is_null())) {
            return errors::invalid_request(
                "'stream_options' must be an object whose 'include_usage' is a boolean.",
                "stream_options");
        }
        wants_usage = usage != opts->end() && usage->is_boolean() && usage->get<bool>();
    }
    facts.wants_usage = wants_usage;
    facts.stream = api != api_kind::embeddings && stream != body.end() && stream->is_boolean() &&
                   stream->get<bool>();
    return ok();
}

} // namespace

// The body parsed (OpenAI form: /v1/messages is translated), checked, and its facts read
// from the parse: the full path.
result<parsed_body> parse_request_body(api_kind api, std::string_view bytes, unsigned limit) {
    auto parsed = json_parse::parse(bytes, limit);
    if (parsed.why == json_parse::failure::too_deep) {
        return errors::json_too_deep(limit);
    }
    if (!parsed || !parsed.value.is_object()) {
        return errors::invalid_request("The request body is not a JSON object.");
    }
    auto in = std::move(parsed.value);
    // Another API's request becomes the pivot form (Chat Completions) the other providers
    // are reached in.
    if (auto pivot = surface::to_pivot(api, std::move(in)); !pivot) {
        return std::move(pivot.error());
    } else {
        in = std::move(pivot.value());
    }
    parsed_body out;
    out.body = std::move(in);
    const auto model = out.body.find("model");
    if (model == out.body.end() || !model->is_string() ||
        model->get_ref<const std::string&>().empty()) {
        return errors::invalid_request("Missing required parameter: 'model'.", "model");
    }
    auto& f = out.facts;
    if (auto checked = validate_body(api, out.body, f); !checked) {
        return std::move(checked.error());
    }
    // Estimated once: routing (cheapest) and the guards' reservation both use it.
    f.model = model->get<std::string>();
    f.prompt_tokens = providers::estimate_prompt_tokens(out.body);
    f.max_output = routing::expected_output_tokens(out.body);
    f.tools = uses_tools(out.body);
    f.images = uses_images(out.body);
    f.has_stream_options = out.body.contains("stream_options");
    return out;
}

std::optional<body_facts> scan_request_body(api_kind api, std::string_view bytes, unsigned limit) {
    if (api == api_kind::chat) {
        return scan_chat_body(bytes);
    }
    if (api != api_kind::embeddings) {
        return scan_passthrough_body(bytes, api, limit);
    }
    return std::nullopt;
}

void take_parsed_body(request_context& ctx, parsed_body&& p) {
    ctx.body = std::move(p.body);
    ctx.body_parsed = true;
    ctx.client_model = p.facts.model;
    // (Where the scan found the model's bytes stays known.)
    auto& f = ctx.facts;
    f.model = std::move(p.facts.model);
    f.stream = p.facts.stream;
    f.wants_usage = p.facts.wants_usage;
    f.has_stream_options = p.facts.has_stream_options;
    f.tools = p.facts.tools;
    f.images = p.facts.images;
    f.max_output = p.facts.max_output;
    f.prompt_tokens = p.facts.prompt_tokens;
}

void take_scanned_body(request_context& ctx, body_facts&& facts) {
    ctx.client_model = facts.model;
    ctx.facts = std::move(facts);
}

namespace {

// The body parsed into ctx.body, checked, and its facts into ctx.
result<void> parse_body(request_context& ctx) {
    auto parsed = parse_request_body(ctx.api, ctx.req.body(), json_parse::max_depth());
    if (!parsed) {
        return std::move(parsed.error());
    }
    take_parsed_body(ctx, std::move(parsed.value()));
    return ok();
}

// Reads a plain request's facts from its bytes (body_scan, passthrough_scan); false when
// the full parse has to decide.
bool scan_body(request_context& ctx) {
    auto facts = scan_request_body(ctx.api, ctx.req.body(), json_parse::max_depth());
    if (!facts) {
        return false;
    }
    take_scanned_body(ctx, std::move(*facts));
    return true;
}

} // namespace

bool needs_parsed_body(const request_context& ctx, const routing::dispatch_plan& plan) {
    const auto view = request_view_of(ctx);
    if (ctx.api == api_kind::count_tokens) {
        const auto& first = plan.candidates.front();
        return !first.provider->impl->passthrough(*first.provider, ctx.api);
    }
    return std::any_of(plan.candidates.begin(), plan.candidates.end(),
                       [&](const routing::candidate& c) {
                           return c.provider->impl->needs_parsed_body(*c.provider, view);
                       });
}

namespace {

// A key with a USD budget may only use priced models; then the ledger's request into req:
// the estimates to hold.
result<void> guard_request(request_context& ctx, routing::dispatch_plan& plan,
                           guard::admission_request& req) {
    if (ctx.api == api_kind::count_tokens) {
        return ok(); // a count is free: no budget, no rate limit
    }
    const auto limits = ctx.rt->cfg->effective_limits(*ctx.key);
    const bool has_budget = limits.daily_usd.has_value() || limits.monthly_usd.has_value();
    if (has_budget) {
        const std::string first = plan.candidates.front().model->name;
        std::erase_if(plan.candidates,
                      [](const routing::candidate& c) { return !routing::is_priced(*c.model); });
        if (plan.candidates.empty()) {
            return errors::model_not_priced(first);
        }
    }
    const auto out = ctx.api == api_kind::embeddings ? 0 : ctx.facts.max_output;
    req.key_id = ctx.key->id;
    req.limits = limits;
    req.est_tokens = ctx.facts.prompt_tokens + out;
    req.est_cost_usd =
        routing::cost_usd(*plan.candidates.front().model, ctx.facts.prompt_tokens, out);
    if (ctx.key->cls == config::key_class::agent && limits.loop_max) {
        // A 64-bit hash is fingerprint enough: it is only compared with the same key's
        // own recent bodies (a collision could refuse nothing but the sender's own
        // request), at a fraction of a SHA-256's cost.
        req.loop_fingerprint =
            ctx.body_hash ? *ctx.body_hash : std::hash<std::string_view>{}(ctx.req.body());
    }
    return ok();
}

// The OpenAI-shaped refusal for a guard, with its retry-after.
gateway_error guard_error(request_context& ctx, const guard::refusal& r) {
    ctx.retry_after = std::max(r.retry_after, std::chrono::seconds(1));
    switch (r.kind) {
    case guard::refusal_kind::budget_daily:
    case guard::refusal_kind::budget_monthly: return errors::budget_exceeded(r.message);
    case guard::refusal_kind::loop: return errors::loop_detected(r.message);
    case guard::refusal_kind::rpm:
    case guard::refusal_kind::tpm:
    case guard::refusal_kind::revoked: // (answered by take_admission)
        break;
    }
    return errors::rate_limit_exceeded(r.message);
}

} // namespace

providers::request_view request_view_of(const request_context& ctx) {
    providers::request_view v;
    v.api = ctx.api;
    v.raw_body = ctx.req.body();
    v.parsed = ctx.body_parsed ? &ctx.body : nullptr;
    v.model_begin = ctx.facts.model_begin;
    v.model_end = ctx.facts.model_end;
    v.stream = ctx.facts.stream;
    v.wants_usage = ctx.facts.wants_usage;
    v.has_stream_options = ctx.facts.has_stream_options;
    v.prompt_tokens = ctx.facts.prompt_tokens;
    v.anthropic_version = ctx.req[downstream::request::extra::anthropic_version];
    v.anthropic_beta = ctx.req[downstream::request::extra::anthropic_beta];
    return v;
}

result<void> admit_key(request_context& ctx, auth::authenticator& auth) {
    std::string revoked_id;
    const auto secret = auth::presented_secret(ctx.req[http::field::authorization],
                                               ctx.req[downstream::request::extra::x_api_key]);
    if (auto who = auth.authenticate(secret, ctx.rt->keys, ctx.who, revoked_id, ctx.key_memo);
        !who) {
        ctx.log.key_id = std::move(revoked_id);
        return std::move(who.error());
    }
    ctx.key = ctx.who.key;
    ctx.log.key_id = ctx.key->id;
    ctx.log.key_class = config::to_string(ctx.key->cls);
    return ok();
}

result<void> admit_route(request_context& ctx, routing::dispatch_plan& plan) {
    ctx.log.stream = ctx.facts.stream;
    const std::string& name = ctx.client_model;
    ctx.log.route = name;
    routing::request_needs needs;
    needs.tools = ctx.facts.tools;
    needs.images = ctx.facts.images;
    needs.priced_only = ctx.api != api_kind::embeddings && ctx.api != api_kind::count_tokens;
    needs.prompt_tokens = ctx.facts.prompt_tokens;
    needs.max_output = ctx.facts.max_output;
    auto resolved = routing::resolve(*ctx.rt->cfg, ctx.rt->providers, ctx.rt->routes, name, needs,
                                     *ctx.key, plan);
    if (!resolved) {
        return resolved;
    }
    ctx.route_reason = plan.reason;
    return ok();
}

result<void> admit_guard(request_context& ctx, admitted& out) {
    return guard_request(ctx, out.plan, out.guard_request);
}

result<void> admit(request_context& ctx, auth::authenticator& auth, admitted& out) {
    if (auto who = admit_key(ctx, auth); !who) {
        return who;
    }
    if (!scan_body(ctx)) {
        if (auto parsed = parse_body(ctx); !parsed) {
            return std::move(parsed.error());
        }
    }
    if (auto routed = admit_route(ctx, out.plan); !routed) {
        return routed;
    }
    if (!ctx.body_parsed && needs_parsed_body(ctx, out.plan)) {
        if (auto parsed = parse_body(ctx); !parsed) {
            return std::move(parsed.error());
        }
    }
    return admit_guard(ctx, out);
}

result<void> take_admission(request_context& ctx, guard::admission&& answer,
                            const guard::rate_headers& headers, obs::metrics& metrics) {
    if (auto* down = std::get_if<guard::ledger_unavailable>(&answer)) {
        return errors::ledger_unavailable(down->message);
    }
    ctx.rate = headers;
    if (auto* refused = std::get_if<guard::refusal>(&answer)) {
        // A key revoked on another replica, found by the shared ledger, is answered as
        // authentication answers a revoked key, and is no guard's.
        if (refused->kind == guard::refusal_kind::revoked) {
            return errors::revoked_api_key();
        }
        static constexpr const char* labels[] = {"budget", "budget", "rpm", "tpm", "loop"};
        metrics.on_rate_limited(labels[static_cast<int>(refused->kind)]);
        return guard_error(ctx, *refused);
    }
    ctx.reservation = std::move(std::get<guard::reservation>(answer));
    return ok();
}

} // namespace michi::pipeline
