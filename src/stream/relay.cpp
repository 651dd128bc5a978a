#include "michi/stream/relay.hpp"

namespace michi::stream {
namespace {

bool is_timeout(const error_code& ec) {
    return ec == beast::error::timeout || ec == net::error::timed_out;
}

void describe(const error_code& ec, relay_failure& failure) {
    failure.timeout = is_timeout(ec);
    failure.why = failure.timeout ? "stream timeout" : "stream error (" + ec.message() + ")";
}

} // namespace

awaitable<relay_result> relay(body_source& src, event_filter& f, relay_client& client,
                              relay_failure& failure) {
    auto& io = client.io;
    // What goes out with the head (at commit) or with the last chunk: `pending`, bytes held
    // back, then `held`, a view of the last piece's output (the source's bytes or the
    // filter's text, valid until the next next() or feed(); finish() leaves it be), written
    // from where it lies instead of copied.
    std::string pending;
    std::string_view held;
    bool committed = false;
    // Starts watching the client for a hang-up the first time the relay waits for the
    // upstream (a hang-up then aborts that wait); the client's connection, which reads
    // nothing meanwhile, lets its read buffer go. A stream whose answer was whole in the
    // first read never waits, and never pays for the watch. (One pointer captured: the
    // std::function holds it without an allocation.)
    struct watch {
        downstream::client_io& io;
        body_source& src;
        bool watching = false;
        bool client_gone = false;
    } w{io, src};
    const std::function<void()> before_wait = [&w] {
        if (!w.watching) {
            w.watching = true;
            w.io.release_read_buffer();
            w.io.watch_disconnect([&w] {
                w.client_gone = true;
                w.src.abort();
            });
        }
    };
    bool& watching = w.watching;
    bool& client_gone = w.client_gone;
    relay_result result = relay_result::done;
    std::pair<error_code, std::string_view> got;
    while (!src.done() && !f.finished()) {
        if (!src.next_at_hand(got)) {
            got = co_await src.next(&before_wait);
        }
        const auto [ec, piece] = got;
        const std::string_view out = f.feed(piece);
        auto why = ec ? std::nullopt : f.failure();
        // The last piece waits for the end below, so that it goes out in one write with the
        // last chunk (and the head, when nothing went out yet).
        const bool last_piece = !ec && !why && (src.done() || f.finished());
        if (!out.empty()) {
            if (last_piece) {
                held = out;
            } else if (!committed) {
                if (f.events() > 0) {
                    committed = true;
                    client.on_commit(true);
                    const std::string_view now =
                        pending.empty() ? out : std::string_view(pending.append(out));
                    if (co_await io.write_stream(client.head, now, false)) {
                        client_gone = true;
                    }
                    pending.clear();
                } else {
                    pending.append(out);
                }
            } else if (co_await io.write_chunk(out)) {
                client_gone = true;
            }
        }
        if (client_gone) {
            result = relay_result::client_gone;
            break;
        }
        if (why || ec) {
            if (why) {
                failure.why = std::move(*why);
                failure.timeout = false;
            } else {
                describe(ec, failure);
            }
            result =
                committed ? relay_result::failed_after_commit : relay_result::failed_before_commit;
            break;
        }
    }
    if (result == relay_result::done && !f.finished() && f.needs_end_event()) {
        failure.why = "stream ended before the provider's end of message";
        failure.timeout = false;
        result = committed ? relay_result::failed_after_commit : relay_result::failed_before_commit;
    }
    std::string_view last; // the bytes of the last chunk
    if (result == relay_result::done) {
        // The provider said its last word: read what is left of the body (nothing but the
        // framing's end, as a rule) so the connection can be kept. (The last piece's output
        // is kept first: a read may reuse what it views.)
        if (!src.done() && !held.empty()) {
            pending.append(held);
            held = {};
        }
        while (!src.done()) {
            if (!src.next_at_hand(got)) {
                got = co_await src.next(nullptr);
            }
            if (got.first) {
                break;
            }
        }
        const std::string_view tail = f.finish();
        if (!pending.empty() || (!held.empty() && !tail.empty())) {
            last = pending.append(held).append(tail);
        } else {
            last = held.empty() ? tail : held;
        }
    }
    if (watching) {
        io.unwatch();
    }
    if (result == relay_result::failed_before_commit) {
        src.abort();
        co_return result;
    }
    client.on_end(result);
    if (result == relay_result::done) {
        // The rest in one write: the head if nothing went out yet, what was held back, and
        // the last chunk. The source is let go after it: `last` may view its bytes.
        if (!committed) {
            client.on_commit(false);
        }
        const std::string_view head_now = committed ? std::string_view{} : client.head;
        const bool failed = static_cast<bool>(co_await io.write_stream(head_now, last, true));
        if (src.done()) {
            src.release();
        } else {
            src.abort();
        }
        if (failed) {
            client.broken = true;
            if (!committed || !last.empty()) { // the client missed part of the answer
                co_return relay_result::client_gone;
            }
        }
        co_return result;
    }
    src.abort();
    if (result == relay_result::failed_after_commit) {
        // Too late to fall back: end the stream with an error event.
        const auto event =
            f.broken("Upstream " + client.target + " stream broke off: " + failure.why);
        if (!co_await io.write_chunk(event)) {
            co_await io.write_last_chunk();
        }
    }
    co_return result;
}

} // namespace michi::stream
