#include "michi/pipeline/large_body.hpp"

#include "michi/core/json_parse.hpp"
#include "michi/pipeline/answer.hpp"

#include <functional>

namespace michi::pipeline {
namespace detail {

void lend(request_context& ctx, lent_body& loan) noexcept {
    loan.bytes = ctx.req.lend_body();
    loan.parsed = std::move(ctx.body);
    ctx.body = nlohmann::json();
}

void take_back(request_context& ctx, lent_body& loan) noexcept {
    ctx.req.take_back_body(std::move(loan.bytes));
    ctx.body = std::move(loan.parsed);
}

std::size_t limit_of(const cpu_pool& pool, job_stage stage) noexcept {
    return stage == job_stage::first ? pool.max_jobs() : 4 * pool.max_jobs();
}

awaitable<void> refuse_busy(deps& d, downstream::client_io& io, request_context& ctx) {
    ctx.retry_after = std::chrono::seconds(1);
    const auto err = errors::unavailable(
        "The gateway is busy with other large requests; send this one again shortly.");
    co_await reply_error(io, ctx, d.ledger, err);
}

void client_gone(request_context& ctx) noexcept {
    ctx.log.status = 499;
    ctx.log.error_code = "client_closed";
    ctx.keep_alive = false;
}

} // namespace detail

namespace {

// What admission reads of a body: its facts by the scan, else its parse; and its hash (the
// loop guard's).
struct body_reading {
    std::optional<body_facts> scanned;
    std::optional<result<parsed_body>> parsed;
    std::size_t hash = 0;
};

} // namespace

awaitable<std::optional<result<void>>> admit_large(deps& d, downstream::client_io& io,
                                                   request_context& ctx, admitted& out) {
    using answer = std::optional<result<void>>;
    if (auto who = admit_key(ctx, d.auth); !who) {
        co_return answer(std::move(who.error()));
    }
    const auto api = ctx.api;
    const auto limit = json_parse::max_depth();
    auto job = [api, limit](const lent_body& b) {
        body_reading r;
        r.hash = std::hash<std::string_view>{}(b.bytes);
        r.scanned = scan_request_body(api, b.bytes, limit);
        if (!r.scanned) {
            r.parsed.emplace(parse_request_body(api, b.bytes, limit));
        }
        return r;
    };
    auto read = co_await on_pool(d, io, ctx, job_stage::first, std::move(job));
    if (!read) {
        co_return std::nullopt;
    }
    ctx.body_hash = read->hash;
    if (read->scanned) {
        take_scanned_body(ctx, std::move(*read->scanned));
    } else if (!*read->parsed) {
        co_return answer(std::move(read->parsed->error()));
    } else {
        take_parsed_body(ctx, std::move(read->parsed->value()));
    }
    if (auto routed = admit_route(ctx, out.plan); !routed) {
        co_return answer(std::move(routed));
    }
    if (!ctx.body_parsed && needs_parsed_body(ctx, out.plan)) {
        auto parse_job = [api, limit](const lent_body& b) {
            return parse_request_body(api, b.bytes, limit);
        };
        auto parsed = co_await on_pool(d, io, ctx, job_stage::later, std::move(parse_job));
        if (!parsed) {
            co_return std::nullopt;
        }
        if (!*parsed) {
            co_return answer(std::move(parsed->error()));
        }
        take_parsed_body(ctx, std::move(parsed->value()));
    }
    co_return answer(admit_guard(ctx, out));
}

} // namespace michi::pipeline
