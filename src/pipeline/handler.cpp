#include "michi/pipeline/handler.hpp"

#include "michi/auth/key_store.hpp"
#include "michi/pipeline/exchange.hpp"
#include "michi/providers/token_estimate.hpp"

#include <algorithm>
#include <array>
#include <variant>

namespace michi::pipeline {
namespace {

constexpr std::string_view json_type = "application/json";

// Strips the query and the optional /v1 prefix: "/v1/models?x" -> "/models".
std::string normalize_path(std::string_view target) {
    target = target.substr(0, target.find('?'));
    if (target == "/v1") {
        return "/";
    }
    if (target.starts_with("/v1/")) {
        target.remove_prefix(3);
    }
    return std::string(target);
}

// The presented secret: "Authorization: Bearer X", else "x-api-key: X".
std::string_view presented_secret(const http::request<http::string_body>& req) {
    const auto auth = req[http::field::authorization];
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
        return auth.substr(7);
    }
    return req["x-api-key"];
}

// Admission stage 1: the presented secret must name a live key.
std::optional<gateway_error> authenticate(request_context& ctx) {
    const auto secret = presented_secret(ctx.req);
    if (secret.empty()) {
        return errors::invalid_api_key("Missing API key: send \"Authorization: Bearer <key>\".");
    }
    ctx.key = ctx.rt->keys.authenticate(secret);
    if (ctx.key == nullptr) {
        return errors::invalid_api_key();
    }
    ctx.log.key_id = ctx.key->id;
    ctx.log.key_class = config::to_string(ctx.key->cls);
    return std::nullopt;
}

double expected_cost(const config::model_config& m, const nlohmann::json& body) {
    const auto in = static_cast<double>(providers::estimate_prompt_tokens(body));
    double out = 256;
    for (const char* field : {"max_completion_tokens", "max_tokens"}) {
        const auto it = body.find(field);
        if (it != body.end() && it->is_number_unsigned()) {
            out = it->get<double>();
            break;
        }
    }
    return (in * m.input_per_mtok.value_or(0) + out * m.output_per_mtok.value_or(0)) / 1e6;
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

candidate make_candidate(const runtime& rt, config::model_config m) {
    candidate c;
    c.provider = &rt.cfg->providers.at(m.provider);
    const auto ep = rt.endpoints.find(m.provider);
    c.ep = ep == rt.endpoints.end() ? nullptr : &ep->second;
    c.model = std::move(m);
    return c;
}

// Resolves the requested name: a route, else a configured provider/model.
std::optional<dispatch_plan> resolve(const request_context& ctx, const std::string& name) {
    const auto& cfg = *ctx.rt->cfg;
    dispatch_plan plan;
    const auto route = cfg.routes.find(name);
    if (route != cfg.routes.end()) {
        plan.route = name;
        plan.attempt_timeout = route->second.attempt_timeout;
        plan.retries = route->second.retries;
        for (const auto& target : route->second.targets) {
            if (auto m = cfg.find_model(target)) {
                plan.candidates.push_back(make_candidate(*ctx.rt, std::move(*m)));
            }
        }
        if (route->second.strategy == config::route_strategy::cheapest) {
            const bool tools = uses_tools(ctx.body);
            const bool images = uses_images(ctx.body);
            const auto prompt = providers::estimate_prompt_tokens(ctx.body);
            std::erase_if(plan.candidates, [&](const candidate& c) {
                return (tools && !c.model.supports_tools) ||
                       (images && !c.model.supports_images) ||
                       (c.model.context_window && prompt > *c.model.context_window);
            });
            std::stable_sort(plan.candidates.begin(), plan.candidates.end(),
                             [&](const candidate& a, const candidate& b) {
                                 return expected_cost(a.model, ctx.body) <
                                        expected_cost(b.model, ctx.body);
                             });
        }
        return plan;
    }
    if (auto m = cfg.find_model(name)) {
        plan.candidates.push_back(make_candidate(*ctx.rt, std::move(*m)));
        return plan;
    }
    return std::nullopt;
}

// Admission for chat completions: synchronous, in memory, a fixed list of checks each
// of which passes or refuses. The result is a dispatch plan or an error.
std::variant<dispatch_plan, gateway_error> admit_chat(request_context& ctx) {
    if (auto err = authenticate(ctx)) {
        return *err;
    }
    ctx.body = nlohmann::json::parse(ctx.req.body(), nullptr, false);
    if (ctx.body.is_discarded() || !ctx.body.is_object()) {
        return errors::invalid_request("The request body is not a JSON object.");
    }
    const auto model = ctx.body.find("model");
    if (model == ctx.body.end() || !model->is_string() ||
        model->get_ref<const std::string&>().empty()) {
        return errors::invalid_request("Missing required parameter: 'model'.", "model");
    }
    const auto messages = ctx.body.find("messages");
    if (messages == ctx.body.end() || !messages->is_array() || messages->empty()) {
        return errors::invalid_request("'messages' must be a non-empty array.", "messages");
    }
    const auto stream = ctx.body.find("stream");
    if (stream != ctx.body.end() && !stream->is_boolean() && !stream->is_null()) {
        return errors::invalid_request("'stream' must be a boolean.", "stream");
    }
    ctx.log.stream = stream != ctx.body.end() && stream->is_boolean() && stream->get<bool>();
    const std::string& name = model->get_ref<const std::string&>();
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
                                           "\" can serve this request (context window, tools "
                                           "or images).",
                                       "model");
    }
    return std::move(*plan);
}

awaitable<void> chat_completions(worker& w, server::client_io& io, request_context& ctx) {
    auto admitted = admit_chat(ctx);
    if (auto* err = std::get_if<gateway_error>(&admitted)) {
        co_await reply_error(io, ctx, *err);
        co_return;
    }
    co_await run_exchange(w, io, ctx, std::get<dispatch_plan>(admitted));
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
    co_await io.write_response(res);
}

struct endpoint_entry {
    std::string_view path;
    http::verb method;
};

constexpr std::array<endpoint_entry, 4> endpoints{{
    {"/chat/completions", http::verb::post},
    {"/models", http::verb::get},
    {"/healthz", http::verb::get},
    {"/readyz", http::verb::get},
}};

} // namespace

http::response<http::string_body> json_response(const request_context& ctx, unsigned status,
                                                std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, json_type);
    res.set("x-request-id", ctx.request_id);
    res.body() = std::move(body);
    res.prepare_payload();
    res.keep_alive(ctx.keep_alive);
    return res;
}

awaitable<void> reply_error(server::client_io& io, request_context& ctx,
                            const gateway_error& err) {
    const bool anthropic = ctx.path == "/messages";
    auto res = json_response(ctx, err.status,
                             (anthropic ? err.anthropic_body() : err.openai_body()).dump());
    ctx.log.status = err.status;
    ctx.log.error_code = err.code;
    co_await io.write_response(res);
}

awaitable<void> handle(worker& w, server::client_io& io, request_context& ctx) {
    ctx.path = normalize_path(ctx.req.target());
    ctx.log.method = std::string(ctx.req.method_string());
    ctx.log.path = ctx.path;
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
        co_await io.write_response(res);
        co_return;
    }
    if (ctx.path == "/chat/completions") {
        co_await chat_completions(w, io, ctx);
    } else if (ctx.path == "/models") {
        co_await list_models(io, ctx);
    } else if (ctx.path == "/healthz") {
        ctx.log.status = 200;
        auto res = json_response(ctx, 200, R"({"status":"ok"})");
        co_await io.write_response(res);
    } else if (ctx.path == "/readyz") {
        const bool ready = w.state().ready && !w.state().draining;
        ctx.log.status = ready ? 200 : 503;
        auto res = json_response(ctx, ctx.log.status,
                                 ready ? R"({"status":"ready"})" : R"({"status":"not ready"})");
        co_await io.write_response(res);
    }
}

} // namespace michi::pipeline
