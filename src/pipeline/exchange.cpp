#include "michi/pipeline/exchange.hpp"

#include "michi/core/error.hpp"
#include "michi/core/http_wire.hpp"
#include "michi/core/json_scan.hpp"
#include "michi/pipeline/handler.hpp"
#include "michi/routing/pricing.hpp"
#include "michi/providers/anthropic.hpp"
#include "michi/providers/echo.hpp"
#include "michi/providers/gemini.hpp"
#include "michi/routing/cooldowns.hpp"
#include "michi/stream/event_splitter.hpp"
#include "michi/stream/sse.hpp"
#include "michi/upstream/response_parser.hpp"
#include "upstream_request.hpp"

#include <array>
#include <charconv>
#include <ctime>
#include <functional>
#include <random>

namespace michi::pipeline {
namespace {

using upstream::response_parser;
using std::chrono::milliseconds;
using config::provider_type;

// A non-streamed upstream body larger than this is refused (a chat completion is far
// smaller; this only bounds memory against a broken upstream).
constexpr std::size_t max_upstream_body = 64 * 1024 * 1024;
constexpr std::size_t relay_buffer_size = 16 * 1024;
constexpr milliseconds backoff_base{250};
constexpr milliseconds backoff_cap{4000};

// One upstream attempt whose response head has arrived (or which failed).
struct attempt {
    std::unique_ptr<upstream::connection> conn;
    std::unique_ptr<response_parser> parser;
    error_code ec;
    std::string outcome; // for the attempts list: "connect error (…)", "response timeout", …
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

// 1xx, 204 and 304 answers have no body, and no Content-Length either.
bool no_body_status(unsigned status) {
    return status / 100 == 1 || status == 204 || status == 304;
}

bool retryable_status(unsigned status) {
    return status == 429 || status >= 500;
}

std::int64_t unix_now() {
    return static_cast<std::int64_t>(std::time(nullptr));
}

std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Sends the request and waits for the response head, on a pooled connection when one
// is idle. A reused connection that fails before any response byte is retried once on
// a fresh one (the provider may have closed it while it sat in the pool).
awaitable<attempt> send(worker& w, const candidate& c, const prepared_request& req,
                        milliseconds head_timeout) {
    const std::array<net::const_buffer, 2> bufs{net::buffer(req.head), net::buffer(req.body)};
    attempt a;
    for (int tries = 0; tries < 2; ++tries) {
        a = attempt{};
        a.conn = w.pool().take(c.ep->pool_key);
        if (!a.conn) {
            a.conn = std::make_unique<upstream::connection>(w.executor(), *c.ep);
            a.ec = co_await a.conn->open(w.resolver(),
                                         std::min(c.provider->connect_timeout, head_timeout));
            if (a.ec) {
                a.outcome = describe(a.ec, "connect");
                co_return a;
            }
        }
        a.conn->expires_after(head_timeout);
        // Written at once when the socket takes it (a request usually fits its send buffer):
        // one system call and no completion through the scheduler; the rest, if any, by an
        // asynchronous write. (Not so for the client's answers: the read of its next request
        // that follows would start earlier and find nothing more often.)
        error_code wec;
        const std::size_t wn = a.conn->write_now(bufs, wec);
        if (!wec && wn < req.head.size() + req.body.size()) {
            auto [ec, n] = co_await a.conn->async_write(after(bufs, wn), nothrow_op);
            wec = ec;
        }
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
        error_code rec;
        auto& buffer = a.conn->buffer();
        while (wire::wants_more(*a.parser, buffer, true, rec)) {
            auto [ec, n] = co_await a.conn->async_read_some(wire::read_room(buffer), nothrow_op);
            if (!wire::took_read(*a.parser, buffer, ec, n, rec)) {
                break;
            }
        }
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

// Reads the next piece of the upstream body into buf. `before_wait`, when given, runs before
// a read from the socket (not when the piece was already buffered).
awaitable<std::pair<error_code, std::size_t>>
read_piece(attempt& a, char* buf, std::size_t cap,
           const std::function<void()>* before_wait = nullptr) {
    a.parser->lend(buf, cap);
    error_code ec;
    if (!wire::put_buffered(*a.parser, a.conn->buffer(), ec)) {
        if (before_wait != nullptr) {
            (*before_wait)();
        }
        // Reads until the parser moves: a read may bring only part of a chunk's framing.
        auto& buffer = a.conn->buffer();
        for (;;) {
            auto [rec, n] = co_await a.conn->async_read_some(wire::read_room(buffer), nothrow_op);
            if (!wire::took_read(*a.parser, buffer, rec, n, ec) ||
                wire::put_buffered(*a.parser, buffer, ec)) {
                break;
            }
        }
    }
    if (ec == http::error::need_buffer) {
        ec = {};
    }
    co_return std::pair{ec, cap - a.parser->left()};
}

// For a stream relay: starts watching the client for a disconnect, once, the first time the
// relay waits for the upstream (a disconnect sets `client_gone` and aborts the upstream
// read). A stream whose answer was whole in the first read never waits, and never pays for
// the watch's reactor registration.
std::function<void()> watch_client(server::client_io& io, attempt& a, bool& client_gone) {
    return [&io, &a, &client_gone, watching = false]() mutable {
        if (!watching) {
            watching = true;
            io.watch_disconnect([&a, &client_gone] {
                client_gone = true;
                a.conn->close(); // aborts the pending upstream read
            });
        }
    };
}

// Returns the connection to this worker's pool when its message ended cleanly.
void release(worker& w, attempt& a, const candidate& c) {
    if (a.conn && a.parser && a.parser->is_done() && a.parser->keep_alive() &&
        a.conn->buffer().size() == 0) {
        w.pool().put(std::move(a.conn), c.provider->max_connections);
    } else if (a.conn) {
        a.conn->close();
    }
    a.conn.reset();
}

// Records the upstream's reported usage (OpenAI shape); false when it carries none.
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

// The same from the raw text of the usage member, without building a DOM: the numbers
// are read where they are written (an unsigned integer each, as above).
bool note_usage(request_context& ctx, std::string_view usage) {
    if (usage.empty() || usage.front() != '{') {
        return false;
    }
    return json_scan::for_each_member(usage, [&](const json_scan::member& m) {
        const bool in = m.key_raw == "prompt_tokens";
        if (!in && m.key_raw != "completion_tokens") {
            return;
        }
        const char* first = usage.data() + m.value_begin;
        const char* last = usage.data() + m.value_end;
        std::uint64_t n = 0;
        if (const auto [end, ec] = std::from_chars(first, last, n);
            ec == std::errc{} && end == last) {
            (in ? ctx.log.tokens_in : ctx.log.tokens_out) = n;
        }
    });
}

// Prices what the request used. Without reported usage (a cut stream, an upstream that
// does not report it) the prompt estimate and the relayed content stand in.
void account(request_context& ctx, const candidate& c, bool usage_seen,
             std::size_t content_chars) {
    if (!usage_seen) {
        ctx.log.tokens_in = ctx.facts.prompt_tokens;
        ctx.log.tokens_out = (content_chars + 3) / 4;
    }
    ctx.log.cost_usd = cost_usd(*c.model, ctx.log.tokens_in, ctx.log.tokens_out);
    settle(ctx);
}

bool is_usage_only_chunk(std::string_view data) {
    return json_scan::find_text(data, "\"usage\":{") != std::string_view::npos &&
           json_scan::find_text(data, "\"choices\":[]") != std::string_view::npos;
}

// The fields of a response a target served: the guard fields and x-michi-*.
void append_michi_fields(std::string& out, const request_context& ctx) {
    append_guard_fields(out, ctx);
    wire::append_field(out, "x-michi-model", ctx.log.model);
    wire::append_field(out, "x-michi-attempts", std::uint64_t{ctx.log.attempts});
    if (!ctx.route_reason.empty()) {
        wire::append_field(out, "x-michi-route-reason", ctx.route_reason);
    }
}

std::string michi_fields(const request_context& ctx) {
    std::string out;
    out.reserve(512);
    append_michi_fields(out, ctx);
    return out;
}

http::response<http::empty_body> stream_head(const request_context& ctx, unsigned status) {
    http::response<http::empty_body> head{static_cast<http::status>(status), 11};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(ctx.keep_alive);
    return head;
}

// An OpenAI error body in the client's dialect.
std::string error_body_for(const request_context& ctx, unsigned status, std::string_view body) {
    if (ctx.out == dialect::openai) {
        return std::string(body);
    }
    const auto j = nlohmann::json::parse(body, nullptr, false);
    gateway_error err{status, "api_error", "upstream_error", std::string(body), {}};
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        err.message = j["error"].value("message", err.message);
    }
    return dump(err.anthropic_body());
}

// Past a stream's commit point nothing sends the request again (no fallback): a stream that
// lasts minutes need not hold the client's body, or its parse, meanwhile.
void forget_request_body(request_context& ctx) {
    ctx.req.release_body();
    ctx.body = nlohmann::json();
}

// Writes OpenAI chat.completion.chunk payloads to the client in its dialect, one HTTP
// chunk per flush; the response head goes out with the first output (the commit point).
class chunk_sink {
public:
    chunk_sink(server::client_io& io, request_context& ctx, unsigned status)
        : io_(io), ctx_(ctx), head_(stream_head(ctx, status)), fields_(michi_fields(ctx)) {
        if (ctx.out == dialect::anthropic) {
            writer_.emplace("msg_" + ctx.request_id, ctx.client_model);
        }
    }

    bool committed() const { return committed_; }

    void add(std::string_view chunk) {
        if (!writer_) {
            buf_.append("data: ").append(chunk).append("\n\n");
            return;
        }
        const auto j = nlohmann::json::parse(chunk, nullptr, false);
        if (j.is_object()) {
            writer_->on_chunk(j, buf_);
        }
    }

    awaitable<error_code> flush() {
        if (buf_.empty()) {
            co_return error_code{};
        }
        if (!committed_) {
            committed_ = true;
            forget_request_body(ctx_);
            ctx_.log.ttfb_ms = ctx_.ms_since_arrival();
            if (auto ec = co_await io_.write_head(head_, fields_)) {
                co_return ec;
            }
        }
        auto ec = co_await io_.write_chunk(buf_);
        buf_.clear();
        co_return ec;
    }

    // The clean end: [DONE] or message_stop, then the last HTTP chunk.
    awaitable<error_code> finish() {
        if (writer_) {
            writer_->finish(buf_);
        } else {
            buf_.append("data: [DONE]\n\n");
        }
        if (auto ec = co_await flush()) {
            co_return ec;
        }
        co_return co_await io_.write_last_chunk();
    }

    // A stream broken after the commit point: an error event and no [DONE].
    awaitable<void> fail(const std::string& message) {
        const gateway_error err = errors::upstream_error(message);
        buf_.clear();
        buf_ = writer_ ? providers::anthropic::messages_stream_writer::error_event(message)
                       : stream::format_sse(dump(err.openai_body()));
        if (!co_await flush()) {
            co_await io_.write_last_chunk();
        }
    }

private:
    server::client_io& io_;
    request_context& ctx_;
    http::response<http::empty_body> head_;
    std::string fields_;
    std::optional<providers::anthropic::messages_stream_writer> writer_;
    std::string buf_;
    bool committed_ = false;
};

// OpenAI-type upstream events through chunk_sink (for clients of /v1/messages): passes
// chunks on, ends at [DONE], notes usage.
class passthrough_translator final : public providers::chunk_translator {
public:
    explicit passthrough_translator(bool keep_usage_chunk) : keep_usage_(keep_usage_chunk) {}
    bool on_event(const stream::sse_event& ev, std::vector<std::string>& out) override {
        if (ev.data == "[DONE]") {
            finished_ = true;
            return true;
        }
        if (json_scan::find_text(ev.data, "\"usage\"") != std::string::npos) {
            const auto j = nlohmann::json::parse(ev.data, nullptr, false);
            if (j.is_object() && j.contains("usage") && j["usage"].is_object()) {
                usage_.known = true;
                usage_.prompt_tokens = j["usage"].value("prompt_tokens", std::uint64_t{0});
                usage_.completion_tokens = j["usage"].value("completion_tokens", std::uint64_t{0});
                if (!keep_usage_ && is_usage_only_chunk(ev.data)) {
                    return true;
                }
            }
        }
        if (ev.data.find("\"error\"") != std::string::npos) {
            const auto j = nlohmann::json::parse(ev.data, nullptr, false);
            if (j.is_object() && j.contains("error")) {
                error_ = dump(j["error"]);
                return false;
            }
        }
        out.push_back(ev.data);
        return true;
    }
    bool finished() const override { return finished_; }
    const providers::usage_info& usage() const override { return usage_; }
    std::string error_message() const override { return error_; }

private:
    bool keep_usage_;
    bool finished_ = false;
    providers::usage_info usage_;
    std::string error_;
};

// Room at the end of `out` for the next piece of a whole body: the rest of an announced
// length, or a relay buffer's worth of a chunked one. Returns where the room starts.
std::size_t make_room(const attempt& a, std::string& out) {
    const std::size_t at = out.size();
    const auto announced = a.parser->content_length();
    const std::size_t want = announced && *announced > at
                                 ? static_cast<std::size_t>(*announced) - at
                                 : relay_buffer_size;
    out.resize(at + want);
    return at;
}

// Takes into `out` what the connection has already buffered of a whole (non-streamed)
// body, straight into the string (no bounce buffer). True when that settled it: the body
// is complete, or failed with `ec`; false when the rest has to be read (read_body). A
// small answer usually came with its head: then no coroutine frame is needed for it.
bool body_from_buffer(attempt& a, std::string& out, error_code& ec) {
    if (out.empty()) {
        if (const auto len = a.parser->content_length()) {
            if (*len > max_upstream_body) {
                ec = http::error::body_limit;
                return true;
            }
            out.reserve(static_cast<std::size_t>(*len));
        }
    }
    while (!a.parser->is_done()) {
        const std::size_t at = make_room(a, out);
        const std::size_t cap = out.size() - at;
        a.parser->lend(out.data() + at, cap);
        const bool settled = wire::put_buffered(*a.parser, a.conn->buffer(), ec);
        out.resize(at + (cap - a.parser->left()));
        if (ec == http::error::need_buffer) {
            ec = {};
        }
        if (ec) {
            return true;
        }
        if (out.size() > max_upstream_body) {
            ec = http::error::body_limit;
            return true;
        }
        if (!settled) {
            return false;
        }
    }
    return true;
}

// Reads the rest of a whole (non-streamed) upstream body, after body_from_buffer.
awaitable<error_code> read_body(attempt& a, std::string& out) {
    while (!a.parser->is_done()) {
        const std::size_t at = make_room(a, out);
        auto [ec, n] = co_await read_piece(a, out.data() + at, out.size() - at);
        out.resize(at + n);
        if (ec) {
            co_return ec;
        }
        if (out.size() > max_upstream_body) {
            co_return http::error::body_limit;
        }
    }
    co_return error_code{};
}

// Accounts for a success body that goes out as it came: only "usage" is read, without
// parsing the rest.
void account_as_is(request_context& ctx, const candidate& c, std::string_view body) {
    bool usage_seen = false;
    if (const auto usage = json_scan::find_unique(body, "usage")) {
        usage_seen = note_usage(ctx, *usage);
    }
    account(ctx, c, usage_seen, usage_seen ? 0 : delta_content_chars(body));
}

// The OpenAI-shaped success body of a non-streamed answer (translated when needed), with
// usage noted; std::nullopt when the upstream's body makes no sense.
std::optional<std::string> openai_body(request_context& ctx, const candidate& c,
                                       std::string& body, bool translated) {
    if (!translated && ctx.out == dialect::openai) {
        account_as_is(ctx, c, body);
        return std::move(body);
    }
    auto parsed = nlohmann::json::parse(body, nullptr, false);
    if (translated) {
        if (!parsed.is_object()) {
            return std::nullopt;
        }
        providers::usage_info u;
        u.prompt_tokens = ctx.facts.prompt_tokens; // Gemini embeddings may report no count
        const auto id = "chatcmpl-" + ctx.request_id;
        if (c.provider->type == provider_type::anthropic) {
            parsed = providers::anthropic::to_openai(parsed, c.model->name, id, unix_now(), u);
        } else if (ctx.api == api_kind::chat) {
            parsed = providers::gemini::to_openai(parsed, c.model->name, id, unix_now(), u);
        } else {
            parsed = providers::gemini::embeddings_to_openai(parsed, c.model->name, u);
        }
    }
    const bool usage_seen = parsed.is_object() && parsed.contains("usage") &&
                            note_usage(ctx, parsed["usage"]);
    account(ctx, c, usage_seen, usage_seen ? 0 : delta_content_chars(body));
    if (ctx.out == dialect::anthropic) {
        return dump(providers::anthropic::response_to_messages(parsed, ctx.client_model));
    }
    return dump(parsed);
}

// The fields of a whole answer's head, into `fields`: its type, Retry-After, Content-Length
// (body_size; none for a status without a body), Connection, and Michi's own.
void whole_answer_fields(std::string& fields, const request_context& ctx,
                         const response_parser& up, bool translated, std::size_t body_size) {
    fields.clear();
    fields.reserve(768);
    const auto type = up.content_type();
    wire::append_field(fields, "Content-Type",
                       type.empty() || translated || ctx.out != dialect::openai
                           ? std::string_view("application/json")
                           : type);
    if (const auto retry = up.retry_after(); !retry.empty() && !ctx.retry_after) {
        wire::append_field(fields, "Retry-After", retry);
    }
    if (!no_body_status(up.status())) {
        wire::append_field(fields, "Content-Length", std::uint64_t{body_size});
    }
    if (!ctx.keep_alive) {
        fields.append("Connection: close\r\n");
    }
    append_michi_fields(fields, ctx);
}

// A success body that goes out as it came and that the connection has already buffered
// whole (a Content-Length answer, the usual small one), as a view of it where it lies: the
// parser takes the bytes without copying them, and they stay put until the connection is
// read again or released. Only for an answer whose Content-Length the buffer holds; an
// error in `ec` when the parser could not take it all.
std::string_view borrow_whole_body(attempt& a, error_code& ec) {
    const auto len = *a.parser->content_length();
    auto& buffer = a.conn->buffer();
    a.parser->borrow();
    while (!a.parser->is_done() && !ec) {
        const std::size_t before = buffer.size();
        wire::put_buffered(*a.parser, buffer, ec);
        if (!ec && buffer.size() == before) {
            ec = http::error::partial_message; // (cannot be: all of it was there)
        }
    }
    const auto body = a.parser->borrowed();
    if (!ec && body.size() != len) {
        ec = http::error::partial_message;
    }
    return body;
}

// Writes a whole answer: the upstream's status, `body` and the fields of whole_answer_fields;
// the request is logged as answered and its reservation settled. Not a coroutine: the
// write's own operation is returned (the head is serialised before this returns; the body
// must stay put until the write is done).
auto write_whole(server::client_io& io, request_context& ctx, const response_parser& up,
                 bool translated, std::string_view body) {
    // The head's fields go straight into the serialised lines (no Beast field set), in a
    // string this thread reuses: write_response copies them into the head before it
    // returns (client_io's contract), and nothing suspends in between, so no other request
    // on this thread can touch it meanwhile.
    thread_local std::string fields;
    whole_answer_fields(fields, ctx, up, translated, body.size());
    http::response_header<> head;
    head.version(11);
    head.result(up.status());
    ctx.log.status = up.status();
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    settle(ctx);
    return io.write_response(head, body, fields);
}

// Relays a complete upstream answer (any status).
awaitable<void> relay_whole(worker& w, server::client_io& io, request_context& ctx,
                            attempt& a, const candidate& c, bool translated) {
    std::string body;
    error_code ec;
    const auto len = a.parser->content_length();
    if (!translated && ctx.out == dialect::openai && a.parser->status() / 100 == 2 &&
        !no_body_status(a.parser->status()) && len && *len <= a.conn->buffer().size()) {
        // A success answer that goes out as it came, already whole in the connection's
        // buffer (the usual small one): written from there, without a copy of its own. The
        // connection goes back to the pool only after that write.
        const std::string_view whole = borrow_whole_body(a, ec);
        if (!ec) {
            account_as_is(ctx, c, whole);
            co_await write_whole(io, ctx, *a.parser, false, whole);
            release(w, a, c);
            co_return;
        }
    } else if (!body_from_buffer(a, body, ec)) {
        ec = co_await read_body(a, body);
    }
    if (ec) {
        a.conn->close();
        const auto err = errors::upstream_error("Upstream " + c.model->name +
                                                " broke off its response: " + ec.message());
        co_await reply_error(io, ctx, err);
        co_return;
    }
    const auto& up = *a.parser;
    const unsigned status = up.status();
    std::string out;
    if (status / 100 == 2) {
        auto converted = openai_body(ctx, c, body, translated);
        if (!converted) {
            a.conn->close();
            const auto err = errors::upstream_error("Upstream " + c.model->name +
                                                    " answered with a body that is not JSON.");
            co_await reply_error(io, ctx, err);
            co_return;
        }
        out = std::move(*converted);
    } else if (translated) {
        const auto j = c.provider->type == provider_type::anthropic
                           ? providers::anthropic::error_to_openai(status, body)
                           : providers::gemini::error_to_openai(status, body);
        out = error_body_for(ctx, status, dump(j));
    } else {
        out = error_body_for(ctx, status, body);
    }
    if (no_body_status(status)) {
        out.clear(); // a status that has no body, and no Content-Length either
    }
    release(w, a, c); // (the parser stays with the attempt; only the connection goes)
    co_await write_whole(io, ctx, up, translated, out);
}

enum class relay_result { done, failed_before_commit, failed_after_commit, client_gone };

// A stream that did not end cleanly: its connection is never pooled, and the client's
// connection closes after this response.
void abandon(attempt& a, request_context& ctx, relay_result result) {
    a.conn->close();
    a.conn.reset();
    ctx.keep_alive = false;
    if (result == relay_result::client_gone) {
        ctx.log.status = 499;
        ctx.log.error_code = "client_closed";
    }
}

// Relays an OpenAI-type upstream's SSE stream to an OpenAI client byte for byte. Nothing
// reaches the client before the first complete upstream event (the commit point); after
// it, every upstream piece is written as one chunk, and the next upstream read waits for
// that write (backpressure). The last piece goes out with the last chunk.
awaitable<relay_result> relay_stream_raw(worker& w, server::client_io& io,
                                         request_context& ctx, attempt& a, const candidate& c,
                                         bool strip_usage, std::string& failure) {
    const auto& up = *a.parser;
    auto head = stream_head(ctx, up.status());
    const std::string fields = michi_fields(ctx);
    stream::sse_parser sse;
    stream::event_splitter splitter;
    std::string pending; // bytes held back until the commit point
    std::string kept;    // this piece's events, when filtering
    bool committed = false;
    bool client_gone = false;
    bool usage_seen = false;
    bool drop_event = false;
    bool first_event = true;
    std::uint64_t events = 0;
    std::size_t content_chars = 0;
    // Looks at each upstream event for usage (and the content, in case usage never comes).
    auto inspect_data = [&](std::string_view data) {
        ++events;
        if (json_scan::find_text(data, "\"usage\"") != std::string_view::npos) {
            const auto usage = json_scan::find_unique(data, "usage");
            if (usage && note_usage(ctx, *usage)) {
                usage_seen = true;
                drop_event = strip_usage && is_usage_only_chunk(data);
            }
        }
        content_chars += delta_content_chars(data);
    };
    auto inspect = [&](stream::sse_event&& ev) { inspect_data(ev.data); };
    // Whole events, so that filtering can drop one and pass every other byte unchanged. The
    // usual event, one "data:" line, is read where it is; anything else goes through the SSE
    // parser (a first event led by a byte-order mark, which the parser drops, is not a plain
    // "data:" line either).
    auto on_raw_event = [&](std::string_view raw) {
        drop_event = false;
        const auto data = stream::single_data_line(raw);
        if (first_event && data) {
            sse.started_without_bom(); // (a BOM would have failed single_data_line)
        }
        first_event = false;
        if (data) {
            inspect_data(*data);
        } else {
            sse.feed(raw, inspect);
        }
        if (strip_usage && !drop_event) {
            kept.append(raw);
        }
    };
    const auto watch = watch_client(io, a, client_gone);
    std::array<char, relay_buffer_size> buf;
    relay_result result = relay_result::done;
    while (!a.parser->is_done()) {
        a.conn->expires_after(c.provider->timeout);
        auto [ec, n] = co_await read_piece(a, buf.data(), buf.size(), &watch);
        std::string_view out(buf.data(), n);
        kept.clear();
        splitter.feed(out, on_raw_event);
        if (strip_usage) {
            out = kept;
        }
        if (!ec && splitter.pending_size() > stream::sse_parser::default_max_event_bytes) {
            ec = http::error::body_limit; // an event that never ends is not held without end
        }
        // The upstream's last piece waits for the end of the stream below, so that it goes
        // out in one write with the last chunk (and the head, when nothing went out yet).
        const bool last_piece = !ec && a.parser->is_done();
        if (!out.empty()) {
            if (!committed) {
                pending.append(out);
                if (events > 0 && !last_piece) {
                    committed = true;
                    forget_request_body(ctx);
                    ctx.log.ttfb_ms = ctx.ms_since_arrival();
                    if (co_await io.write_stream(&head, fields, pending, false)) {
                        client_gone = true;
                    }
                    pending.clear();
                }
            } else if (last_piece) {
                pending.append(out);
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
    if (result == relay_result::done && strip_usage && splitter.pending_size() > 0) {
        pending.append(splitter.pending()); // an unterminated last event, passed on as it was
    }
    if (result != relay_result::failed_before_commit) {
        account(ctx, c, usage_seen, content_chars);
    }
    co_await io.unwatch();
    if (result == relay_result::done) {
        // The rest in one write: the head if nothing went out yet, what was held back (the
        // last piece, or a stream that ended before its first event or with a partial one),
        // and the last chunk.
        if (!committed) {
            ctx.log.ttfb_ms = ctx.ms_since_arrival();
        }
        release(w, a, c);
        http::response<http::empty_body>* head_now = committed ? nullptr : &head;
        ctx.log.status = up.status();
        if (co_await io.write_stream(head_now, fields, pending, true)) {
            ctx.keep_alive = false;
            if (!committed || !pending.empty()) { // the client missed part of the answer
                ctx.log.status = 499;
                ctx.log.error_code = "client_closed";
                co_return relay_result::client_gone;
            }
        }
        co_return result;
    }
    abandon(a, ctx, result);
    if (result == relay_result::failed_after_commit) {
        // Too late to fall back: end the stream with an error event and no [DONE].
        const gateway_error err = errors::upstream_error("Upstream " + c.model->name +
                                                         " stream broke off: " + failure);
        ctx.log.status = up.status();
        ctx.log.error_code = "stream_broken";
        if (!co_await io.write_chunk(stream::format_sse(dump(err.openai_body())))) {
            co_await io.write_last_chunk();
        }
    }
    co_return result;
}

std::unique_ptr<providers::chunk_translator> make_translator(const request_context& ctx,
                                                             const candidate& c,
                                                             bool client_wants_usage) {
    // /v1/messages needs the usage for its message_delta, whatever the client asked.
    const bool usage = client_wants_usage || ctx.out == dialect::anthropic;
    const auto id = "chatcmpl-" + ctx.request_id;
    switch (c.provider->type) {
    case provider_type::anthropic:
        return providers::anthropic::make_stream(id, c.model->name, unix_now(), usage);
    case provider_type::gemini:
        return providers::gemini::make_stream(id, c.model->name, unix_now(), usage);
    default:
        return std::make_unique<passthrough_translator>(usage);
    }
}

// Relays a stream through a translator and the client's dialect: provider events become
// OpenAI chunks, written as OpenAI SSE or as Anthropic events. Same commit point and
// backpressure as the raw relay.
awaitable<relay_result> relay_stream_chunks(worker& w, server::client_io& io,
                                            request_context& ctx, attempt& a,
                                            const candidate& c, bool client_wants_usage,
                                            std::string& failure) {
    const auto& up = *a.parser;
    auto translator = make_translator(ctx, c, client_wants_usage);
    chunk_sink sink(io, ctx, up.status());
    stream::sse_parser sse;
    std::vector<std::string> chunks;
    bool client_gone = false;
    bool upstream_error = false;
    std::size_t content_chars = 0;
    auto on_event = [&](stream::sse_event&& ev) {
        if (!upstream_error && !translator->on_event(ev, chunks)) {
            upstream_error = true;
        }
    };
    const auto watch = watch_client(io, a, client_gone);
    std::array<char, relay_buffer_size> buf;
    relay_result result = relay_result::done;
    while (!a.parser->is_done() && !translator->finished()) {
        a.conn->expires_after(c.provider->timeout);
        auto [ec, n] = co_await read_piece(a, buf.data(), buf.size(), &watch);
        chunks.clear();
        sse.feed(std::string_view(buf.data(), n), on_event);
        for (const auto& chunk : chunks) {
            content_chars += delta_content_chars(chunk);
            sink.add(chunk);
        }
        if (!client_gone && co_await sink.flush()) {
            client_gone = true;
        }
        if (client_gone) {
            result = relay_result::client_gone;
            break;
        }
        if (upstream_error || ec) {
            failure = upstream_error ? "upstream error event: " + translator->error_message()
                                     : describe(ec, "stream");
            result = sink.committed() ? relay_result::failed_after_commit
                                      : relay_result::failed_before_commit;
            break;
        }
    }
    if (result == relay_result::done && !translator->finished()) {
        failure = "stream ended before the provider's end of message";
        result = sink.committed() ? relay_result::failed_after_commit
                                  : relay_result::failed_before_commit;
    }
    co_await io.unwatch();
    const auto& u = translator->usage();
    if (u.known) {
        ctx.log.tokens_in = u.prompt_tokens;
        ctx.log.tokens_out = u.completion_tokens;
    }
    if (result != relay_result::failed_before_commit) {
        account(ctx, c, u.known, content_chars);
    }
    ctx.log.status = up.status();
    if (result == relay_result::done) {
        // The provider said its last word: drain what is left of the body so the
        // connection can be pooled, then end the client's stream cleanly.
        while (!a.parser->is_done()) {
            a.conn->expires_after(c.provider->timeout);
            auto [ec, n] = co_await read_piece(a, buf.data(), buf.size());
            if (ec) {
                break;
            }
        }
        release(w, a, c);
        if (co_await sink.finish()) {
            ctx.keep_alive = false;
        }
        co_return result;
    }
    abandon(a, ctx, result);
    if (result == relay_result::failed_after_commit) {
        ctx.log.error_code = "stream_broken";
        co_await sink.fail("Upstream " + c.model->name + " stream broke off: " + failure);
    }
    co_return result;
}

awaitable<void> serve_echo(server::client_io& io, request_context& ctx, const candidate& c,
                           bool client_wants_usage) {
    const auto reply = providers::echo::make_reply(ctx.body);
    const std::string id = "chatcmpl-" + ctx.request_id;
    ctx.log.tokens_in = reply.prompt_tokens;
    ctx.log.tokens_out = reply.completion_tokens;
    ctx.log.cost_usd = cost_usd(*c.model, reply.prompt_tokens, reply.completion_tokens);
    settle(ctx);
    ctx.log.status = 200;
    ctx.log.ttfb_ms = ctx.ms_since_arrival();
    if (ctx.api == api_kind::embeddings) {
        auto res =
            json_response(ctx, 200, dump(providers::echo::embeddings(ctx.body, c.model->model)));
        const std::string fields = michi_fields(ctx);
        co_await io.write_response(res, fields);
        co_return;
    }
    if (!ctx.log.stream) {
        auto body = providers::echo::completion(reply, c.model->model, id, unix_now());
        auto res = json_response(ctx, 200,
                                 ctx.out == dialect::anthropic
                                     ? dump(providers::anthropic::response_to_messages(
                                           body, ctx.client_model))
                                     : dump(body));
        const std::string fields = michi_fields(ctx);
        co_await io.write_response(res, fields);
        co_return;
    }
    chunk_sink sink(io, ctx, 200);
    const bool usage = client_wants_usage || ctx.out == dialect::anthropic;
    auto chunks = providers::echo::stream_chunks(reply, c.model->model, id, unix_now(), usage);
    chunks.pop_back(); // "[DONE]": the sink ends the stream in the client's dialect
    for (const auto& chunk : chunks) {
        sink.add(chunk);
        if (co_await sink.flush()) {
            ctx.keep_alive = false;
            co_return;
        }
    }
    if (co_await sink.finish()) {
        ctx.keep_alive = false;
    }
}

// Seconds in an upstream retry-after header (0 when absent or not a number).
milliseconds retry_after_of(const response_parser& p) {
    const auto v = p.retry_after();
    unsigned long secs = 0;
    for (char ch : v) {
        if (ch < '0' || ch > '9') {
            return milliseconds{0};
        }
        secs = secs * 10 + static_cast<unsigned long>(ch - '0');
        if (secs > 86400) {
            break;
        }
    }
    return std::chrono::seconds(std::min(secs, 86400UL));
}

// Exponential backoff with jitter before retry number `n` (1-based) on one target.
milliseconds backoff(unsigned n) {
    thread_local std::mt19937 rng{std::random_device{}()};
    const auto exp = backoff_base * (1u << std::min(n - 1, 8u));
    const auto capped = std::min<milliseconds>(exp, backoff_cap);
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    return milliseconds(static_cast<long>(static_cast<double>(capped.count()) * jitter(rng)));
}

// Candidates not cooling down keep their order and go first; cooling ones follow, the
// soonest back first, as a last resort. Empty when none is cooling down (the usual case):
// the plan's own order stands, and nothing is allocated for it.
std::vector<const candidate*> order_candidates(const dispatch_plan& plan,
                                               const routing::cooldowns& cd) {
    if (!cd.any()) {
        return {};
    }
    const auto now = steady_clock::now();
    std::vector<std::pair<steady_clock::time_point, const candidate*>> cooling;
    for (const auto& c : plan.candidates) {
        if (cd.cooling(c.model->name, now)) {
            cooling.emplace_back(cd.until(c.model->name, now), &c);
        }
    }
    std::vector<const candidate*> order;
    if (cooling.empty()) {
        return order;
    }
    for (const auto& c : plan.candidates) {
        if (std::none_of(cooling.begin(), cooling.end(),
                         [&](const auto& entry) { return entry.second == &c; })) {
            order.push_back(&c);
        }
    }
    std::stable_sort(cooling.begin(), cooling.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [until, c] : cooling) {
        order.push_back(c);
    }
    return order;
}

} // namespace

awaitable<void> run_exchange(worker& w, server::client_io& io, request_context& ctx,
                             const dispatch_plan& plan) {
    auto& cd = w.state().cooldowns();
    const auto& cfg = *ctx.rt->cfg;
    std::string attempts_list;
    std::string translate_errors;
    bool last_timeout = false;
    bool only_translation_errors = true;
    const bool client_wants_usage = ctx.wants_usage;
    // One overall deadline covers every retry and fallback.
    milliseconds overall{0};
    for (const auto& c : plan.candidates) {
        overall = std::max(overall, c.provider->timeout);
    }
    const auto deadline = ctx.arrival + overall;
    auto& metrics = w.state().metrics();
    auto note = [&](const candidate& c, const std::string& what) {
        attempts_list += c.model->name + ": " + what + "; ";
        ctx.failed.emplace_back(c.model->name, what);
    };

    const auto reordered = order_candidates(plan, cd);
    const std::size_t count = plan.candidates.size();
    for (std::size_t i = 0; i < count; ++i) {
        const candidate& c = reordered.empty() ? plan.candidates[i] : *reordered[i];
        const bool last_candidate = i + 1 == count;
        milliseconds hint{0}; // the upstream's retry-after, for the next try on this target
        for (unsigned t = 0; t <= plan.retries; ++t) {
            const bool final_try = last_candidate && t == plan.retries;
            if (t > 0) {
                // Back off before trying the same target again, within the deadline.
                const auto wait = hint.count() > 0 ? hint : backoff(t);
                if (steady_clock::now() + wait >= deadline) {
                    break;
                }
                steady_timer timer(w.executor(), wait);
                co_await timer.async_wait(nothrow);
            }
            const auto left = std::chrono::duration_cast<milliseconds>(deadline -
                                                                       steady_clock::now());
            if (left.count() <= 0) {
                last_timeout = true;
                break;
            }
            ++ctx.log.attempts;
            ctx.log.model = c.model->name;
            if (c.provider->type == provider_type::echo) {
                metrics.on_attempt(c.provider->name, "ok");
                co_await serve_echo(io, ctx, c, client_wants_usage);
                co_return;
            }
            auto prepared = prepare_request(c, ctx);
            if (prepared.error) {
                translate_errors += c.model->name + ": " + prepared.error->message + " ";
                note(c, "cannot translate the request (" + prepared.error->message + ")");
                metrics.on_attempt(c.provider->name, "translate_error");
                break;
            }
            only_translation_errors = false;
            const auto head_timeout = std::min(
                plan.attempt_timeout.count() > 0 ? plan.attempt_timeout : c.provider->timeout,
                left);
            auto a = co_await send(w, c, prepared, head_timeout);
            const bool translated = prepared.translated;
            prepared.recycle(); // sent: its storage serves the next request, not this stream
            if (a.ec) {
                last_timeout = is_timeout(a.ec);
                note(c, a.outcome);
                metrics.on_attempt(c.provider->name, last_timeout ? "timeout" : "connect_error");
                metrics.on_fallback();
                cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
                if (a.conn) {
                    a.conn->close();
                }
                ++ctx.fallbacks;
                continue;
            }
            const unsigned status = a.parser->status();
            metrics.on_attempt(c.provider->name, status / 100 == 2 ? "ok"
                                                 : status == 429   ? "http_429"
                                                 : status >= 500   ? "http_5xx"
                                                                   : "http_4xx");
            if (status == 429) {
                hint = retry_after_of(*a.parser);
                cd.on_rate_limited(c.model->name, hint, cfg.cooldown);
            } else if (status >= 500) {
                cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
            } else {
                cd.on_success(c.model->name);
            }
            if (retryable_status(status) && !final_try) {
                last_timeout = false;
                note(c, "HTTP " + std::to_string(status));
                metrics.on_fallback();
                a.conn->close();
                ++ctx.fallbacks;
                continue;
            }
            const bool is_sse = a.parser->content_type().starts_with(
                "text/event-stream");
            if (status / 100 != 2 || !is_sse) {
                co_await relay_whole(w, io, ctx, a, c, translated);
                co_return;
            }
            std::string failure;
            const bool raw = !translated && ctx.out == dialect::openai;
            relay_result r = relay_result::done;
            if (raw) {
                r = co_await relay_stream_raw(w, io, ctx, a, c, !client_wants_usage, failure);
            } else {
                r = co_await relay_stream_chunks(w, io, ctx, a, c, client_wants_usage, failure);
            }
            if (r != relay_result::failed_before_commit) {
                co_return;
            }
            cd.on_failure(c.model->name, cfg.cooldown_failures, cfg.cooldown);
            last_timeout = failure.find("timeout") != std::string::npos;
            note(c, failure + " before the first event");
            metrics.on_attempt(c.provider->name, "stream_error");
            metrics.on_fallback();
            ++ctx.fallbacks;
        }
    }
    if (attempts_list.size() >= 2) {
        attempts_list.resize(attempts_list.size() - 2);
    }
    // (No conditional operator inside co_await: GCC 12 mis-destroys such temporaries.)
    gateway_error err = errors::upstream_error("Every upstream attempt failed: " + attempts_list +
                                               ".");
    if (only_translation_errors && !translate_errors.empty()) {
        err = errors::invalid_request(translate_errors);
    } else if (last_timeout) {
        err = errors::upstream_timeout("Every upstream attempt failed: " + attempts_list + ".");
    }
    co_await reply_error(io, ctx, err);
}

} // namespace michi::pipeline
