#include "michi/server/session.hpp"

#include "michi/core/http_wire.hpp"
#include "michi/core/ids.hpp"
#include "michi/core/published.hpp"
#include "michi/core/tcp_stream.hpp"
#include "michi/downstream/reply.hpp"
#include "michi/downstream/request_parser.hpp"
#include "michi/pipeline/answer.hpp"
#include "michi/pipeline/settle.hpp"
#include "michi/surface/surface.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>

namespace michi::server {
namespace {

using downstream::request;
using downstream::request_parser;

using std::chrono::milliseconds;

// The connection's read buffer. A read takes as much as the buffer has room for (at least 512
// bytes, wire::read_room), and the parser empties it into the request as it goes, so its
// room sets the read size: a request head of an SDK (often over 512 bytes) and a small body come in one read;
// a larger body gets room for up to 64 KiB of it at a time once its length is known (the
// request's body string holds it whole; the buffer only passes it through). The extra room
// is given back after the request, so an idle connection keeps 4 KiB.
constexpr std::size_t read_buffer_bytes = 4 * 1024;
constexpr std::size_t body_read_room = 64 * 1024;

// The TLS stream of a connection, or null for plain TCP.
tls_over_tcp* tls_of(tcp_stream&) noexcept { return nullptr; }
tls_over_tcp* tls_of(tls_over_tcp& s) noexcept { return &s; }

// client_io over a concrete stream type.
template <class Stream>
class session_io final : public downstream::client_io {
public:
    session_io(Stream& s, beast::flat_buffer& read_buffer)
        : client_io(beast::get_lowest_layer(s), tls_of(s)), s_(s), read_buffer_(read_buffer),
          watch_(std::make_shared<watch_state>()) {}
    ~session_io() override { watch_->open = false; }
    session_io(const session_io&) = delete;
    session_io& operator=(const session_io&) = delete;

    awaitable<error_code> write_stream(std::string_view head, std::string_view data,
                                       bool last) override {
        // The head, the chunk's size line, the chunk, and its CRLF and the last chunk
        // ("\r\n" "0\r\n\r\n", as much of it as applies), each from where it lies.
        static constexpr std::string_view tail = "\r\n0\r\n\r\n";
        std::string_view size_line;
        std::string_view suffix;
        if (!data.empty()) {
            size_line = wire::chunk_size_line(size_line_, data.size());
            suffix = last ? tail : tail.substr(0, 2);
        } else if (last) {
            suffix = tail.substr(2);
        }
        if (head.empty() && suffix.empty()) {
            co_return error_code{};
        }
        const std::array<net::const_buffer, 4> bufs{
            net::buffer(head.data(), head.size()), net::buffer(size_line.data(), size_line.size()),
            net::buffer(data.data(), data.size()), net::buffer(suffix.data(), suffix.size())};
        beast::get_lowest_layer(s_).expires_after(write_timeout_);
        auto [ec, n] = co_await net::async_write(s_, bufs, nothrow_op);
        co_return ec;
    }

    void watch_disconnect(std::function<void()> on_gone) override {
        auto& sock = beast::get_lowest_layer(s_).socket();
        watching_ = true;
        // Waits for readability without consuming anything: end of stream or a reset
        // means the client is gone; bytes mean a pipelined request, left for later. The
        // handler may run after unwatch() (a cancelled or already-queued completion) or after
        // this object is gone: it acts only while its watch is still the current one.
        sock.async_wait(tcp::socket::wait_read,
                        [state = watch_, generation = watch_->generation, fd = sock.native_handle(),
                         cb = std::move(on_gone)](error_code ec) {
                            if (ec || !state->open || state->generation != generation) {
                                return;
                            }
                            char c = 0;
                            const auto n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
                            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                                cb();
                            }
                        });
    }

    void unwatch() noexcept override {
        if (!watching_) {
            return;
        }
        watching_ = false;
        ++watch_->generation; // a completion still on its way now does nothing
        error_code ignored;
        beast::get_lowest_layer(s_).socket().cancel(ignored);
    }

    void release_read_buffer() noexcept override {
        if (read_buffer_.size() == 0) {
            read_buffer_ = beast::flat_buffer();
        }
    }

private:
    // What a watch's handler reads, shared with it: the handler can outlive a watch and the
    // connection (one allocation a connection, not a request).
    struct watch_state {
        std::uint64_t generation = 0;
        bool open = true;
    };

    Stream& s_;
    beast::flat_buffer& read_buffer_; // the session's (run_session)
    std::shared_ptr<watch_state> watch_;
    bool watching_ = false;
    std::array<char, 24> size_line_; // write_stream's chunk-size line
};

// The access-log line and the metrics of a request that ended; an API call's request-log
// row and fallbacks too.
void record(connection_deps& d, pipeline::request_context& ctx) {
    ctx.log.latency_ms = ctx.ms_since_arrival();
    obs::write_access_log(ctx.log);
    d.metrics.on_request(ctx.log);
    if (ctx.api_call) {
        pipeline::record(ctx, d.planes.api.request_log, d.planes.api.fallbacks);
    }
}

// Whether a request target (its path, without the query) is a liveness or readiness probe.
bool is_probe(std::string_view path) {
    if (path.starts_with("/v1/")) {
        path.remove_prefix(3);
    }
    return path == "/healthz" || path == "/readyz";
}

// Whether a read failed on the message's own bytes (a grammar or framing error of the HTTP/1
// parser), rather than on the connection (a hang-up, a timeout, a message cut short).
bool malformed_message(const error_code& ec) {
    return ec.category() == make_error_code(http::error::bad_chunk).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::need_more && ec != http::error::short_read &&
           ec != http::error::body_limit && ec != http::error::header_limit;
}

template <class Stream>
awaitable<void> write_local_error(session_io<Stream>& io, pipeline::request_context& ctx,
                                  const gateway_error& err) {
    ctx.keep_alive = false;
    co_await downstream::write_error(io, ctx, err);
    ctx.log.latency_ms = ctx.ms_since_arrival();
    obs::write_access_log(ctx.log);
}

// After an exception the handler could not answer: a 500 when nothing went out yet, an
// error event ending a stream under way; never a second head.
template <class Stream>
awaitable<void> answer_crash(session_io<Stream>& io, pipeline::request_context& ctx) {
    ctx.keep_alive = false;
    if (ctx.stream_open) {
        const auto event = surface::broken_event(ctx.api, "Internal error while relaying.");
        if (!co_await io.write_chunk(event)) {
            co_await io.write_last_chunk();
        }
        ctx.log.error_code = "internal_error";
    } else if (!ctx.committed) {
        co_await downstream::write_error(io, ctx, errors::internal(), ctx.out());
    }
}

// The strings every request fills (its id and path, twice each), handed from one request of
// a connection to the next: they keep their storage, so most requests allocate none for them.
struct kept_strings {
    std::string request_id, log_request_id, path, log_path;

    // (Moved, not swapped: a fresh context's strings are empty, and a swap with a short
    // string copies its bytes both ways.)
    void lend(pipeline::request_context& ctx) noexcept {
        ctx.request_id = std::move(request_id);
        ctx.log.request_id = std::move(log_request_id);
        ctx.path = std::move(path);
        ctx.log.path = std::move(log_path);
    }
    // Back from a request that ended, emptied (ones grown large are let go).
    void take_back(pipeline::request_context& ctx) noexcept {
        for (auto [mine, theirs] :
             {std::pair{&request_id, &ctx.request_id},
              std::pair{&log_request_id, &ctx.log.request_id}, std::pair{&path, &ctx.path},
              std::pair{&log_path, &ctx.log.path}}) {
            if (theirs->capacity() <= 256) {
                theirs->clear();
                *mine = std::move(*theirs);
            }
        }
    }
};

// Serves requests until the connection ends; true when it ends on an error answered before
// the request was read whole (a bad head or body, a refusal while draining): the client may
// still be sending.
template <class Stream>
awaitable<bool> run_session(connection_deps& d, Stream& stream) {
    beast::flat_buffer buffer;
    buffer.reserve(read_buffer_bytes);
    session_io<Stream> io(stream, buffer);
    request spent; // the previous request: the next one is read into its storage
    kept_strings kept;
    auth::key_memo key_memo; // the last key this connection authenticated (wiped at the end)
    published<pipeline::snapshot>::reader current; // this connection's copy of the snapshot
    bool ended_on_error = false;
    // The error a request is refused with (one slot in this frame, whichever error: a
    // session's frame lasts as long as its connection, streams included).
    std::optional<gateway_error> refusal;
    for (;;) {
        const pipeline::snapshot* rt = current.get(d.snapshots).get();
        const auto* sc = &rt->cfg->server;
        io.set_write_timeout(sc->idle_timeout);
        request_parser parser(std::move(spent));
        parser.header_limit(static_cast<std::uint32_t>(sc->max_header_bytes));
        parser.body_limit(sc->max_body_bytes);
        // Waiting for the next request (idle) and receiving its head share one budget.
        beast::get_lowest_layer(stream).expires_after(sc->idle_timeout);
        error_code hec;
        while (wire::wants_more(parser, buffer, true, hec)) {
            auto [rec, rn] =
                co_await async_read_some(tls_of(stream), beast::get_lowest_layer(stream),
                                         wire::read_room(buffer), nothrow_op);
            if (!wire::took_read(parser, buffer, rec, rn, hec)) {
                break;
            }
        }

        pipeline::request_context ctx;
        kept.lend(ctx);
        ctx.rt = rt;
        ctx.key_memo = &key_memo;
        new_request_id(ctx.request_id);
        if (hec) {
            // (Errors are named locals: GCC 12 mis-destroys temporaries in some co_awaits.)
            if (hec == http::error::header_limit) {
                refusal = errors::headers_too_large(sc->max_header_bytes);
            } else if (hec == http::error::body_limit) {
                // Beast checks Content-Length against the limit as soon as the head is in.
                refusal = errors::request_too_large(sc->max_body_bytes);
            } else if (hec != http::error::end_of_stream && hec != beast::error::timeout &&
                       hec != net::error::eof && hec != net::error::connection_reset &&
                       hec != net::error::operation_aborted && parser.got_some()) {
                refusal = errors::malformed_http("Malformed HTTP request: " + hec.message());
            }
            if (refusal) {
                ctx.log.method = "-";
                co_await write_local_error(io, ctx, *refusal);
                ended_on_error = true;
            }
            break;
        }
        // The request is served on the config current now, not the one in force when this
        // connection went idle (a reload or a route change may have happened meanwhile).
        rt = current.get(d.snapshots).get();
        ctx.rt = rt;
        sc = &rt->cfg->server;
        const auto& head = parser.get();
        if (const auto rid = head[request::extra::x_request_id]; is_sane_request_id(rid)) {
            ctx.request_id.assign(rid.data(), rid.size());
        }
        ctx.log.request_id = ctx.request_id;
        ctx.log.method.assign(head.method_string());
        const auto target = head.target().substr(0, head.target().find('?'));
        ctx.log.path.assign(target.data(), target.size());
        if (const auto len = parser.content_length(); len && *len > sc->max_body_bytes) {
            refusal = errors::request_too_large(sc->max_body_bytes);
            co_await write_local_error(io, ctx, *refusal);
            ended_on_error = true;
            break;
        }
        if (beast::iequals(head[http::field::expect], "100-continue")) {
            http::response<http::empty_body> cont{http::status::continue_, 11};
            beast::get_lowest_layer(stream).expires_after(sc->read_timeout);
            auto [cec, cn] = co_await http::async_write(stream, cont, nothrow);
            if (cec) {
                break;
            }
        }
        // The body (or its start) usually came with the head; room for the rest lets one
        // read take it (up to 64 KiB at a time).
        if (const auto rest = parser.content_length_remaining()) {
            const auto room =
                static_cast<std::size_t>(std::min<std::uint64_t>(*rest, body_read_room));
            if (room > buffer.capacity() - buffer.size()) {
                buffer.reserve(buffer.size() + room);
            }
        }
        error_code bec;
        parser.eager(true);
        if (wire::wants_more(parser, buffer, false, bec)) {
            beast::get_lowest_layer(stream).expires_after(sc->read_timeout);
            do {
                auto [rec, rn] =
                    co_await async_read_some(tls_of(stream), beast::get_lowest_layer(stream),
                                             wire::read_room(buffer), nothrow_op);
                if (!wire::took_read(parser, buffer, rec, rn, bec)) {
                    break;
                }
            } while (wire::wants_more(parser, buffer, false, bec) &&
                     !parser.overlong_line(buffer.size(), bec));
        }
        if (bec == http::error::body_limit) {
            refusal = errors::request_too_large(sc->max_body_bytes);
            co_await write_local_error(io, ctx, *refusal);
            ended_on_error = true;
            break;
        }
        if (bec) {
            // A body that breaks its own framing (a bad chunk size or chunk line) is the
            // client's error: 400, then the connection closes, as after a bad head. A body cut
            // short by a hang-up or a timeout gets no answer.
            if (malformed_message(bec)) {
                const auto why =
                    parser.refusal().empty() ? bec.message() : std::string(parser.refusal());
                refusal = errors::invalid_request("Malformed HTTP request body: " + why);
                co_await write_local_error(io, ctx, *refusal);
                ended_on_error = true;
            }
            break;
        }
        beast::get_lowest_layer(stream).expires_never();
        // Room grown for a large body goes back now rather than after the answer: a stream
        // holds the connection (and this buffer) for as long as it lasts.
        if (buffer.capacity() > 2 * read_buffer_bytes && buffer.size() == 0) {
            buffer = beast::flat_buffer();
            buffer.reserve(read_buffer_bytes);
        }
        if (d.inflight.draining && !is_probe(target)) {
            // Draining: the probes still answer (/readyz with 503, so load balancers move
            // away), every other new request is refused at once and its connection closed,
            // so that the drain waits only for what was in flight when it began.
            refusal = errors::unavailable(
                "The gateway is shutting down; send the request to another instance.");
            co_await write_local_error(io, ctx, *refusal);
            ended_on_error = true;
            break;
        }
        ctx.req = parser.release();
        ctx.keep_alive = ctx.req.keep_alive() && !d.inflight.draining;
        bool crashed = false;
        {
            inflight_guard counted(d.inflight);
            try {
                co_await dispatch(d.planes, io, ctx);
            } catch (const std::exception& e) {
                spdlog::error("request {} failed: {}", ctx.request_id, e.what());
                crashed = true;
            }
            if (crashed) {
                co_await answer_crash(io, ctx);
            }
        }
        // Settle, whatever way the request ended (a no-op when it was settled already).
        pipeline::settle(ctx, d.planes.api.ledger);
        record(d, ctx);
        if (crashed || !ctx.keep_alive) {
            break;
        }
        spent = std::move(ctx.req);
        kept.take_back(ctx);
        if (buffer.capacity() < read_buffer_bytes) { // (let go while a stream waited)
            buffer.reserve(read_buffer_bytes);
        }
    }
    co_return ended_on_error;
}

// Closes after an error answer to a request not read whole (RFC 9112 section 9.6): closing
// with the client's bytes still unread makes the kernel send a reset, which can destroy the
// answer before the client has read it. So the sending side is shut first, and what the
// client still sends is read and dropped, for at most a second and 256 KiB.
awaitable<void> linger_close(tcp_stream& s) {
    error_code ignored;
    s.socket().shutdown(tcp::socket::shutdown_send, ignored);
    s.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink{};
    for (std::size_t dropped = 0; dropped < 256 * 1024;) {
        auto [ec, n] = co_await async_read_some(tls_of(s), s, net::buffer(sink), nothrow_op);
        if (ec) {
            break;
        }
        dropped += n;
    }
    s.close();
}

void close_stream(tcp_stream& s) {
    error_code ignored;
    s.socket().shutdown(tcp::socket::shutdown_send, ignored);
    s.close();
}

} // namespace

awaitable<void> serve_connection(connection_deps& d, tcp_socket socket, ssl::context* tls) {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    try {
        if (tls == nullptr) {
            tcp_stream stream(std::move(socket));
            if (co_await run_session(d, stream)) {
                co_await linger_close(stream);
            } else {
                close_stream(stream);
            }
            co_return;
        }
        beast::ssl_stream<tcp_stream> stream(std::move(socket), *tls);
        const auto timeout = d.snapshots.get()->cfg->server.read_timeout;
        beast::get_lowest_layer(stream).expires_after(timeout);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, nothrow);
        if (!hec) {
            co_await run_session(d, stream);
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
            // (The close_notify exchange may fail against a client that just hangs up.)
            [[maybe_unused]] auto [sec] = co_await stream.async_shutdown(nothrow);
        }
        close_stream(beast::get_lowest_layer(stream));
    } catch (const std::exception& e) {
        spdlog::error("connection failed: {}", e.what());
    }
}

} // namespace michi::server
