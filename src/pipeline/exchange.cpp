#include "michi/pipeline/exchange.hpp"
#include "michi/core/json_parse.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/downstream/hang_up_board.hpp"
#include "michi/pipeline/admission.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/pipeline/cache_stage.hpp"
#include "michi/pipeline/large_body.hpp"
#include "michi/pipeline/settle.hpp"
#include "michi/pipeline/stream_head.hpp"
#include "michi/providers/openai.hpp"
#include "michi/routing/retry.hpp"
#include "michi/routing/strategies.hpp"
#include "michi/stream/relay.hpp"
#include "michi/surface/surface.hpp"

#include <algorithm>

namespace michi::pipeline {
namespace {

using routing::candidate;
using std::chrono::milliseconds;

const providers::adapter& adapter_of(const candidate& c) { return *c.provider->impl; }
const config::provider_config& provider_of(const candidate& c) { return *c.provider->config; }

std::string chat_id(const request_context& ctx) { return "chatcmpl-" + ctx.request_id; }
// The id of an answer translated into the client's API (an Anthropic message, a response).
std::string answer_id(const request_context& ctx) {
    return (ctx.api == api_kind::responses ? "resp_" : "msg_") + ctx.request_id;
}

// Past a stream's commit point nothing sends the request again (no fallback): a stream that
// lasts minutes need not hold the client's body, its parse or its fields, meanwhile.
void forget_request_body(request_context& ctx) {
    ctx.req.release_body();
    ctx.req.release_fields();
    ctx.body = nlohmann::json();
}

// Accounts for an answer passed through as it came: only its usage is read.
void account_passthrough(request_context& ctx, const candidate& c, std::string_view body) {
    providers::usage_info u;
    const bool seen = adapter_of(c).usage_of_body(ctx.api, body, u);
    account(ctx, *c.model, u, seen ? 0 : adapter_of(c).content_chars(body));
}

// A whole success answer in the client's API, with the usage and characters it accounts.
struct converted_whole {
    std::string text;
    providers::usage_info usage;
    std::size_t chars = 0; // the answer's text, when no usage came
};

// What turns a whole success answer from a provider that does not speak the client's API
// into the client's answer. The strings it points to outlive it (owned_conversion below).
struct whole_conversion {
    const providers::adapter* ad;
    api_kind api;
    const std::string* model;
    const std::string* chat_id;
    const std::string* answer_id;
    const std::string* client_model;
    std::uint64_t prompt_tokens;
    bool base64; // embeddings asked for as base64

    std::optional<converted_whole> convert(std::string_view body, std::string_view client) const {
        converted_whole c;
        c.usage.prompt_tokens = prompt_tokens; // Gemini embeddings may report no count
        const auto parsed = json_parse::parse_value(body);
        auto pivot = ad->to_pivot(api, parsed, *model, *chat_id, c.usage);
        if (!pivot) {
            return std::nullopt;
        }
        c.chars = c.usage.known ? 0 : ad->content_chars(body);
        if (base64) {
            providers::openai::encode_base64(*pivot);
        }
        c.text = surface::whole_answer(api, *pivot, *client_model, client, *answer_id);
        return c;
    }
};

// The same with its own copies of the strings: work on the pool owns what it reads.
struct owned_conversion {
    explicit owned_conversion(const whole_conversion& w)
        : model(*w.model), chat_id(*w.chat_id), answer_id(*w.answer_id),
          client_model(*w.client_model), with(w) {}

    std::optional<converted_whole> convert(std::string_view body, std::string_view client) const {
        auto w = with;
        w.model = &model;
        w.chat_id = &chat_id;
        w.answer_id = &answer_id;
        w.client_model = &client_model;
        return w.convert(body, client);
    }

    std::string model, chat_id, answer_id, client_model;
    whole_conversion with;
};

// Answers with a whole body (any status) that came from c: passed through when the client
// speaks the provider's API, else turned into the client's API's answer or error.
awaitable<void> answer_whole(deps& d, downstream::client_io& io, request_context& ctx,
                             const candidate& c, unsigned status, std::string& body,
                             std::string_view upstream_type, std::string_view retry_after) {
    const auto& ad = adapter_of(c);
    const bool passthrough = ad.passthrough(*c.provider, ctx.api);
    std::string out;
    if (status / 100 == 2) {
        if (passthrough) {
            account_passthrough(ctx, c, body);
            out = std::move(body);
        } else {
            const std::string id = chat_id(ctx);
            const std::string out_id = answer_id(ctx);
            const whole_conversion conversion{&ad,
                                              ctx.api,
                                              &c.model->name,
                                              &id,
                                              &out_id,
                                              &ctx.client_model,
                                              ctx.facts.prompt_tokens,
                                              ctx.api == api_kind::embeddings &&
                                                  providers::openai::wants_base64(ctx.body)};
            std::optional<converted_whole> conv;
            if (is_large(ctx) || body.size() >= large_body_bytes) {
                // (Off this event loop: the answer's parse, translation and text.)
                auto job = [conversion = owned_conversion(conversion), answer = std::move(body)](
                               const lent_body& b) { return conversion.convert(answer, b.bytes); };
                auto done = co_await on_pool(d, io, ctx, job_stage::later, std::move(job));
                if (!done) {
                    co_return;
                }
                conv = std::move(*done);
            } else {
                conv = conversion.convert(body, ctx.req.body());
            }
            if (!conv) {
                const auto err = errors::upstream_error("Upstream " + c.model->name +
                                                        " answered with a body that is not JSON.");
                co_await reply_error(io, ctx, d.ledger, err);
                co_return;
            }
            account(ctx, *c.model, conv->usage, conv->usage.known ? 0 : conv->chars);
            out = std::move(conv->text);
        }
    } else if (passthrough) {
        out = std::move(body);
    } else {
        out = surface::upstream_error_body(ctx.api, status, ad.error_to_pivot(status, body));
    }
    const std::string_view type =
        passthrough && !upstream_type.empty() ? upstream_type : "application/json";
    auto [ec, n] =
        co_await write_whole(io, ctx, d.ledger, d.fields, status, out, type, retry_after);
    if (ec) {
        ctx.keep_alive = false;
    }
}

// Relays a complete upstream answer (any status).
awaitable<void> relay_whole(deps& d, downstream::client_io& io, request_context& ctx,
                            upstream::attempt& a, const candidate& c) {
    const std::size_t keep_idle = provider_of(c).max_connections;
    const unsigned status = a.status();
    error_code ec;
    if (adapter_of(c).passthrough(*c.provider, ctx.api) && status / 100 == 2 && status != 204 &&
        upstream::client::whole_in_buffer(a)) {
        // A success answer that goes out as it came, already whole in the connection's
        // buffer (the usual small one): written from there, without a copy of its own. The
        // connection goes back to the pool only after that write.
        const std::string_view whole = upstream::client::borrow_whole(a, ec);
        if (!ec) {
            account_passthrough(ctx, c, whole);
            auto [wec, n] = co_await write_whole(io, ctx, d.ledger, d.fields, status, whole,
                                                 a.parser->content_type(), a.parser->retry_after());
            if (wec) {
                ctx.keep_alive = false;
            }
            d.upstream.release(a, keep_idle);
            co_return;
        }
    }
    std::string body;
    if (!ec) {
        ec = co_await d.upstream.read_whole(a, body);
    }
    if (ec) {
        a.conn->close();
        const auto err = errors::upstream_error("Upstream " + c.model->name +
                                                " broke off its response: " + ec.message());
        co_await reply_error(io, ctx, d.ledger, err);
        co_return;
    }
    d.upstream.release(a, keep_idle); // (the parser stays with the attempt)
    co_await answer_whole(d, io, ctx, c, status, body, a.parser->content_type(),
                          a.parser->retry_after());
}

// The filter a stream from c goes through to this client.
std::unique_ptr<surface::stream_filter> filter_for(const request_context& ctx, const candidate& c) {
    const auto& ad = adapter_of(c);
    if (ad.passthrough(*c.provider, ctx.api)) {
        // (Only a chat stream has a usage chunk the gateway asked for on its own.)
        const bool strip_usage = ctx.api == api_kind::chat && !ctx.facts.wants_usage;
        return surface::passthrough_filter(ctx.api, ad, strip_usage);
    }
    // /v1/messages needs the usage for its message_delta, whatever the client asked.
    const bool usage = ctx.facts.wants_usage || ctx.api == api_kind::messages;
    return surface::translating_filter(ctx.api,
                                       ad.stream_to_pivot(chat_id(ctx), c.model->name, usage),
                                       answer_id(ctx), ctx.client_model, ctx.req.body());
}

// Relays a stream from src (status: its answer's) through the filter for this client.
awaitable<stream::relay_result> relay_stream(deps& d, downstream::client_io& io,
                                             request_context& ctx, const candidate& c,
                                             stream::body_source& src, unsigned status,
                                             stream::relay_failure& failure) {
    std::unique_ptr<surface::stream_filter> made;
    if (is_large(ctx) && ctx.api == api_kind::responses &&
        !adapter_of(c).passthrough(*c.provider, ctx.api)) {
        // (Off this event loop: the Responses filter reads the large request whole.)
        auto job =
            [t = adapter_of(c).stream_to_pivot(chat_id(ctx), c.model->name, ctx.facts.wants_usage),
             id = answer_id(ctx), model = ctx.client_model](const lent_body& b) mutable {
                return surface::translating_filter(api_kind::responses, std::move(t), id, model,
                                                   b.bytes);
            };
        auto done = co_await on_pool(d, io, ctx, job_stage::later, std::move(job));
        if (!done) {
            account(ctx, *c.model, providers::usage_info{}, 0); // (the input was sent)
            ctx.keep_alive = false;
            co_return stream::relay_result::done;
        }
        made = std::move(*done);
    } else {
        made = filter_for(ctx, c);
    }
    const auto filter = recorded(ctx, std::move(made));
    stream_head_text(io.stream_head_room(), ctx, status);
    stream::relay_client client{io, io.stream_head_room(), c.model->name, {}, {}};
    client.on_commit = [&ctx](bool goes_on) {
        ctx.committed = true;
        ctx.stream_open = true;
        ctx.log.ttfb_ms = ctx.ms_since_arrival();
        if (goes_on) {
            forget_request_body(ctx);
        }
    };
    // (What the end reads, behind one pointer: std::function holds that without an
    // allocation.)
    struct ending {
        deps& d;
        request_context& ctx;
        const candidate& c;
        const surface::stream_filter& filter;
        unsigned status;
    } end{d, ctx, c, *filter, status};
    client.on_end = [e = &end](stream::relay_result r) {
        account(e->ctx, *e->c.model, e->filter.usage(), e->filter.content_chars());
        e->ctx.log.status = e->status;
        settle(e->ctx, e->d.ledger);
        stream_ended(e->ctx, r == stream::relay_result::done);
    };
    const auto r = co_await stream::relay(src, *filter, client, failure);
    ctx.stream_open = false;
    switch (r) {
    case stream::relay_result::done: break;
    case stream::relay_result::client_gone:
        ctx.log.status = 499;
        ctx.log.error_code = "client_closed";
        break;
    case stream::relay_result::failed_after_commit: ctx.log.error_code = "stream_broken"; break;
    case stream::relay_result::failed_before_commit: co_return r;
    }
    if (r != stream::relay_result::done || client.broken) {
        ctx.keep_alive = false;
    }
    co_return r;
}

// Answers from a local provider (echo), as from an upstream that answered 200.
awaitable<void> serve_local(deps& d, downstream::client_io& io, request_context& ctx,
                            const candidate& c) {
    std::unique_ptr<providers::local_answer> answer;
    if (is_large(ctx)) {
        // (Off this event loop: an answer built from a large prompt.)
        auto job = [ad = &adapter_of(c), model = c.model, view = lent_view(request_view_of(ctx)),
                    id = chat_id(ctx)](const lent_body& b) {
            return ad->answer_locally(*model, view.over(b), id);
        };
        auto done = co_await on_pool(d, io, ctx, job_stage::later, std::move(job));
        if (!done) {
            co_return;
        }
        answer = std::move(*done);
    } else {
        answer = adapter_of(c).answer_locally(*c.model, request_view_of(ctx), chat_id(ctx));
    }
    if (!answer->stream) {
        co_await answer_whole(d, io, ctx, c, 200, answer->whole, "application/json", {});
        co_return;
    }
    stream::relay_failure failure;
    co_await relay_stream(d, io, ctx, c, *answer->stream, 200, failure);
}

// The outcome of an attempt for the metrics.
std::string_view status_outcome(unsigned status) {
    return status / 100 == 2 ? "ok"
           : status == 429   ? "http_429"
           : status >= 500   ? "http_5xx"
                             : "http_4xx";
}

} // namespace

awaitable<void> run_exchange(deps& d, downstream::client_io& io, request_context& ctx,
                             routing::dispatch_plan& plan) {
    const auto& cfg = *ctx.rt->cfg;
    auto& cd = d.cooldowns;
    std::string attempts_list;
    std::string translate_errors;
    bool last_timeout = false;
    bool only_translation_errors = true;
    // One overall deadline covers every retry and fallback.
    milliseconds overall{0};
    for (const auto& c : plan.candidates) {
        overall = std::max(overall, provider_of(c).timeout);
    }
    const auto deadline = ctx.arrival + overall;
    auto note = [&](const candidate& c, const std::string& what) {
        attempts_list += c.model->name + ": " + what + "; ";
        ctx.failed.emplace_back(c.model->name, what);
    };
    auto fall_back = [&](const candidate& c, std::string_view outcome, const std::string& why) {
        note(c, why);
        d.metrics.on_attempt(provider_of(c).name, outcome);
        d.metrics.on_fallback();
        ++ctx.fallbacks;
    };

    auto view = request_view_of(ctx);
    // The strategy's order (weighted, least_busy, latency), cooling targets last.
    ctx.route_reason_kept =
        routing::choose_order(plan, d.signals, cd, d.rng, ctx.route_reason_made);
    const std::uint64_t key_tokens = ctx.facts.prompt_tokens + ctx.facts.max_output;
    const std::size_t count = plan.candidates.size();
    for (std::size_t i = 0; i < count; ++i) {
        const candidate& c = plan.candidates[i];
        const auto& ad = adapter_of(c);
        const auto& provider = provider_of(c);
        const bool last_candidate = i + 1 == count;
        milliseconds hint{0};      // the upstream's retry-after, for the next try on this target
        std::size_t key_turns = 0; // other keys of the provider tried after a 429
        bool next_key = false;     // this try is another key's, at once (no backoff)
        for (unsigned t = 0; t <= plan.retries; ++t) {
            const bool final_try = last_candidate && t == plan.retries;
            if (t > 0 && !next_key) {
                // Back off before trying the same target again, within the deadline.
                const auto wait = hint.count() > 0 ? hint : routing::backoff(t, d.rng);
                if (steady_clock::now() + wait >= deadline) {
                    break;
                }
                steady_timer timer(d.ex, wait);
                co_await timer.async_wait(nothrow);
            }
            const auto left =
                std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
            if (left.count() <= 0) {
                last_timeout = true;
                break;
            }
            next_key = false;
            std::string no_key;
            const auto key = d.key_pools.acquire(provider, key_tokens, steady_clock::now(), no_key);
            if (!key) { // every key of the target cooling or at its limits: the next target
                note(c, no_key);
                d.metrics.on_fallback();
                ++ctx.fallbacks;
                break;
            }
            view.key_index = *key;
            ++ctx.log.attempts;
            ctx.log.model = c.model->name;
            if (ad.local()) {
                d.metrics.on_attempt(provider.name, "ok");
                co_await serve_local(d, io, ctx, c);
                co_return;
            }
            providers::outgoing_request req(&d.strings);
            result<void> built;
            if (is_large(ctx)) {
                // (Off this event loop: a large body's translation or copy.)
                auto job = [&ad, b = c.provider, m = c.model,
                            v = lent_view(view)](const lent_body& l) {
                    std::pair<result<void>, providers::outgoing_request> r;
                    r.first = ad.build(*b, *m, v.over(l), r.second);
                    return r;
                };
                auto done = co_await on_pool(d, io, ctx, job_stage::later, std::move(job));
                if (!done) {
                    co_return;
                }
                built = std::move(done->first);
                req.head.swap(done->second.head);
                req.body.swap(done->second.body);
            } else {
                built = ad.build(*c.provider, *c.model, view, req);
            }
            if (!built) {
                const auto& why = built.error().message;
                translate_errors += c.model->name + ": " + why + " ";
                note(c, "cannot translate the request (" + why + ")");
                d.metrics.on_attempt(provider.name, "translate_error");
                break;
            }
            only_translation_errors = false;
            const auto head_timeout = std::min(
                plan.attempt_timeout.count() > 0 ? plan.attempt_timeout : provider.timeout, left);
            // In flight to the target from here to the end of its answer (least_busy), and
            // its time to first byte (latency).
            routing::attempt_signal signal(routing::signals_of(plan, c, d.signals));
            const auto sent_at = steady_clock::now();
            // While the answer's head is awaited (for a whole answer, the whole generation),
            // a client that hangs up ends the attempt: the provider stops. The client is
            // watched once the request has waited a little (the board's delay): answers that
            // come sooner never pay for the watch.
            upstream::head_wait wait;
            struct hang_up_watch final : downstream::hang_up_board::waiter {
                hang_up_watch(downstream::client_io& c, upstream::head_wait& w,
                              downstream::hang_up_board& b, steady_clock::time_point t)
                    : io(c), wait(w), board(b), since(t) {}
                downstream::client_io& io;
                upstream::head_wait& wait;
                downstream::hang_up_board& board;
                steady_clock::time_point since;
                bool client_gone = false;
                bool watching = false;

            private:
                void start_watch() override {
                    watching = true;
                    io.watch_disconnect([this] {
                        client_gone = true;
                        wait.abort();
                    });
                }
            } hang_up{io, wait, d.hang_ups, sent_at};
            // (One pointer in the callback: std::function keeps that without an allocation.)
            wait.on_wait = [h = &hang_up](upstream::head_wait&) { h->board.enlist(*h, h->since); };
            auto a = co_await d.upstream.send(*c.provider->endpoint, req.head, req.body,
                                              provider.connect_timeout, head_timeout, &wait);
            d.hang_ups.leave(hang_up);
            if (hang_up.watching) {
                io.unwatch();
            }
            req.recycle(); // sent: its storage serves the next request, not this stream
            const auto head_at = steady_clock::now();
            if (hang_up.client_gone) {
                // Charged the input it sent (the provider may bill it), no output.
                d.metrics.on_attempt(provider.name, "client_closed");
                if (a.conn) {
                    a.conn->close();
                }
                account(ctx, *c.model, providers::usage_info{}, 0);
                ctx.log.status = 499;
                ctx.log.error_code = "client_closed";
                ctx.keep_alive = false;
                settle(ctx, d.ledger);
                co_return;
            }
            if (!a) {
                last_timeout = a.failed == upstream::failure_kind::timeout;
                if (last_timeout) {
                    signal.first_byte(head_at - sent_at, head_at); // as slow as that at least
                }
                fall_back(c, last_timeout ? "timeout" : "connect_error", a.outcome);
                cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
                if (a.conn) {
                    a.conn->close();
                }
                continue;
            }
            signal.first_byte(head_at - sent_at, head_at);
            const unsigned status = a.status();
            if (status == 429 && routing::key_pools::pooled(provider)) {
                // The key cools down on its own; another takes over at once while one can.
                hint = routing::retry_after(a.parser->retry_after());
                if (d.key_pools.on_rate_limited(provider, *key, hint, cfg.cooldown, head_at) &&
                    ++key_turns < provider.api_keys.size()) {
                    fall_back(c, "http_429",
                              "HTTP 429 on key " + routing::key_pools::name_of(provider, *key));
                    a.conn->close();
                    next_key = true;
                    --t; // (not a retry of the route's: the same try with another key)
                    continue;
                }
                if (const auto back = d.key_pools.soonest_back(provider, head_at); back > head_at) {
                    cd.on_rate_limited(c.model->name,
                                       std::chrono::ceil<milliseconds>(back - head_at),
                                       cfg.cooldown);
                }
            } else if (status == 429) {
                hint = routing::retry_after(a.parser->retry_after());
                cd.on_rate_limited(c.model->name, hint, cfg.cooldown);
            } else if (status >= 500) {
                cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
            } else {
                cd.on_success(c.model->name);
            }
            if (ad.retryable(status) && !final_try) {
                last_timeout = false;
                fall_back(c, status_outcome(status), "HTTP " + std::to_string(status));
                a.conn->close();
                continue;
            }
            d.metrics.on_attempt(provider.name, status_outcome(status));
            const bool is_sse = a.parser->content_type().starts_with("text/event-stream");
            if (status / 100 != 2 || !is_sse) {
                co_await relay_whole(d, io, ctx, a, c);
                co_return;
            }
            stream::relay_failure failure;
            const auto src =
                d.upstream.stream_body(std::move(a), provider.timeout, provider.max_connections);
            const auto r = co_await relay_stream(d, io, ctx, c, *src, status, failure);
            if (r != stream::relay_result::failed_before_commit) {
                co_return;
            }
            cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
            last_timeout = failure.timeout;
            // (The attempt was counted "ok" when its head came; its stream failed.)
            fall_back(c, "stream_error", failure.why + " before the first event");
        }
    }
    if (attempts_list.size() >= 2) {
        attempts_list.resize(attempts_list.size() - 2);
    }
    gateway_error err =
        errors::upstream_error("Every upstream attempt failed: " + attempts_list + ".");
    if (only_translation_errors && !translate_errors.empty()) {
        err = errors::invalid_request(translate_errors);
    } else if (last_timeout) {
        err = errors::upstream_timeout("Every upstream attempt failed: " + attempts_list + ".");
    }
    co_await reply_error(io, ctx, d.ledger, err);
}

} // namespace michi::pipeline
