#include "michi/admin/admin_api.hpp"

#include "michi/admin/admin_input.hpp"
#include "michi/admin/assets.hpp"
#include "michi/admin/balance_api.hpp"
#include "michi/admin/models_api.hpp"
#include "michi/core/error.hpp"
#include "michi/core/http_wire.hpp"
#include "michi/core/json_parse.hpp"
#include "michi/core/safe_text.hpp"
#include "michi/core/url_text.hpp"
#include "michi/core/secret.hpp"
#include "michi/obs/metrics.hpp"
#include "michi/core/offload.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/store/key_registry.hpp"
#include "michi/store/request_log.hpp"

#include <boost/asio/experimental/parallel_group.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>

namespace michi::admin {
namespace {

using json = nlohmann::json;
using request_context = downstream::call;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Writes res with the request's id.
awaitable<void> write_answer(downstream::client_io& io, request_context& ctx,
                             http::response<http::string_body>& res) {
    std::string fields;
    wire::append_field(fields, "x-request-id", ctx.request_id);
    co_await downstream::write_reply(io, ctx, res, fields);
}

// Writes an OpenAI-shaped error with the request's id.
awaitable<void> write_failure(downstream::client_io& io, request_context& ctx,
                              const gateway_error& err) {
    std::string fields;
    wire::append_field(fields, "x-request-id", ctx.request_id);
    co_await downstream::write_error(io, ctx, err, dialect::openai, fields);
}

awaitable<void> send(downstream::client_io& io, request_context& ctx, unsigned status,
                     const json& body) {
    auto res = downstream::json_response(ctx, status, dump(body));
    co_await write_answer(io, ctx, res);
}

json opt(const std::optional<std::uint64_t>& v) { return v ? json(*v) : json(nullptr); }
json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// Keys' spend and live rates, from the ledger that keeps them (zeros, and a warning in the
// log naming the keys, when the shared one cannot be asked). With the shared ledger, every
// key's script is sent before any reply is awaited (one round trip in all on the worker's
// pipelined connection, not one a key).
awaitable<std::vector<guard::key_usage>> usages_of(deps& d, std::vector<std::string> ids) {
    std::vector<guard::key_usage> out(ids.size());
    using usage_op = decltype(net::co_spawn(d.ex, d.ledger.figures(std::string()), net::deferred));
    std::vector<usage_op> ops;
    ops.reserve(ids.size());
    for (const auto& id : ids) {
        ops.push_back(net::co_spawn(d.ex, d.ledger.figures(id), net::deferred));
    }
    auto group = net::experimental::make_parallel_group(std::move(ops));
    auto [order, errors, results] = co_await group.async_wait(net::experimental::wait_for_all(),
                                                              net::use_awaitable_t<executor>{});
    std::string unread;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (!errors[i] && results[i]) {
            out[i] = *results[i];
        } else {
            unread += (unread.empty() ? "\"" : ", \"") + ids[i] + "\"";
        }
    }
    if (!unread.empty()) {
        spdlog::warn("admin: the shared ledger cannot be read; key(s) {} show zeros", unread);
    }
    co_return out;
}

// One key's figures, the same way.
awaitable<guard::key_usage> usage_of(deps& d, const std::string& id) {
    auto one = co_await usages_of(d, std::vector<std::string>(1, id));
    co_return one.front();
}

json key_json(const config::config& cfg, const config::key_config& k, const char* source,
              bool revoked, std::int64_t created_ms, const guard::key_usage& u) {
    const auto lim = cfg.effective_limits(k);
    return {{"id", k.id},
            {"class", config::to_string(k.cls)},
            {"source", source},
            {"models", k.models},
            {"limits",
             {{"rpm", opt(lim.rpm)},
              {"tpm", opt(lim.tpm)},
              {"daily_usd", opt(lim.daily_usd)},
              {"monthly_usd", opt(lim.monthly_usd)}}},
            {"spend", {{"today", u.spent_today}, {"month", u.spent_this_month}}},
            {"live", {{"rpm", u.requests_last_minute}, {"tpm", u.tokens_last_minute}}},
            {"revoked", revoked},
            {"created_at", created_ms > 0 ? json(iso_ms(created_ms)) : json(nullptr)}};
}

// The key object for id, config or admin; null when unknown.
awaitable<json> find_key_json(deps& d, const config::config& cfg, const std::string& id) {
    const auto snap = d.keys.current();
    const bool revoked = snap->revoked.contains(id);
    for (const auto& k : cfg.keys) {
        if (k.id == id) {
            const auto u = co_await usage_of(d, id);
            co_return key_json(cfg, k, "config", revoked, 0, u);
        }
    }
    for (const auto& a : snap->keys) {
        if (a.id == id) {
            const auto u = co_await usage_of(d, id);
            co_return key_json(cfg, a.as_key_config(), "admin", revoked || a.revoked, a.created_ms,
                               u);
        }
    }
    co_return nullptr;
}

awaitable<void> create_key(deps& d, downstream::client_io& io, request_context& ctx,
                           const config::config& cfg, const json& body) {
    const auto id_field = body.find("id");
    const auto class_field = body.find("class");
    const std::string id = id_field != body.end() && id_field->is_string()
                               ? id_field->get<std::string>()
                               : std::string();
    const auto cls = class_field != body.end() && class_field->is_string()
                         ? config::parse_key_class(class_field->get<std::string>())
                         : std::nullopt;
    std::optional<gateway_error> err =
        unknown_field(body, {"id", "class", "models", "daily_usd", "monthly_usd", "rpm", "tpm"},
                      {{"secret", "'secret' cannot be given: the gateway makes the secret and "
                                  "shows it once, in this call's answer."},
                       {"secret_sha256", "'secret_sha256' cannot be given: the gateway makes "
                                         "the secret and shows it once, in this call's answer."}});
    store::admin_key k;
    if (err) {
        // the unknown field is named
    } else if (id_field == body.end() || !id_field->is_string() || !valid_id(id)) {
        err = errors::invalid_request("'id' must be 1-64 characters of [A-Za-z0-9._-].", "id");
    } else if (!cls) {
        err = errors::invalid_request("'class' must be one of developer, application or agent.",
                                      "class");
    } else {
        err = read_key_fields(body, k.overrides, k.models);
    }
    if (err) {
        co_await write_failure(io, ctx, *err);
        co_return;
    }
    const bool taken =
        std::any_of(cfg.keys.begin(), cfg.keys.end(), [&](const auto& c) { return c.id == id; }) ||
        d.keys.find(id).has_value();
    if (taken) {
        const auto dup =
            errors::conflict("key_exists", "A key with id \"" + id + "\" already exists.", "id");
        co_await write_failure(io, ctx, dup);
        co_return;
    }
    const std::string secret = secret_prefix(*cls) + random_base62(40);
    k.id = id;
    k.cls = *cls;
    k.secret_sha256 = sha256_hex(secret);
    k.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    std::string why;
    auto& keys = d.keys;
    const bool created =
        co_await offload(d.blocking, [&keys, &k, &why] { return keys.create(k, why); });
    if (!created) {
        const auto failed = errors::conflict("key_exists", why, "id");
        co_await write_failure(io, ctx, failed);
        co_return;
    }
    auto out = key_json(cfg, k.as_key_config(), "admin", false, k.created_ms, {});
    out["secret"] = secret; // shown this once; only the digest is stored
    co_await send(io, ctx, 201, out);
}

json route_json(deps& d, const config::route_config& r) {
    json cooling = json::array();
    for (const auto& t : r.targets) {
        if (d.cooldowns.cooling(t)) {
            cooling.push_back(t);
        }
    }
    json out = {{"name", r.name},       {"strategy", config::to_string(r.strategy)},
                {"targets", r.targets}, {"attempt_timeout_ms", r.attempt_timeout.count()},
                {"retries", r.retries}, {"cooling", cooling}};
    if (!r.weights.empty()) {
        out["weights"] = r.weights;
    }
    return out;
}

awaitable<void> put_route(deps& d, downstream::client_io& io, request_context& ctx,
                          const config::config& cfg, const std::string& name, const json& body) {
    config::route_config r;
    r.name = name;
    const auto existing = cfg.routes.find(name);
    if (existing != cfg.routes.end()) {
        r = existing->second;
    }
    std::optional<gateway_error> err =
        unknown_field(body, {"targets", "strategy", "weights", "attempt_timeout_ms", "retries"});
    const auto targets = body.find("targets");
    if (err) {
        // the unknown field is named
    } else if (!valid_route_name(name)) {
        err = errors::invalid_request(
            "A route name must be 1-128 printable characters, without spaces or quotes.", "name");
    } else if (targets == body.end() || !targets->is_array() || targets->empty()) {
        err = errors::invalid_request("'targets' must be a non-empty array of models.", "targets");
    } else {
        r.targets.clear();
        for (const auto& t : *targets) {
            if (!t.is_string()) {
                err = errors::invalid_request("'targets' must hold model names.", "targets");
                break;
            }
            r.targets.push_back(t.get<std::string>());
        }
    }
    if (!err) {
        err = read_route_balance(body, r);
    }
    if (!err && body.contains("attempt_timeout_ms")) {
        const auto& t = body["attempt_timeout_ms"];
        if (!t.is_number_unsigned() || t.get<std::uint64_t>() == 0 ||
            t.get<std::uint64_t>() > max_attempt_timeout_ms) {
            err = errors::invalid_request("'attempt_timeout_ms' must be an integer from 1 to " +
                                              std::to_string(max_attempt_timeout_ms) + ".",
                                          "attempt_timeout_ms");
        } else {
            r.attempt_timeout =
                std::chrono::milliseconds(static_cast<std::int64_t>(t.get<std::uint64_t>()));
        }
    }
    if (!err && body.contains("retries")) {
        if (!body["retries"].is_number_unsigned() || body["retries"].get<std::uint64_t>() > 10) {
            err = errors::invalid_request("'retries' must be an integer from 0 to 10.", "retries");
        } else {
            r.retries = body["retries"].get<unsigned>();
        }
    }
    if (!err) {
        // A new snapshot with the route changed, validated like a config file.
        auto next = std::make_shared<config::config>(cfg);
        next->routes[name] = r;
        const auto problems = config::validate(*next);
        if (!problems.empty()) {
            err = route_problem(name, problems);
        } else if (auto applied = d.apply(next); !applied) {
            err = applied.error();
        }
    }
    if (err) {
        co_await write_failure(io, ctx, *err);
        co_return;
    }
    const json out = route_json(d, r);
    co_await send(io, ctx, 200, out);
}

awaitable<void> usage(deps& d, downstream::client_io& io, request_context& ctx) {
    const auto q = query_of(ctx.req.target());
    store::usage_filter f;
    auto get = [&](const char* k) {
        const auto it = q.find(k);
        return it == q.end() ? std::string{} : it->second;
    };
    f.key = get("key");
    std::optional<gateway_error> err;
    if (!get("since").empty() && !(f.since_ms = parse_time_ms(get("since")))) {
        err =
            errors::invalid_request("'since' must be a date, a UTC time or unix seconds.", "since");
    }
    if (!get("until").empty() && !(f.until_ms = parse_time_ms(get("until")))) {
        err =
            errors::invalid_request("'until' must be a date, a UTC time or unix seconds.", "until");
    }
    const auto group = get("group_by").empty() ? "key" : get("group_by");
    store::usage_group g = store::usage_group::key;
    if (group == "model") {
        g = store::usage_group::model;
    } else if (group == "day") {
        g = store::usage_group::day;
    } else if (group != "key") {
        err = errors::invalid_request("'group_by' must be key, model or day.", "group_by");
    }
    if (err) {
        co_await write_failure(io, ctx, *err);
        co_return;
    }
    json data = json::array();
    auto& log = d.request_log;
    const auto rows = co_await offload(d.blocking, [&log, &f, g] { return log.usage(f, g); });
    for (const auto& row : rows) {
        data.push_back({{"group", row.group},
                        {"requests", row.requests},
                        {"tokens_in", row.tokens_in},
                        {"tokens_out", row.tokens_out},
                        {"tokens_cache_read", row.tokens_cache_read},
                        {"tokens_cache_write", row.tokens_cache_write},
                        {"tokens_reasoning", row.tokens_reasoning},
                        {"cost_usd", row.cost_usd},
                        {"cache_saved_usd", row.cache_saved_usd},
                        {"response_cache_hits", row.response_cache_hits},
                        {"response_cache_saved_usd", row.response_cache_saved_usd},
                        {"errors", row.errors},
                        {"fallbacks", row.fallbacks},
                        {"p50_ms", row.p50_ms},
                        {"p95_ms", row.p95_ms}});
    }
    const json out = {{"object", "list"}, {"group_by", group}, {"data", data}};
    co_await send(io, ctx, 200, out);
}

std::optional<gateway_error> check_admin(const request_context& ctx, const config::config& cfg) {
    const auto& key = cfg.admin.key;
    const auto auth = ctx.req[http::field::authorization];
    const std::string_view presented =
        auth.starts_with("Bearer ") ? std::string_view(auth.substr(7)) : std::string_view{};
    if (presented.empty()) {
        return errors::invalid_api_key(
            "Missing admin key: send \"Authorization: Bearer <admin.key>\".");
    }
    if (!constant_time_equal(sha256_raw(presented), sha256_raw(key.reveal()))) {
        return errors::invalid_admin_key();
    }
    return std::nullopt;
}

awaitable<void> serve_asset(downstream::client_io& io, request_context& ctx) {
    std::string_view name = ctx.path;
    name.remove_prefix(std::string_view("/dashboard").size());
    if (name.empty() || name == "/") {
        name = "/index.html";
    }
    const auto* a = find_asset(name.substr(1));
    if (a == nullptr) {
        const auto err = errors::not_found(std::string(ctx.req.target()));
        co_await write_failure(io, ctx, err);
        co_return;
    }
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, a->content_type);
    res.set(http::field::cache_control, "no-cache");
    res.set("x-request-id", ctx.request_id);
    res.set("x-content-type-options", "nosniff");
    res.set("content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
    res.body() = std::string(a->data);
    res.keep_alive(ctx.keep_alive);
    res.prepare_payload();
    ctx.log.status = 200;
    co_await io.write_response(res);
}

} // namespace

bool owns(std::string_view path) {
    return path == "/metrics" || path == "/admin" || path.starts_with("/admin/") ||
           path == "/dashboard" || path.starts_with("/dashboard/");
}

awaitable<void> handle(deps& d, downstream::client_io& io, request_context& ctx,
                       const config::config& cfg) {
    const auto method = ctx.req.method();
    if (ctx.path == "/metrics") {
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.set("x-request-id", ctx.request_id);
        res.body() = d.metrics.render(d.inflight.now());
        res.keep_alive(ctx.keep_alive);
        res.prepare_payload();
        ctx.log.status = 200;
        co_await io.write_response(res);
        co_return;
    }
    if (cfg.admin.key.empty()) {
        const auto err = errors::not_found(std::string(ctx.req.target()));
        co_await write_failure(io, ctx, err);
        co_return;
    }
    if (ctx.path.starts_with("/dashboard")) {
        if (ctx.path == "/dashboard") {
            http::response<http::string_body> res{http::status::moved_permanently, 11};
            res.set(http::field::location, "/dashboard/");
            res.keep_alive(ctx.keep_alive);
            res.prepare_payload();
            ctx.log.status = 301;
            co_await io.write_response(res);
            co_return;
        }
        co_await serve_asset(io, ctx);
        co_return;
    }
    if (auto err = check_admin(ctx, cfg)) {
        co_await write_failure(io, ctx, *err);
        co_return;
    }
    ctx.log.key_id = "admin";
    json body;
    if (method == http::verb::post || method == http::verb::put || method == http::verb::patch) {
        const auto limit = cfg.server.max_json_depth;
        auto parsed = json_parse::parse(ctx.req.body(), limit);
        if (!parsed || !parsed.value.is_object()) {
            const auto err =
                parsed.why == json_parse::failure::too_deep
                    ? errors::json_too_deep(limit)
                    : errors::invalid_request("The request body is not a JSON object.");
            co_await write_failure(io, ctx, err);
            co_return;
        }
        body = std::move(parsed.value);
    }
    const std::string_view path = ctx.path;
    const std::string keys_prefix = "/admin/keys/";
    const std::string routes_prefix = "/admin/routes/";
    if (path == "/admin/keys" && method == http::verb::get) {
        const auto snap = d.keys.current();
        std::vector<std::string> ids;
        for (const auto& k : cfg.keys) {
            ids.push_back(k.id);
        }
        for (const auto& a : snap->keys) {
            ids.push_back(a.id);
        }
        const auto usages = co_await usages_of(d, std::move(ids));
        json data = json::array();
        std::size_t i = 0;
        for (const auto& k : cfg.keys) {
            data.push_back(
                key_json(cfg, k, "config", snap->revoked.contains(k.id), 0, usages[i++]));
        }
        for (const auto& a : snap->keys) {
            data.push_back(key_json(cfg, a.as_key_config(), "admin",
                                    a.revoked || snap->revoked.contains(a.id), a.created_ms,
                                    usages[i++]));
        }
        const json out = {{"object", "list"}, {"data", data}};
        co_await send(io, ctx, 200, out);
    } else if (path == "/admin/keys" && method == http::verb::post) {
        co_await create_key(d, io, ctx, cfg, body);
    } else if (path.starts_with(keys_prefix) && path.size() > keys_prefix.size()) {
        const std::string id = wire::percent_decode(path.substr(keys_prefix.size()), true);
        auto found = co_await find_key_json(d, cfg, id);
        std::optional<gateway_error> err;
        if (found.is_null()) {
            err = errors::not_found_named(
                "key_not_found", "No key with id \"" + safe_text::printable(id) + "\".", "id");
        } else if (method == http::verb::get) {
            co_await send(io, ctx, 200, found);
        } else if (method == http::verb::delete_) {
            auto& keys = d.keys;
            co_await offload(d.blocking, [&keys, &id] { return keys.revoke(id); });
            // With the ledger in Redis, marked there before the answer: every replica's next
            // admission of the key is refused, before its copy of the keys learns of it. If
            // Redis does not answer, the key sync sends the revocation once it does.
            {
                if (const auto ec = co_await d.ledger.mark_revoked(id)) {
                    spdlog::warn("revoked key \"{}\" could not be marked in Redis now ({}); the "
                                 "other replicas refuse it once the key sync reaches Redis",
                                 id, ec.message());
                }
            }
            const json out = {{"id", id}, {"revoked", true}};
            co_await send(io, ctx, 200, out);
        } else if (method == http::verb::patch) {
            if (found["source"] == "config") {
                err = errors::conflict(
                    "config_key", "Key \"" + id + "\" comes from the config file; change it there.",
                    "id");
            } else {
                // Validate on a copy; store only a fully valid change.
                auto edited = *d.keys.find(id);
                err = unknown_field(
                    body, {"models", "daily_usd", "monthly_usd", "rpm", "tpm"},
                    {{"class", "'class' cannot be changed: PATCH changes a key's limits and "
                               "models (revoke the key and make a new one of the other class)."},
                     {"id", "'id' cannot be changed (revoke the key and make a new one)."}});
                if (!err) {
                    err = read_key_fields(body, edited.overrides, edited.models);
                }
                std::string why;
                if (!err) {
                    auto& keys = d.keys;
                    const bool updated = co_await offload(d.blocking, [&] {
                        return keys.update(
                            id,
                            [&](store::admin_key& a) {
                                a.overrides = edited.overrides;
                                a.models = edited.models;
                            },
                            why);
                    });
                    if (!updated) {
                        err = errors::invalid_request(why);
                    }
                }
                if (!err) {
                    const json out = co_await find_key_json(d, cfg, id);
                    co_await send(io, ctx, 200, out);
                }
            }
        } else {
            err = errors::method_not_allowed(std::string(ctx.req.method_string()), ctx.path);
        }
        if (err) {
            co_await write_failure(io, ctx, *err);
        }
    } else if (path == "/admin/usage" && method == http::verb::get) {
        co_await usage(d, io, ctx);
    } else if (path == "/admin/models" && method == http::verb::get) {
        co_await send(io, ctx, 200, models_json(cfg));
    } else if (path == "/admin/balance" && method == http::verb::get) {
        co_await send(io, ctx, 200,
                      balance_json(cfg, {d.signals, d.key_pools, d.cooldowns, d.cache}));
    } else if (path == "/admin/routes" && method == http::verb::get) {
        json data = json::array();
        for (const auto& [name, r] : cfg.routes) {
            data.push_back(route_json(d, r));
        }
        json recent = json::array();
        for (const auto& f : d.fallbacks.recent()) {
            recent.push_back({{"time", iso_ms(f.ts_ms)},
                              {"request_id", f.request_id},
                              {"route", f.route},
                              {"from", f.from},
                              {"to", f.to},
                              {"reason", f.reason}});
        }
        const json out = {{"data", data}, {"recent_fallbacks", recent}};
        co_await send(io, ctx, 200, out);
    } else if (path.starts_with(routes_prefix) && path.size() > routes_prefix.size() &&
               method == http::verb::put) {
        co_await put_route(d, io, ctx, cfg,
                           wire::percent_decode(path.substr(routes_prefix.size()), true), body);
    } else {
        const auto err = errors::not_found(std::string(ctx.req.target()));
        co_await write_failure(io, ctx, err);
    }
}

} // namespace michi::admin
