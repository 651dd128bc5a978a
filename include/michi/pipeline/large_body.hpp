#pragma once
// Work proportional to a request's size (the parse of a multi-megabyte body, its translation
// for a provider, its cache key, an answer built from it) runs on the gateway's CPU pool once
// the body is large, so that the worker's event loop serves its other connections meanwhile:
// the request's coroutine awaits the result and resumes on its own worker. A body below the
// threshold takes the inline path, without a hop.
//
// The work owns what it reads: the request's body (its bytes and its parse) is lent to it and
// given back when it ends, and everything else it needs is copied in. While it runs the
// client is watched: a client that hangs up meanwhile ends the request (499) once the work is
// done, its result dropped. The pool's queue is bounded: a large request that finds it full
// is answered 503 with Retry-After (the body was read whole already, so waiting would only
// hold it longer; a client retries a 503 on its own).

#include "michi/downstream/client_io.hpp"
#include "michi/pipeline/admission.hpp"
#include "michi/pipeline/deps.hpp"
#include "michi/providers/adapter.hpp"
#include "michi/pipeline/request_context.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace michi::pipeline {

// The body size from which the work goes to the pool. Below it the work costs well under a
// millisecond in a release build (a parse: about 80 instructions a byte), not worth a hop
// between threads; a multi-megabyte body costs several (seconds under ASan).
inline constexpr std::size_t large_body_bytes = 64 * 1024;

inline bool is_large(const request_context& ctx) noexcept {
    return ctx.req.body().size() >= large_body_bytes;
}

// The request's body as lent to work on the pool: its bytes as sent and its parse (OpenAI
// form; null when not parsed).
struct lent_body {
    std::string bytes;
    nlohmann::json parsed;
};

// A providers' view of the request for work on the pool: its own copies of the fields it
// points to; over() points it at the lent body.
struct lent_view {
    explicit lent_view(const providers::request_view& v)
        : view(v), version(v.anthropic_version), beta(v.anthropic_beta),
          parsed(v.parsed != nullptr) {}
    providers::request_view over(const lent_body& b) const {
        auto v = view;
        v.raw_body = b.bytes;
        v.parsed = parsed ? &b.parsed : nullptr;
        v.anthropic_version = version;
        v.anthropic_beta = beta;
        return v;
    }

    providers::request_view view;
    std::string version, beta;
    bool parsed;
};

// Which work a job is: a request's first (admission: refused when the queue holds its bound)
// or a later step of a request under way (refused only past four times the bound).
enum class job_stage { first, later };

namespace detail {
void lend(request_context& ctx, lent_body& loan) noexcept;
void take_back(request_context& ctx, lent_body& loan) noexcept;
std::size_t limit_of(const cpu_pool& pool, job_stage stage) noexcept;
// The request ends without its answer: the queue was full (503 with Retry-After) or the
// client hung up (499).
awaitable<void> refuse_busy(deps& d, downstream::client_io& io, request_context& ctx);
void client_gone(request_context& ctx) noexcept;
} // namespace detail

// Runs f(const lent_body&) on d.cpu with ctx's body lent to it (given back once f is done);
// f is passed as a named local (std::move(job)), never a temporary of the co_await (GCC 12
// may destroy that twice). f's result, or nullopt when the request ended instead (the queue was full: answered 503;
// the client hung up: recorded as 499, nothing more to send).
template <class F>
awaitable<std::optional<std::invoke_result_t<F&, const lent_body&>>>
on_pool(deps& d, downstream::client_io& io, request_context& ctx, job_stage stage, F f) {
    // (Shared with the job: it keeps the body alive if this coroutine goes first.)
    auto loan = std::make_shared<lent_body>();
    detail::lend(ctx, *loan);
    bool gone = false;
    io.watch_disconnect([&gone] { gone = true; });
    // (Named locals, not temporaries of the co_await: GCC 12 may destroy those twice.)
    auto job = [loan, fn = std::move(f)]() mutable { return fn(*loan); };
    const auto limit = detail::limit_of(d.cpu, stage);
    auto r = co_await d.cpu.run(std::move(job), limit);
    io.unwatch();
    detail::take_back(ctx, *loan);
    if (!r) {
        co_await detail::refuse_busy(d, io, ctx);
        co_return std::nullopt;
    }
    if (gone) {
        detail::client_gone(ctx);
        co_return std::nullopt;
    }
    co_return std::move(r);
}

// admit() for a large body, into out: its scan, parse and hash run on the pool. nullopt when
// the request ended on the way (see on_pool).
awaitable<std::optional<result<void>>> admit_large(deps& d, downstream::client_io& io,
                                                   request_context& ctx, admitted& out);

} // namespace michi::pipeline
