#include "michi/pipeline/exchange.hpp"

#include "michi/core/error.hpp"
#include "michi/pipeline/handler.hpp"
#include "michi/pipeline/pricing.hpp"
#include "michi/providers/echo.hpp"
#include "michi/stream/event_splitter.hpp"
#include "michi/stream/sse.hpp"

#include <array>
#include <ctime>

namespace michi::pipeline {
namespace {

using response_parser = http::response_parser<http::buffer_body>;
using std::chrono::milliseconds;

// A non-streamed upstream body larger than this is refused (a chat completion is far
// smaller; this only bounds memory against a broken upstream).
constexpr std::size_t max_upstream_body = 64 * 1024 * 1024;
constexpr std::size_t relay_buffer_size = 16 * 1024;

// One upstream attempt whose response head has arrived (or which failed).
struct attempt {
    std::unique_ptr<upstream::connection> conn;
    std::unique_ptr<response_parser> parser;
    error_code ec;
    std::string outcome; // for the attempts list: "connect_error", "timeout", "429", …
};

bool is_timeout(const error_code& ec) {
    return ec == beast::error::timeout || ec == net::error::timed_out;
}

std::string describe(const error_code& ec, std::string_view stage) {
    if (is_timeout(ec)) {
        return std::string(stage) + " timeout";
    }
    return std::string(stage) + " error (" + ec.message() + ")";
}

bool retryable_status(unsigned status) {
    return status == 429 || status >= 500;
}

std::int64_t unix_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

// The upstream request for a chat completion, in the provider's dialect.
http::request<http::string_body> build_upstream_request(const candidate& c,
                                                        const nlohmann::json& body, bool stream) {
    nlohmann::json out = body;
    http::request<http::string_body> req{http::verb::post, "", 11};
    const auto& p = *c.provider;
    if (p.type == config::provider_type::azure) {
        // Azure names the deployment in the path and wants its own header.
        out.erase("model");
        req.target(c.ep->base_path + "/openai/deployments/" + c.model.upstream +
                   "/chat/completions?api-version=" + p.api_version);
        if (!p.api_key.empty()) {
            req.set("api-key", p.api_key.reveal());
        }
    } else {
        out["model"] = c.model.upstream;
        req.target(c.ep->base_path + "/chat/completions");
    }
    if (stream) {
        // Ask for the usage chunk so streams are charged exactly; the relay drops it again
        // when the client did not ask for it.
        out["stream_options"]["include_usage"] = true;
    }
    if (p.type != config::provider_type::azure) {
        if (!p.api_key.empty()) {
            req.set(http::field::authorization, "Bearer " + p.api_key.reveal());
        }
    }
    const bool default_port = c.ep->port == (c.ep->tls ? "443" : "80");
    req.set(http::field::host, default_port ? c.ep->host : c.ep->host + ":" + c.ep->port);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "michi/" MICHI_VERSION);
    for (const auto& [name, value] : p.headers) {
        req.set(name, value);
    }
    req.body() = out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    req.keep_alive(true);
    req.prepare_payload();
    return req;
}

// Sends the request and waits for the response head, on a pooled connection when one
// is idle. A reused connection that fails before any response byte is retried once on
// a fresh one (the provider may have closed it while it sat in the pool).
awaitable<attempt> send(worker& w, const candidate& c, http::request<http::string_body>& req,
                        milliseconds head_timeout) {
    attempt a;
    for (int tries = 0; tries < 2; ++tries) {
        a = attempt{};
        a.conn = w.pool().take(c.ep->pool_key);
        if (!a.conn) {
            a.conn = std::make_unique<upstream::connection>(w.executor(), *c.ep);
            a.ec = co_await a.conn->open(w.resolver(), c.provider->connect_timeout);
            if (a.ec) {
                a.outcome = describe(a.ec, "connect");
                co_return a;
            }
        }
        a.conn->expires_after(head_timeout);
        auto [wec, wn] = co_await a.conn->visit(
            [&](auto& s) { return http::async_write(s, req, nothrow); });
        if (wec) {
            if (a.conn->reused && !is_timeout(wec)) {
                continue;
            }
            a.ec = wec;
            a.outcome = describe(wec, "send");
            co_return a;
        }
        a.parser = std::make_unique<response_parser>();
        a.parser->body_limit(boost::none);
        auto [rec, rn] = co_await a.conn->visit([&](auto& s) {
            return http::async_read_header(s, a.conn->buffer(), *a.parser, nothrow);
        });
        if (rec) {
            if (a.conn->reused && !is_timeout(rec) && !a.parser->got_some()) {
                continue;
            }
            a.ec = rec;
            a.outcome = describe(rec, "response");
            co_return a;
        }
        co_return a;
    }
    co_return a;
}

// Reads the next piece of the upstream body into buf.
awaitable<std::pair<error_code, std::size_t>> read_piece(attempt& a, char* buf,
                                                         std::size_t cap) {
    auto& body = a.parser->get().body();
    body.data = buf;
    body.size = cap;
    auto [ec, n] = co_await a.conn->visit([&](auto& s) {
        return http::async_read_some(s, a.conn->buffer(), *a.parser, nothrow);
    });
    if (ec == http::error::need_buffer) {
        ec = {};
    }
    co_return std::pair{ec, cap - body.size};
}

// Returns the connection to this worker's pool when its message ended cleanly.
void release(worker& w, attempt& a, const candidate& c) {
    if (a.conn && a.parser && a.parser->is_done() && a.parser->get().keep_alive() &&
        a.conn->buffer().size() == 0) {
        w.pool().put(std::move(a.conn), c.provider->max_connections);
    } else if (a.conn) {
        a.conn->close();
    }
    a.conn.reset();
}

// Records the upstream's reported usage; false when it carries none.
bool note_usage(request_context& ctx, const nlohmann::json& usage) {
    if (!usage.is_object()) {
        return false;
    }
    const auto in = usage.find("prompt_tokens");
    const auto out = usage.find("completion_tokens");
    if (in != usage.end() && in->is_number_unsigned()) {
        ctx.log.tokens_in = in->get<std::uint64_t>();
    }
    if (out != usage.end() && out->is_number_unsigned()) {
        ctx.log.tokens_out = out->get<std::uint64_t>();
    }
    return true;
}

// Prices what the request used. Without reported usage (a cut stream, an upstream that
// does not report it) the prompt estimate and the relayed content stand in.
void account(request_context& ctx, const candidate& c, bool usage_seen,
             std::size_t content_chars) {
    if (!usage_seen) {
        ctx.log.tokens_in = ctx.est_prompt_tokens;
        ctx.log.tokens_out = (content_chars + 3) / 4;
    }
    ctx.log.cost_usd = cost_usd(c.model, ctx.log.tokens_in, ctx.log.tokens_out);
}

bool is_usage_only_chunk(std::string_view data) {
    return data.find("\"usage\":{") != std::string_view::npos &&
           data.find("\"choices\":[]") != std::string_view::npos;
}

void set_michi_headers(http::response_header<>& h, const request_context& ctx) {
    set_guard_headers(h, ctx);
    h.set("x-michi-model", ctx.log.model);
    h.set("x-michi-attempts", std::to_string(ctx.log.attempts));
}

// Reads a whole (non-streamed) upstream body.
awaitable<error_code> read_body(attempt& a, std::string& out) {
    if (const auto len = a.parser->content_length()) {
        if (*len > max_upstream_body) {
            co_return http::error::body_limit;
        }
        out.reserve(static_cast<std::size_t>(*len));
    }
    std::array<char, relay_buffer_size> buf;
    while (!a.parser->is_done()) {
        auto [ec, n] = co_await read_piece(a, buf.data(), buf.size());
        out.append(buf.data(), n);
        if (ec) {
            co_return ec;
        }
        if (out.size() > max_upstream_body) {
            co_return http::error::body_limit;
        }
    }
    co_return error_code{};
}

// Relays a complete upstream answer (any status) with its body bytes unchanged.
awaitable<void> relay_whole(worker& w, server::client_io& io, request_context& ctx,
                            attempt& a, const candidate& c) {
    std::string body;
    if (const auto ec = co_await read_body(a, body)) {
        a.conn->close();
        const auto err = errors::upstream_error("Upstream " + c.model.name +
                                                " broke off its response: " + ec.message());
        co_await reply_error(io, ctx, err);
        co_return;
    }
    const auto& up = a.parser->get();
    const unsigned status = up.result_int();
    if (status / 100 == 2) {
        const auto parsed = nlohmann::json::parse(body, nullptr, false);
        const bool usage_seen =
            parsed.is_object() && parsed.contains("usage") && note_usage(ctx, parsed["usage"]);
        account(ctx, c, usage_seen, usage_seen ? 0 : delta_content_chars(body));
    }
    http::response<http::string_body> res{up.result(), 11};
    const auto type = up[http::field::content_type];
    res.set(http::field::content_type, type.empty() ? "application/json" : type);
    if (const auto retry = up[http::field::retry_after]; !retry.empty()) {
        res.set(http::field::retry_after, retry);
    }
    set_michi_headers(res, ctx);
    res.body() = std::move(body);
    res.keep_alive(ctx.keep_alive);
    res.prepare_payload();
    release(w, a, c);
    ctx.log.status = status;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    co_await io.write_response(res);
}

enum class relay_result { done, failed_before_commit, failed_after_commit, client_gone };

// Relays an upstream SSE stream. Nothing reaches the client before the first complete
// upstream event (the commit point); after it, every upstream piece is written as one
// chunk, and the next upstream read waits for that write (backpressure).
awaitable<relay_result> relay_stream(worker& w, server::client_io& io, request_context& ctx,
                                     attempt& a, const candidate& c, bool strip_usage,
                                     std::string& failure) {
    const auto& up = a.parser->get();
    http::response<http::empty_body> head{up.result(), 11};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    set_michi_headers(head, ctx);
    head.keep_alive(ctx.keep_alive);

    stream::sse_parser sse;
    stream::event_splitter splitter;
    std::string pending; // bytes held back until the commit point
    std::string kept;    // this piece's events, when filtering
    bool committed = false;
    bool client_gone = false;
    bool usage_seen = false;
    bool drop_event = false;
    std::size_t content_chars = 0;
    // Looks at each upstream event for usage (and the content, in case usage never comes).
    auto inspect = [&](stream::sse_event&& ev) {
        if (ev.data.find("\"usage\"") != std::string::npos) {
            const auto j = nlohmann::json::parse(ev.data, nullptr, false);
            if (j.is_object() && j.contains("usage") && note_usage(ctx, j["usage"])) {
                usage_seen = true;
                drop_event = strip_usage && is_usage_only_chunk(ev.data);
            }
        }
        content_chars += delta_content_chars(ev.data);
    };
    // Filtering works on whole events so every byte but the dropped event passes unchanged.
    auto on_raw_event = [&](std::string_view raw) {
        drop_event = false;
        sse.feed(raw, inspect);
        if (!drop_event) {
            kept.append(raw);
        }
    };
    io.watch_disconnect([&] {
        client_gone = true;
        a.conn->close(); // aborts the pending upstream read
    });
    std::array<char, relay_buffer_size> buf;
    relay_result result = relay_result::done;
    while (!a.parser->is_done()) {
        a.conn->expires_after(c.provider->timeout);
        auto [ec, n] = co_await read_piece(a, buf.data(), buf.size());
        std::string_view out(buf.data(), n);
        if (strip_usage) {
            kept.clear();
            splitter.feed(out, on_raw_event);
            out = kept;
        } else if (n > 0) {
            sse.feed(out, inspect);
        }
        if (!out.empty()) {
            if (!committed) {
                pending.append(out);
                if (sse.events() > 0) {
                    committed = true;
                    ctx.log.ttfb_ms = ctx.ms_since_arrival();
                    const auto hec = co_await io.write_head(head);
                    const auto cec = hec ? hec : co_await io.write_chunk(pending);
                    client_gone = client_gone || static_cast<bool>(cec);
                    pending.clear();
                }
            } else if (co_await io.write_chunk(out)) {
                client_gone = true;
            }
        }
        if (client_gone) {
            result = relay_result::client_gone;
            break;
        }
        if (ec) {
            failure = describe(ec, "stream");
            result = committed ? relay_result::failed_after_commit
                               : relay_result::failed_before_commit;
            break;
        }
    }
    if (result == relay_result::done && splitter.pending_size() > 0) {
        pending.append(splitter.pending()); // an unterminated last event, passed on as it was
    }
    if (result != relay_result::failed_before_commit) {
        account(ctx, c, usage_seen, content_chars);
    }
    co_await io.unwatch();
    if (result == relay_result::done && (!committed || !pending.empty())) {
        // A stream that ended before its first event (or with a partial one): pass it on.
        ctx.log.ttfb_ms = ctx.ms_since_arrival();
        auto ec = committed ? error_code{} : co_await io.write_head(head);
        if (!ec && !pending.empty()) {
            ec = co_await io.write_chunk(pending);
        }
        if (ec) {
            result = relay_result::client_gone;
        }
    }
    if (result == relay_result::done) {
        release(w, a, c);
        if (co_await io.write_last_chunk()) {
            ctx.keep_alive = false;
        }
        ctx.log.status = up.result_int();
        co_return result;
    }
    a.conn->close();
    a.conn.reset();
    ctx.keep_alive = false;
    if (result == relay_result::client_gone) {
        ctx.log.status = 499;
        ctx.log.error_code = "client_closed";
    } else if (result == relay_result::failed_after_commit) {
        // Too late to fall back: end the stream with an error event and no [DONE].
        gateway_error err = errors::upstream_error("Upstream " + c.model.name +
                                                   " stream broke off: " + failure);
        ctx.log.status = up.result_int();
        ctx.log.error_code = "stream_broken";
        if (!co_await io.write_chunk(stream::format_sse(err.openai_body().dump()))) {
            co_await io.write_last_chunk();
        }
    }
    co_return result;
}

awaitable<void> serve_echo(server::client_io& io, request_context& ctx, const candidate& c) {
    const auto reply = providers::echo::make_reply(ctx.body);
    const std::string id = "chatcmpl-" + ctx.request_id;
    ctx.log.tokens_in = reply.prompt_tokens;
    ctx.log.tokens_out = reply.completion_tokens;
    ctx.log.cost_usd = cost_usd(c.model, reply.prompt_tokens, reply.completion_tokens);
    ctx.log.status = 200;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    if (!ctx.log.stream) {
        auto res = json_response(
            ctx, 200,
            providers::echo::completion(reply, c.model.model, id, unix_now())
                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        set_michi_headers(res, ctx);
        co_await io.write_response(res);
        co_return;
    }
    bool include_usage = false;
    if (const auto opts = ctx.body.find("stream_options");
        opts != ctx.body.end() && opts->is_object()) {
        include_usage = opts->value("include_usage", false);
    }
    http::response<http::empty_body> head{http::status::ok, 11};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    set_michi_headers(head, ctx);
    head.keep_alive(ctx.keep_alive);
    if (co_await io.write_head(head)) {
        ctx.keep_alive = false;
        co_return;
    }
    for (const auto& data : providers::echo::stream_chunks(reply, c.model.model, id, unix_now(),
                                                           include_usage)) {
        if (co_await io.write_chunk(stream::format_sse(data))) {
            ctx.keep_alive = false;
            co_return;
        }
    }
    if (co_await io.write_last_chunk()) {
        ctx.keep_alive = false;
    }
}

} // namespace

awaitable<void> run_exchange(worker& w, server::client_io& io, request_context& ctx,
                             const dispatch_plan& plan) {
    std::string attempts_list;
    bool last_timeout = false;
    // The gateway asks streams for usage; a client that did not gets no usage chunk.
    bool strip_usage = false;
    if (ctx.log.stream) {
        const auto opts = ctx.body.find("stream_options");
        strip_usage = opts == ctx.body.end() || !opts->is_object() ||
                      !opts->value("include_usage", false);
    }
    for (std::size_t i = 0; i < plan.candidates.size(); ++i) {
        const auto& c = plan.candidates[i];
        const bool last = i + 1 == plan.candidates.size();
        for (unsigned t = 0; t <= plan.retries; ++t) {
            const bool final_try = last && t == plan.retries;
            ++ctx.log.attempts;
            ctx.log.model = c.model.name;
            if (c.provider->type == config::provider_type::echo) {
                co_await serve_echo(io, ctx, c);
                co_return;
            }
            if (c.provider->type != config::provider_type::openai &&
                c.provider->type != config::provider_type::azure) {
                attempts_list += c.model.name + ": provider type " +
                                 config::to_string(c.provider->type) + " not supported; ";
                break;
            }
            auto req = build_upstream_request(c, ctx.body, ctx.log.stream);
            const auto head_timeout =
                plan.attempt_timeout.count() > 0 ? plan.attempt_timeout : c.provider->timeout;
            auto a = co_await send(w, c, req, head_timeout);
            if (a.ec) {
                last_timeout = is_timeout(a.ec);
                attempts_list += c.model.name + ": " + a.outcome + "; ";
                if (a.conn) {
                    a.conn->close();
                }
                continue;
            }
            const unsigned status = a.parser->get().result_int();
            if (retryable_status(status) && !final_try) {
                last_timeout = false;
                attempts_list += c.model.name + ": HTTP " + std::to_string(status) + "; ";
                a.conn->close();
                continue;
            }
            const bool is_sse = a.parser->get()[http::field::content_type].starts_with(
                "text/event-stream");
            if (status / 100 != 2 || !is_sse) {
                co_await relay_whole(w, io, ctx, a, c);
                co_return;
            }
            std::string failure;
            const auto r = co_await relay_stream(w, io, ctx, a, c, strip_usage, failure);
            if (r != relay_result::failed_before_commit) {
                co_return;
            }
            last_timeout = failure.find("timeout") != std::string::npos;
            attempts_list += c.model.name + ": " + failure + " before the first event; ";
        }
    }
    if (attempts_list.size() >= 2) {
        attempts_list.resize(attempts_list.size() - 2);
    }
    const std::string message = "Every upstream attempt failed: " + attempts_list + ".";
    // (No conditional operator inside co_await: GCC 12 mis-destroys such temporaries.)
    gateway_error err = errors::upstream_error(message);
    if (last_timeout) {
        err = errors::upstream_timeout(message);
    }
    co_await reply_error(io, ctx, err);
}

} // namespace michi::pipeline
